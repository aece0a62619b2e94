package engine_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
)

// TestDescribeHidesSecretVariables: the --dry-run plan shows the value of
// a variable with a secret's name (API_TOKEN), or of a vars: entry that
// read one, as ${NAME} wherever the scenario put it, not only in target
// URLs. A token in a redact pattern (to mask it in bodies), a path, a topic,
// a header name or a window name was printed as it is.
func TestDescribeHidesSecretVariables(t *testing.T) {
	const secret = "Zq8vT0kenValue77"
	for _, tc := range []struct {
		name, job, want string
	}{
		{"redact pattern", `rec:
    source: {gor: {path: in.gor}}
    redact: {patterns: ["${API_TOKEN}"]}
    sink: {kafka: {topic: t}}`, "patterns ${API_TOKEN}"},
		{"redact header", `rec:
    source: {gor: {path: in.gor}}
    redact: {headers: ["X-${API_TOKEN}"]}
    sink: {kafka: {topic: t}}`, "headers X-${API_TOKEN}"},
		{"save-window", `rec:
    source: {gor: {path: in.gor}}
    sink: {kafka: {topic: t}}
    save-window: w-${API_TOKEN}`, `"w-${API_TOKEN}"`},
		{"gor path via vars", `rec:
    source: {gor: {path: in.gor}}
    sink: {gor: {path: "out-${tok}.gor"}}`, "out-${"},
		{"source window", `rep:
    source: {window: "${API_TOKEN}"}
    sink: {http: {url: "http://127.0.0.1:9"}}`, `window "${API_TOKEN}"`},
		{"remove-header", `rep:
    source: {gor: {path: in.gor}}
    rewrite:
      - remove-header: "X-${API_TOKEN}"
    sink: {http: {url: "http://127.0.0.1:9"}}`, "remove-header X-${API_TOKEN}"},
		{"topic name", `rec:
    source: {gor: {path: in.gor}}
    sink: {kafka: {topic: s}}`, "topic s-${API_TOKEN}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\nname: s\nvars:\n  tok: ${API_TOKEN}\ntopics:\n  t: {name: plain}\n  s: {name: \"s-${API_TOKEN}\"}\njobs:\n  " + tc.job + "\n"
			env := func(k string) (string, bool) {
				if k == "API_TOKEN" {
					return secret, true
				}
				return "", false
			}
			dir := t.TempDir()
			s, err := scenario.LoadBytes(filepath.Join(dir, "s.yaml"), []byte(src), scenario.Options{Env: env})
			if err != nil {
				t.Fatal(err)
			}
			p, err := engine.Compile(s, engine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			p.Describe(&b)
			if strings.Contains(b.String(), secret) || !strings.Contains(b.String(), tc.want) {
				t.Errorf("plan shows the secret or lacks %q:\n%s", tc.want, b.String())
			}
		})
	}
}
