// Package schemas embeds the JSON Schemas that define replayctl's file formats,
// so the CLI can print them and editors can use them.
package schemas

import _ "embed"

// ScenarioJSON is scenario.schema.json: the JSON Schema (2020-12) of the
// scenario YAML language, the single source of truth for its shape.
//
//go:embed scenario.schema.json
var ScenarioJSON []byte
