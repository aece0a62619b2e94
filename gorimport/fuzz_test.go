package gorimport

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/internal/shquote"
	"github.com/replayctl/replayctl/scenario"
)

func readDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/migration.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzConvert feeds arbitrary argument lists (one argument per line): Convert
// never panics, and any scenario it returns validates, with --allow-paths
// for the directories outside its own that its warnings name
// (Result.AllowPaths).
func FuzzConvert(f *testing.F) {
	for _, seed := range [][]string{
		{"--input-kafka-host", "k1:9092", "--input-kafka-topic", "traffic", "--input-kafka-start-offset", "1200",
			"--input-kafka-end-offset", "9800", "--output-http", "http://staging:8080", "--exit-after", "300s", "--http-set-header", "X-Replay: 1"},
		{"--input-raw", ":8080|50%", "--output-http", "staging|10", "--output-http", "b|5%", "--split-output", "--http-allow-url", "^/api"},
		{"-input-file=a.gor|200%", "-input-file-loop", "-output-file", "x.gor", "--output-kafka-host", "k", "--output-kafka-topic", ".t"},
		{"--input-raw", "[::1]:80", "--output-null", "--http-rewrite-url", "^/a$:/b", "--http-rewrite-header", "Host: x,y"},
		{"--input-raw", "eth0:0", "--output-stdout", "--http-header-limiter", "a:1/3", "--http-param-limiter", "b:0%", "stray"},
		{"--input-file", "r.gor", "--output-http", "http://t", "--http-allow-method", "G\"E\nT", "--http-set-param", "k=${X}$$'"},
	} {
		f.Add(strings.Join(seed, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		args := strings.Split(in, "\n")
		res, err := convertHere(args)
		if err != nil {
			return
		}
		s, err := scenario.LoadBytes("fuzz.yaml", res.YAML, scenario.Options{Env: noEnv, AllowPaths: res.AllowPaths})
		if err == nil {
			_, err = engine.Compile(s, engine.Options{})
		}
		if err != nil {
			t.Fatalf("Convert(%q) produced an invalid scenario: %v\n%s", args, err, res.YAML)
		}
		for _, dir := range res.AllowPaths {
			if !slices.ContainsFunc(res.Warnings, func(w string) bool { return strings.Contains(w, "--allow-paths "+shquote.IfNeeded(dir)) }) {
				t.Fatalf("--allow-paths %s is needed, and no warning says so: %q", dir, res.Warnings)
			}
		}
		for _, w := range res.Warnings {
			if !strings.Contains(string(res.YAML), "# warning: "+oneLine(w)+"\n") {
				t.Fatalf("warning %q is not in the YAML", w)
			}
		}
	})
}
