package fleet

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/internal/testutil"
)

// replayAgent starts an agent that allows replay jobs to 127.0.0.1 and
// loads scenarios with LoadRestricted; it returns its work directory.
func (f *idFleet) replayAgent(t *testing.T, name string, vars map[string]string) (*idAgent, string) {
	t.Helper()
	return f.replayAgentWith(t, name, func(c *AgentConfig) { c.Vars = vars })
}

// replayAgentWith is replayAgent with its configuration changed by mod.
// Its work directory has an in.gor: an empty one, unless mod gave it a
// work directory that has one.
func (f *idFleet) replayAgentWith(t *testing.T, name string, mod func(*AgentConfig)) (*idAgent, string) {
	t.Helper()
	log := &testutil.SyncBuffer{}
	cfg := AgentConfig{
		Name: name, Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: filepath.Join(t.TempDir(), "work"), AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	}
	mod(&cfg)
	a, err := NewAgent(cfg)
	if err != nil {
		t.Fatal(err)
	}
	work := a.cfg.WorkDir
	if _, err := os.Stat(filepath.Join(work, "in.gor")); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(work, "in.gor"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ia := f.run(t, name, a, log)
	f.waitAlive(t, name)
	return ia, work
}

// submitReplay publishes a signed replay spec of text naming agent (one
// shard, no window plan) and returns the status of its shard once final.
func (f *idFleet) submitReplay(t *testing.T, id, agent, text string) Status {
	t.Helper()
	f.publishReplay(t, id, agent, text)
	return f.finalShard(t, id)
}

// TestNoiseTargetAllowed: a replay's compare noise target is sent every
// request too; it must be inside --allow-targets like the sink's targets.
func TestNoiseTargetAllowed(t *testing.T) {
	f := newIDFleet(t)
	_, work := f.replayAgent(t, "load-1", nil)
	text := `version: 1
name: noise
targets:
  t: {url: "http://127.0.0.1:9"}
  ref: {url: "http://192.0.2.1:80"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
    sink: {http: {target: t}}
    compare: {noise: {target: ref}}
`
	s := f.submitReplay(t, "j-noise", "load-1", text)
	if s.State != Refused || !strings.Contains(s.Reason, "192.0.2.1:80") || !strings.Contains(s.Reason, "--allow-targets") {
		t.Fatalf("shard %s %q, want REFUSED: the noise target is outside --allow-targets", s.State, s.Reason)
	}
}

// TestRefusalMasksVars: a refusal's reason is published; the agent's --var
// values in it are masked, as in its log.
func TestRefusalMasksVars(t *testing.T) {
	f := newIDFleet(t)
	const token = "tok-s3cr3t-value"
	a, work := f.replayAgent(t, "load-1", map[string]string{"TOKEN": token})
	text := `version: 1
name: leak
targets:
  t: {url: "http://${TOKEN}.example:80"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
    sink: {http: {target: t}}
`
	s := f.submitReplay(t, "j-leak", "load-1", text)
	if s.State != Refused || strings.Contains(s.Reason, token) || strings.Contains(s.Log, token) {
		t.Fatalf("shard %s, reason %q, log %q: want REFUSED, the token masked", s.State, s.Reason, s.Log)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if js, _ := f.bus.Status(jobKey("j-leak")); strings.Contains(js.Reason, token) {
		t.Fatalf("job status shows the token: %q", js.Reason)
	}
	if strings.Contains(a.log.String(), token) {
		t.Fatalf("agent log shows the token:\n%s", a.log.String())
	}
}

// TestMaxRun: a job that would run for an hour (a replay looping for 1h)
// is stopped at the agent's --max-run and ends CANCELLED, saying why.
func TestMaxRun(t *testing.T) {
	f := newIDFleet(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	work := filepath.Join(t.TempDir(), "work")
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: "load-1", Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, MaxRun: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTwoRequests(t, work)
	actx, stop := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	t.Cleanup(func() {
		stop()
		<-done
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	})
	f.waitAlive(t, "load-1")
	text := foreverReplay(work, srv.URL)
	start := time.Now()
	s := f.submitReplay(t, "j-forever", "load-1", text)
	if s.State != Cancelled || !strings.Contains(s.Reason, "--max-run 2s") || time.Since(start) > 15*time.Second {
		t.Fatalf("shard %s %q after %s, want CANCELLED at --max-run", s.State, s.Reason, time.Since(start).Round(time.Millisecond))
	}
}

// writeTwoRequests writes in.gor in work: two GETs 100 ms apart, captured now.
func writeTwoRequests(t *testing.T, work string) {
	t.Helper()
	now := time.Now().UnixNano()
	gor := fmt.Sprintf("1 a1 %d 0\nGET / HTTP/1.1\r\nHost: x\r\n\r\n%s1 a2 %d 0\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n%s", now, gorfile.Separator, now+int64(100*time.Millisecond), gorfile.Separator)
	if err := os.WriteFile(filepath.Join(work, "in.gor"), []byte(gor), 0o600); err != nil {
		t.Fatal(err)
	}
}

// countedTwoRequests starts a loopback target that counts the requests it
// gets, and writes two requests to a new work dir's in.gor
// (writeTwoRequests).
func countedTwoRequests(t *testing.T) (hits *atomic.Int64, target, work string) {
	t.Helper()
	hits = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	work = filepath.Join(t.TempDir(), "work")
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	writeTwoRequests(t, work)
	return hits, srv.URL, work
}

// gorReplay is a scenario named name whose replay sends work's in.gor to
// target, with the job keys of extra (indented as the job's, or "").
func gorReplay(name, work, target, extra string) string {
	return `version: 1
name: ` + name + `
targets:
  t: {url: "` + target + `"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
` + extra + `    sink: {http: {target: t}}
`
}

// onceReplay is a scenario whose replay sends work's in.gor to target
// once.
func onceReplay(work, target string) string { return gorReplay("once", work, target, "") }

// foreverReplay is a scenario whose replay loops work's in.gor to target
// for an hour: a run that goes on until it is stopped.
func foreverReplay(work, target string) string {
	return gorReplay("forever", work, target, "    loop: {for: 1h}\n")
}

// TestSecretAssertNotPublishableRefused: an assertion whose secret --var
// reaches the summary as a number (requests.sent >= len("${API_TOKEN}"))
// could be evaluated on merged totals only with the token published; the
// agent refuses the job, saying which assertion and why, without the
// token.
func TestSecretAssertNotPublishableRefused(t *testing.T) {
	f := newIDFleet(t)
	const token = "tok-s3cr3t-value"
	_, target, work := countedTwoRequests(t)
	f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.WorkDir, c.Vars = work, map[string]string{"API_TOKEN": token} })
	text := gorReplay("leak", work, target, "    assert: ['requests.sent >= len(\"${API_TOKEN}\")']\n")
	s := f.submitReplay(t, "j-len", "load-1", text)
	if s.State != Refused || !strings.Contains(s.Reason, `assert requests.sent >= len("${API_TOKEN}") reads a secret`) || strings.Contains(s.Reason+s.Log, token) {
		t.Fatalf("shard %s %q: want REFUSED naming the assertion as written, without the token", s.State, s.Reason)
	}
}
