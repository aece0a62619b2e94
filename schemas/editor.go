package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
)

// referencePattern matches a whole ${VAR}, ${VAR:-default} or
// ${VAR:?message} reference, as a scenario may write any value.
const referencePattern = `^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$`

// withReferencePattern matches a string that holds a reference anywhere
// (not after $$, a literal $).
const withReferencePattern = `(^|[^$])(\$\$)*\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}`

// EditorSchema is ScenarioJSON for a scenario as written, before its
// ${VAR} references are read: every field that takes a number, a boolean,
// a duration, a size or one of some words also takes a whole reference
// (speed: ${SPEED:-4}, stop: {after: "${D}"}). ScenarioJSON checks a
// scenario after its references are read (validate, run), where a value
// must have its field's type; an editor sees the file as written.
func EditorSchema() ([]byte, error) {
	var doc, orig map[string]any
	if err := json.Unmarshal(ScenarioJSON, &doc); err != nil {
		return nil, fmt.Errorf("scenario schema: %w", err)
	}
	if err := json.Unmarshal(ScenarioJSON, &orig); err != nil {
		return nil, fmt.Errorf("scenario schema: %w", err)
	}
	// What is scalar is read from the schema as it is, not as it is being
	// changed (a definition already wrapped refers to "reference").
	origDefs, _ := orig["$defs"].(map[string]any)
	defs, _ := doc["$defs"].(map[string]any)
	if defs == nil {
		return nil, fmt.Errorf("scenario schema: no $defs")
	}
	for name, d := range defs {
		defs[name] = allowReference(d, origDefs)
	}
	if props, ok := doc["properties"].(map[string]any); ok {
		for k, p := range props {
			props[k] = allowReference(p, origDefs)
		}
	}
	defs["reference"] = map[string]any{
		"description": "A whole ${VAR}, ${VAR:-default} or ${VAR:?message} reference, read when the scenario is loaded.",
		"type":        "string",
		"pattern":     referencePattern,
	}
	defs["withReference"] = map[string]any{
		"description": "A string with a ${VAR}, ${VAR:-default} or ${VAR:?message} reference in it, read when the scenario is loaded.",
		"type":        "string",
		"pattern":     withReferencePattern,
	}
	return json.MarshalIndent(doc, "", "  ")
}

// allowReference returns schema s with every scalar field in it (see
// scalar) also taking a whole reference.
func allowReference(s any, defs map[string]any) any {
	m, ok := s.(map[string]any)
	if !ok {
		return s
	}
	if scalar(m, defs, 0) {
		alt := "#/$defs/reference"
		if _, pattern := m["pattern"]; pattern && m["type"] == "string" {
			// A string of a given shape (a Kafka topic name) has it once
			// its references are read: "traffic-${ENV}" too.
			alt = "#/$defs/withReference"
		}
		wrapped := map[string]any{"anyOf": []any{m, map[string]any{"$ref": alt}}}
		if d, ok := m["description"]; ok {
			wrapped["description"] = d
		}
		return wrapped
	}
	for _, k := range []string{"properties", "patternProperties", "$defs"} {
		if props, ok := m[k].(map[string]any); ok {
			for name, p := range props {
				props[name] = allowReference(p, defs)
			}
		}
	}
	for _, k := range []string{"additionalProperties", "items", "then", "else"} {
		if sub, ok := m[k].(map[string]any); ok {
			m[k] = allowReference(sub, defs)
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf", "prefixItems"} {
		if list, ok := m[k].([]any); ok {
			for i, sub := range list {
				list[i] = allowReference(sub, defs)
			}
		}
	}
	return m
}

// scalar reports whether schema m takes only values a whole reference is
// not: a number, a boolean, a constrained string (a pattern, some words),
// or a choice of such. A $ref is left to its definition (wrapped there);
// a plain string, an object or an array is not scalar.
func scalar(m map[string]any, defs map[string]any, depth int) bool {
	if depth > 8 {
		return false
	}
	if _, ok := m["$ref"]; ok {
		return false
	}
	if _, ok := m["const"]; ok {
		return true
	}
	if _, ok := m["enum"]; ok {
		return true
	}
	switch m["type"] {
	case "integer", "number", "boolean":
		return true
	case "string":
		_, pattern := m["pattern"]
		return pattern
	case nil:
	default:
		return false
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		list, ok := m[k].([]any)
		if !ok || len(list) == 0 {
			continue
		}
		for _, b := range list {
			bm, ok := b.(map[string]any)
			if !ok {
				return false
			}
			if ref, ok := bm["$ref"].(string); ok {
				name, _ := strings.CutPrefix(ref, "#/$defs/")
				if d, ok := defs[name].(map[string]any); !ok || !scalar(d, defs, depth+1) {
					return false
				}
				continue
			}
			if !scalar(bm, defs, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}
