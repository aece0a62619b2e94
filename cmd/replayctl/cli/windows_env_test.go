package cli

import (
	"strings"
	"testing"
)

// TestWindowsHintsAtFleetBrokers: with $REPLAYCTL_BROKERS set (as a fleet
// operator has it) and no --brokers, windows list still reads the embedded
// broker's data dir, as run does; when there is none, its error names the
// --brokers to give. It said only "no data dir .replayctl/data".
func TestWindowsHintsAtFleetBrokers(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("REPLAYCTL_BROKERS", "10.0.0.1:9092")
	r := mustRun(t, ExitInvalid, "windows", "list")
	if !strings.Contains(r.stderr, "no data dir .replayctl/data") || !strings.Contains(r.stderr, "the fleet's windows: --brokers 10.0.0.1:9092") {
		t.Errorf("got %s", r)
	}
}
