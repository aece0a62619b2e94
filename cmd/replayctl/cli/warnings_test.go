package cli

import (
	"fmt"
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
