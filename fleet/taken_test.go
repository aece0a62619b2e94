package fleet

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReplayedSpecAfterStatusesDeleted: a signed spec published again after
// its job's statuses were deleted from the status topic (which every agent
// and submitter may write) is refused as replayed: the agent keeps the
// jobs it took in its work directory. It ran the job again, as often as
// the spec was valid; a restarted agent remembers them too.
func TestReplayedSpecAfterStatusesDeleted(t *testing.T) {
	f := newIDFleet(t)
	hits, target, work := countedTwoRequests(t)
	a, _ := f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.WorkDir = work })
	spec := replaySpec("j-once", "load-1", onceReplay(work, target))
	env, err := Seal("spec", spec, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-once", env); err != nil {
		t.Fatal(err)
	}
	if s := f.finalShard(t, "j-once"); s.State != Succeeded || hits.Load() != 2 {
		t.Fatalf("first run: %s %q, %d requests\n%s", s.State, s.Reason, hits.Load(), a.log.String())
	}
	deleteStatuses := func() {
		t.Helper()
		if err := f.bus.Sync(f.ctx); err != nil {
			t.Fatal(err)
		}
		for key := range f.bus.StatusPrefix("job/j-once") {
			if err := f.bus.Plain().ProduceSync(f.ctx, &kgo.Record{Topic: StatusTopic, Key: []byte(key)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, "the statuses deleted", func() bool { return len(f.bus.StatusPrefix("job/j-once")) == 0 })
	}
	republish := func(a *idAgent) {
		t.Helper()
		deleteStatuses()
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-once", env); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 15*time.Second, "the copy refused", func() bool {
			for _, s := range f.bus.StatusPrefix(jobKey("j-once") + "/refused/load-1/") {
				if strings.Contains(s.Reason, "replayed: job j-once was already taken by this agent (its work directory records it") {
					return true
				}
			}
			return false
		})
		if n := hits.Load(); n != 2 {
			t.Fatalf("the target got %d requests, want the first run's 2\n%s", n, a.log.String())
		}
	}
	republish(a)
	// A restarted agent (a new process on the same work directory).
	a.stop()
	err = <-a.done
	a.done <- err // for its cleanup
	b, _ := f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.WorkDir = work })
	republish(b)
	if data, err := os.ReadFile(takenPath(work, "load-1")); err != nil || !strings.HasPrefix(string(data), "j-once\t") {
		t.Errorf("ledger %q, %v", data, err)
	}
}

// TestTakenLedgerForgetsExpired: the ledger keeps a job while its spec may
// be valid (its expiry and a margin), and drops it after, and a line cut
// by a crash loses nothing before it.
func TestTakenLedgerForgetsExpired(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	l, err := openTaken(dir, "web-1", now)
	if err != nil {
		t.Fatal(err)
	}
	for id, exp := range map[string]time.Time{"old": now.Add(-2 * takenMargin), "recent": now.Add(-time.Minute), "valid": now.Add(time.Hour)} {
		if err := l.take(id, exp); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(takenPath(dir, "web-1"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("cut-mid-wri"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	l, err = openTaken(dir, "web-1", now)
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"old": false, "recent": true, "valid": true, "cut-mid-wri": false} {
		if l.took(id) != want {
			t.Errorf("took(%q) = %v, want %v", id, !want, want)
		}
	}
	if err := l.take("a\nb", now); err == nil {
		t.Error("a job ID with a newline was taken")
	}
	// Another agent sharing the work directory keeps its own ledger: it
	// takes the jobs web-1 took (the review: it refused them as replayed).
	other, err := openTaken(dir, "web-2", now)
	if err != nil {
		t.Fatal(err)
	}
	if other.took("valid") {
		t.Error("web-2 took what web-1 took")
	}
}
