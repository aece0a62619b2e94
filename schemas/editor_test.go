package schemas

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"
)

// editorSchema compiles EditorSchema.
func editorSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := EditorSchema()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("editor.json", doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("editor.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJSON reads a YAML document as the JSON value a schema validates.
func asJSON(t *testing.T, src []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// TestEditorSchemaTakesExamples: every bundled example, as written (with
// its ${VAR} references), is valid by the schema `replayctl schema`
// prints for editors; two were flagged (stop.after: '${duration}',
// speed: '${SPEED:-4}').
func TestEditorSchemaTakesExamples(t *testing.T) {
	s := editorSchema(t)
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(asJSON(t, src)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestEditorSchemaReferences: a whole reference is taken where a number,
// a duration, a boolean or a word is; a wrong value is still refused.
func TestEditorSchemaReferences(t *testing.T) {
	s := editorSchema(t)
	job := func(extra string) []byte {
		return []byte("version: 1\nname: n\njobs:\n  j:\n    source: {gor: {path: x.gor}}\n    sink: {http: {url: 'http://a'}}\n" + extra + "\n")
	}
	for _, c := range []struct {
		extra string
		ok    bool
	}{
		{"    speed: ${SPEED:-4}", true},
		{"    speed: '${SPEED}'", true},
		{"    loop: '${N}'", true},
		{"    stop: {after: '${D}', requests: '${N:?how many}'}", true},
		{"    speed: fast", false},
		{"    stop: {after: 5x}", false},
		{"    loop: 0", false},
		{"    speed: '${SPEED'", false},
		// A string of a given shape may hold a reference anywhere: it has
		// its shape once the reference is read.
		{"topics: {t: {name: 'traffic-${ENV:-dev}'}}", true},
		{"topics: {t: {name: '${TOPIC}'}}", true},
		{"kafka: {catalog-topic: 'windows-${ENV}'}", true},
		{"topics: {t: {name: 'a b'}}", false},
		{"topics: {t: {name: 'a$b'}}", false},
		{"topics: {t: {name: 'a$${B}'}}", false},
	} {
		err := s.Validate(asJSON(t, job(c.extra)))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", strings.TrimSpace(c.extra), err, c.ok)
		}
	}
}
