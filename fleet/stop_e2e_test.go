package fleet_test

import (
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
)

// TestAgentStopsWithKafkaDown: SIGTERM stops an agent within a bound
// whatever the broker's state. With the broker up, the final heartbeat is
// delivered (agents ls: stopped). With the broker killed (SIGKILL), a
// heartbeat sent to it is never answered and franz-go would wait for that
// answer for ever: the agent exits anyway, saying it could not publish its
// final heartbeat and when the fleet will see it lost.
func TestAgentStopsWithKafkaDown(t *testing.T) {
	e := setup(t, "")
	labels := "role=stop-" + e.suffix
	up := e.agent(t, "up", labels, "record")
	down := e.agent(t, "down", labels, "record")
	e.waitAgents(t, 2)

	d := stopAgent(t, up, 5*time.Second)
	if out := up.Out.String(); strings.Contains(out, "could not publish") || !strings.Contains(out, "agent stopped") {
		t.Fatalf("agent stopped with the broker up:\n%s", out)
	}
	stopped := regexp.MustCompile(`(?m)^up-` + e.suffix + `\s.*\sstopped\s`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls, _ := bin.Run(t, e.dir, append([]string{"agents", "ls"}, e.b()...)...)
		if stopped.MatchString(ls) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the final heartbeat of the agent stopped with the broker up was not read back as stopped:\n%s", ls)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("broker up: stopped %s after SIGTERM", d)

	if err := e.broker.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = e.broker.Cmd.Wait()
	// A heartbeat goes to the dead broker: its request is never answered.
	time.Sleep(fleet.HeartbeatInterval + 500*time.Millisecond)
	d = stopAgent(t, down, 15*time.Second)
	out := down.Out.String()
	if !regexp.MustCompile(`could not publish the final heartbeat: fleet: publish down-\S+ to replayctl\.agents: .+; the fleet will see this agent as lost, not stopped, `+
		fleet.LostAfter.String()+` after its last heartbeat`).MatchString(out) || !strings.Contains(out, "agent stopped") {
		t.Fatalf("agent stopped with the broker killed: no word of the final heartbeat:\n%s", out)
	}
	t.Logf("broker killed: stopped %s after SIGTERM", d)
}

// stopAgent sends SIGTERM to an agent and waits up to bound for it to exit
// with status 0; past bound it dumps its goroutines (SIGQUIT) and fails.
func stopAgent(t *testing.T, p *testutil.Proc, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Cmd.Wait() }()
	select {
	case err := <-done:
		d := time.Since(start)
		if err != nil {
			t.Fatalf("agent exited after %s: %v\n%s", d, err, p.Out.String())
		}
		return d
	case <-time.After(bound):
		_ = p.Cmd.Process.Signal(syscall.SIGQUIT)
		<-done
		t.Fatalf("agent still running %s after SIGTERM:\n%s", bound, p.Out.String())
	}
	return 0
}
