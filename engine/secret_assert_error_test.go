package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
)

// TestSecretNotInAssertionError: an assertion a secret went into that
// fails to evaluate (here a modulo by zero errors) says why without the
// secret's value: expr-lang's runtime error quotes the expression's source
// line, which holds the value, and it went into the terminal summary, the
// failed lines and the JSON report that a sharded run publishes.
func TestSecretNotInAssertionError(t *testing.T) {
	const secret = "S3CRETVAL"
	dir := t.TempDir()
	tg := newTarget(t)
	gor := writeGor(t, dir, "in.gor", evenly(2, time.Millisecond))
	yaml := `version: 1
name: secret-assert-error
targets:
  t: {url: "` + tg.URL() + `"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Base(gor) + `}}
    speed: max
    sink: {http: {target: t}}
    report: {json: report.json}
    assert:
      - '"${API_TOKEN}" != "" && requests.sent % requests.errors == 0'
`
	env := map[string]string{"API_TOKEN": secret}
	s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	plan, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data"), Out: out, Err: &testWriter{t: t}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	runErr := plan.Run(ctx)
	if runErr == nil {
		t.Fatal("the assertion held; want it failed (its evaluation errs)")
	}
	if strings.Contains(runErr.Error(), secret) {
		t.Errorf("the run's error holds the secret:\n%v", runErr)
	}
	if strings.Contains(out.String(), secret) {
		t.Errorf("the summary holds the secret:\n%s", out)
	}
	rep, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rep), secret) {
		t.Errorf("the JSON report holds the secret:\n%s", rep)
	}
	if !strings.Contains(out.String(), "divide by zero") {
		t.Errorf("the summary does not say why the assertion failed:\n%s", out)
	}
}
