package fleet

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/internal/testutil"
)

// TestShardArmedUntilStart: a replay shard is ARMED from its checks until
// its spec's one start instant, and RUNNING from then, when its first
// request goes: a job whose shards wait for their start shows it (it said
// RUNNING the moment it armed, waiting seconds or, with a start-at, hours).
func TestShardArmedUntilStart(t *testing.T) {
	f := newIDFleet(t)
	var first atomic.Int64 // when the target got its first request (Unix ns)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		first.CompareAndSwap(0, time.Now().UnixNano())
	}))
	t.Cleanup(srv.Close)
	work := filepath.Join(t.TempDir(), "work")
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: "load-1", Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTwoRequests(t, work)
	f.run(t, "load-1", a, log)
	f.waitAlive(t, "load-1")

	spec := replaySpec("armed-1", "load-1", foreverReplay(work, srv.URL))
	start := time.Now().Add(5 * time.Second).UTC()
	spec.Replay = &ReplayPlan{Window: "w", Topic: "t", Shards: []ShardPlan{{Index: 0}}, StartAt: start}
	f.publishSpec(t, spec)
	f.waitShard(t, "armed-1", Armed)
	if time.Now().After(start) {
		t.Fatalf("the shard armed only after its start instant (the agent took %s):\n%s", time.Since(start), log.String())
	}
	f.waitShard(t, "armed-1", Running)
	if early := start.Sub(time.Now()); early > 0 {
		t.Errorf("the shard said RUNNING %s before its start instant", early)
	}
	if at := time.Unix(0, first.Load()); first.Load() == 0 || at.Before(start) {
		t.Errorf("the first request went at %s, the start instant is %s", at.Format(time.RFC3339Nano), start.Format(time.RFC3339Nano))
	}
	f.cancel(t, "armed-1")
	f.waitShard(t, "armed-1", Cancelled)
}
