package schemas

import (
	"encoding/json"
	"testing"
)

func TestScenarioJSON(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(ScenarioJSON, &doc); err != nil {
		t.Fatalf("scenario.schema.json: %v", err)
	}
	if doc["$schema"] != "https://json-schema.org/draft/2020-12/schema" || doc["additionalProperties"] != false {
		t.Errorf("unexpected schema header: %v %v", doc["$schema"], doc["additionalProperties"])
	}
}
