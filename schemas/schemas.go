// Package schemas embeds the JSON Schemas that define replayctl's file formats,
// so the CLI can print them and editors can use them.
package schemas

import _ "embed"

// ScenarioJSON is scenario.schema.json: the JSON Schema (2020-12) of the
// scenario YAML language, the single source of truth for its shape, as
// validate checks a scenario once its ${VAR} references are read. Editors
// see the file as written: EditorSchema (`replayctl schema`) is this one
// with a whole reference taken wherever a value is.
//
//go:embed scenario.schema.json
var ScenarioJSON []byte
