package fleet

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/replayctl/replayctl/internal/testutil"
)

// TestConcurrentRunsWriteOneFile: two jobs on one agent whose scenarios
// write the same file (report: {json: out.json}, relative: both resolve in
// --work-dir) would write one file at once, each report overwriting or
// interleaving with the other's. The second is refused, saying which file
// and which job writes it; once that job has ended, the file is free.
func TestConcurrentRunsWriteOneFile(t *testing.T) {
	f := newIDFleet(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	work := filepath.Join(t.TempDir(), "work")
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: "load-1", Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, MaxConcurrent: 3,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTwoRequests(t, work)
	f.run(t, "load-1", a, log)
	f.waitAlive(t, "load-1")
	same := gorReplay("same", work, srv.URL, "    loop: {for: 1h}\n    report: {json: out.json}\n")
	other := gorReplay("other", work, srv.URL, "    loop: {for: 1h}\n    report: {json: other.json}\n")
	f.publishReplay(t, "w1", "load-1", same)
	f.waitShard(t, "w1", Running)
	f.publishReplay(t, "w2", "load-1", same)
	f.publishReplay(t, "w3", "load-1", other)
	const want = "it writes out.json, which job w1 (shard 0) is writing on this agent now: two runs would write one file; give it another path (--set) or submit it when that one has ended"
	if s := f.waitShard(t, "w2", Refused); s.Reason != want {
		t.Errorf("w2 REFUSED %q, want %q", s.Reason, want)
	}
	f.waitShard(t, "w3", Running) // another file: it runs beside w1
	f.cancel(t, "w1")
	f.waitShard(t, "w1", Cancelled)
	f.publishReplay(t, "w4", "load-1", same)
	f.waitShard(t, "w4", Running)
	f.cancel(t, "w3")
	f.cancel(t, "w4")
	f.waitShard(t, "w3", Cancelled)
	f.waitShard(t, "w4", Cancelled)
}
