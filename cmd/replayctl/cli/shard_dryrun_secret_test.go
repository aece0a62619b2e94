package cli

import (
	"strings"
	"testing"
)

// TestShardDryRunHidesSecretVariables: `run --shard --dry-run` shows a
// secret variable's value in the window's topic as ${NAME}, as the plan
// does; the shard's line printed the topic as read.
func TestShardDryRunHidesSecretVariables(t *testing.T) {
	br := shardBrokers(t)[0]
	topic, ends := produceWindow(t, br.addrs, windowSpec{partitions: 2, conns: 4, perConn: 5})
	dir := t.TempDir()
	scn := shardScenario(t, dir, br.addrs, `"${API_TOKEN}"`, ends, "http://127.0.0.1:9", "speed: max", false)
	t.Setenv("API_TOKEN", topic)
	dry := mustRun(t, ExitOK, "run", scn, "--job", "replay", "--shard", "1/2", "--run-id", unique(t, "run"), "--brokers", br.addrs, "--dry-run")
	if strings.Contains(dry.stdout+dry.stderr, topic) || !strings.Contains(dry.stdout, "topic ${API_TOKEN}, ") || !strings.Contains(dry.stdout, "→ shard 1/2") {
		t.Errorf("the dry run shows the secret or not its name:\n%s", dry)
	}
}
