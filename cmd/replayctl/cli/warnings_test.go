package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunPrintsWarnings: run, and run --dry-run, print the scenario's
// warnings as validate does: a topic config key Kafka does not have (the
// embedded broker takes it silently; the retention meant is not set), an
// env() not set here.
func TestRunPrintsWarnings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	scn := fmt.Sprintf(pipelineYAML, "http://127.0.0.1:1", "errors.rate == 0")
	scn = strings.Replace(scn, "create: true}", `create: true, config: {retention.mss: "3600000"}}`, 1)
	scn = strings.Replace(scn, "    sink: {kafka:", "    filter: 'env(\"REPLAYCTL_TEST_UNSET_NAME\") == \"\"'\n    sink: {kafka:", 1)
	f := write(t, dir, "s.yaml", scn)
	want := []string{
		f + `:4:72: warning: topics.traffic.config.retention.mss: "retention.mss" is not an Apache Kafka topic config (did you mean "retention.ms"?)`,
		f + `:10:13: warning: env("REPLAYCTL_TEST_UNSET_NAME"): REPLAYCTL_TEST_UNSET_NAME is not set here`,
	}
	for _, args := range [][]string{
		{"validate", f},
		{"run", f, "--dry-run"},
		{"run", f, "--job", "record", "--data-dir", dir + "/data", "--progress", "never"},
	} {
		r := mustRun(t, ExitOK, args...)
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("replayctl %s: stderr lacks %q:\n%s", strings.Join(args, " "), w, r)
			}
		}
	}
}

// TestUnusedEnvFileKeys: every command that takes --env-file warns, on
// stderr, of a variable in it that no ${…} of the scenario reads, at its
// line and by name (never its value), and exits as it would without it; a
// variable read only in a default is used.
func TestUnusedEnvFileKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 3, time.Millisecond)
	scn := strings.Replace(fmt.Sprintf(pipelineYAML, "${TARGET:-${FALLBACK}}", "errors.rate == 0"), "name: pipeline", "name: pipeline-${SUFFIX:-x}", 1)
	f := write(t, dir, "s.yaml", scn)
	env := write(t, dir, "vars.env", "SUFFIX=y\nTARGET=http://127.0.0.1:1\nFALLBACK=http://127.0.0.1:2\nAPI_TOKEN=s3cr3t-value\n")
	warning := env + ":4:1: warning: API_TOKEN is not used by scenario " + f + " (no ${API_TOKEN} or env(\"API_TOKEN\") in it)\n"
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"validate", f},
		{"run", f, "--dry-run"},
		{"run", f, "--job", "record", "--data-dir", data, "--progress", "never"},
		{"windows", "list", "-f", f, "--data-dir", data},
		{"windows", "show", "recent", "-f", f, "--data-dir", data},
	} {
		r := mustRun(t, ExitOK, append(args, "--env-file", env)...)
		if !strings.Contains(r.stderr, warning) || strings.Count(r.stderr, "is not used by scenario") != 1 || strings.Contains(r.stderr+r.stdout, "s3cr3t") {
			t.Errorf("replayctl %s --env-file: stderr lacks %q alone, or shows the value:\n%s", strings.Join(args, " "), warning, r)
		}
	}
	// A run that is not there: exit 1, as without --env-file.
	r := mustRun(t, ExitRuntime, "report", "merge", "--run", "nosuch", "-f", f, "--env-file", env, "--data-dir", data)
	if !strings.Contains(r.stderr, warning) {
		t.Errorf("report merge -f --env-file: stderr lacks %q:\n%s", warning, r)
	}
}
