package fleet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
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
	"github.com/replayctl/replayctl/scenario"
)

// TestCheckValidity: a command is refused when it is valid for longer than
// the agent's bound, has no issue time, or was issued more than ClockSkew
// ahead of the agent's clock; each reason names the figures.
func TestCheckValidity(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name            string
		issued, expires time.Time
		want            error
		says            []string
	}{
		{"the default", now, now.Add(DefaultTTL), nil, nil},
		{"exactly the bound", now, now.Add(time.Hour), nil, nil},
		{"issued within the skew", now.Add(ClockSkew), now.Add(ClockSkew + DefaultTTL), nil, nil},
		{"issued before, still valid", now.Add(-30 * time.Minute), now.Add(30 * time.Minute), nil, nil},
		{"a second over", now, now.Add(time.Hour + time.Second), ErrTooLong,
			[]string{"valid for 1h0m1s (issued 2026-12-06T12:00:00Z, expires 2026-12-06T13:00:01Z), more than this agent's --max-spec-ttl 1h0m0s"}},
		{"a hundred years", now, now.AddDate(100, 0, 0), ErrTooLong, []string{"valid for 876576h0m0s", "--max-spec-ttl 1h0m0s"}},
		{"no issue time", time.Time{}, now.Add(time.Minute), ErrTooLong, []string{"no issued-at time", "--max-spec-ttl is 1h0m0s"}},
		{"issued an hour ahead", now.Add(time.Hour), now.Add(time.Hour + DefaultTTL), ErrIssuedAhead,
			[]string{"issued at 2026-12-06T13:00:00Z, 1h0m0s ahead of this agent's clock (now 2026-12-06T12:00:00Z), more than the 2m0s of clock skew it allows"}},
		{"just past the skew", now.Add(ClockSkew + time.Second), now.Add(time.Hour), ErrIssuedAhead, []string{"2m1s ahead"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkValidity(c.issued, c.expires, now, time.Hour)
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("%v, want %v", err, c.want)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q lacks %q", err, s)
				}
			}
		})
	}
}

// TestMaxSpecTTLConfig: an agent's bound defaults to DefaultMaxSpecTTL and
// lies between CancelTTL (shorter, it would refuse every cancel) and MaxTTL.
func TestMaxSpecTTLConfig(t *testing.T) {
	cfg := func(d time.Duration) AgentConfig {
		return AgentConfig{Name: "a", Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{make([]byte, ed25519.PublicKeySize)}, WorkDir: t.TempDir(), MaxSpecTTL: d}
	}
	a, err := NewAgent(cfg(0))
	if err != nil || a.cfg.MaxSpecTTL != DefaultMaxSpecTTL || DefaultMaxSpecTTL != 24*time.Hour {
		t.Fatalf("default: %v, %s", err, a.cfg.MaxSpecTTL)
	}
	for _, d := range []time.Duration{CancelTTL, time.Hour, MaxTTL} {
		if _, err := NewAgent(cfg(d)); err != nil {
			t.Errorf("%s: %v", d, err)
		}
	}
	for _, d := range []time.Duration{-time.Hour, time.Minute, CancelTTL - time.Second, MaxTTL + time.Second, 100 * 365 * 24 * time.Hour} {
		if _, err := NewAgent(cfg(d)); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("--max-spec-ttl %s: want 10m0s to 24h0m0s", d)) {
			t.Errorf("%s: %v", d, err)
		}
	}
}

// TestSpecValidityBounded: an agent (real broker, restricted loader) runs a
// normal spec, and refuses, with its fleet's refusal and a reason naming
// both figures, a signed spec valid for longer than its --max-spec-ttl (a
// captured envelope re-published years later) and one issued in the future
// beyond the clock skew it allows. The job of a refused spec ends FAILED
// with the reason.
func TestSpecValidityBounded(t *testing.T) {
	f := newIDFleet(t)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	_, work := f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.MaxSpecTTL = time.Hour })
	gor := fmt.Sprintf("1 a1 %d 0\nGET /one HTTP/1.1\r\nHost: x\r\n\r\n%s", time.Now().UnixNano(), gorfile.Separator)
	if err := os.WriteFile(filepath.Join(work, "in.gor"), []byte(gor), 0o600); err != nil {
		t.Fatal(err)
	}
	text := onceReplay(work, srv.URL)
	refused := func(t *testing.T, spec Spec, want string) {
		t.Helper()
		// PENDING first, as jobs submit writes it: a final status the
		// agent writes before ASSIGNED is not replaced by it (awaitAssigned).
		if err := f.bus.PublishStatus(f.ctx, jobKey(spec.JobID), Status{JobID: spec.JobID, Kind: spec.Kind, State: Pending}); err != nil {
			t.Fatal(err)
		}
		off := f.publishSpec(t, spec)
		var s Status
		waitFor(t, 20*time.Second, "the refusal", func() bool {
			var ok bool
			s, ok = f.bus.Status(refusedKey(spec.JobID, "load-1", off))
			return ok
		})
		if s.State != Refused || s.Unverified || !strings.Contains(s.Reason, want) {
			t.Errorf("refusal %s %q (unverified %v), want REFUSED with %q", s.State, s.Reason, s.Unverified, want)
		}
		var js Status
		waitFor(t, 20*time.Second, "the job's end", func() bool {
			js, _ = f.bus.Status(jobKey(spec.JobID))
			return js.State.Final()
		})
		if js.State != Failed || !strings.HasPrefix(js.Reason, "load-1: ") || !strings.Contains(js.Reason, want) {
			t.Errorf("job %s %q, want FAILED with the refusal", js.State, js.Reason)
		}
		if _, ran := f.bus.Status(shardKey(spec.JobID, 0)); ran {
			t.Errorf("job %s ran", spec.JobID)
		}
	}

	t.Run("a hundred years", func(t *testing.T) {
		spec := replaySpec("j-century", "load-1", text)
		spec.ExpiresAt = spec.IssuedAt.AddDate(100, 0, 0)
		refused(t, spec, fmt.Sprintf("valid for too long: valid for %s (issued %s, expires %s), more than this agent's --max-spec-ttl 1h0m0s",
			spec.ExpiresAt.Sub(spec.IssuedAt), spec.IssuedAt.Format(time.RFC3339), spec.ExpiresAt.Format(time.RFC3339)))
	})
	t.Run("a day, over the agent's hour", func(t *testing.T) {
		spec := replaySpec("j-day", "load-1", text)
		spec.ExpiresAt = spec.IssuedAt.Add(MaxTTL)
		refused(t, spec, "valid for 24h0m0s")
	})
	t.Run("issued in the future", func(t *testing.T) {
		spec := replaySpec("j-future", "load-1", text)
		spec.IssuedAt = spec.IssuedAt.Add(time.Hour)
		spec.ExpiresAt = spec.IssuedAt.Add(DefaultTTL)
		refused(t, spec, fmt.Sprintf("issued in the future: issued at %s, ", spec.IssuedAt.Format(time.RFC3339)))
		if s, _ := f.bus.Status(jobKey("j-future")); !strings.Contains(s.Reason, "more than the 2m0s of clock skew it allows") {
			t.Errorf("reason %q does not name the skew allowed", s.Reason)
		}
	})
	if hits.Load() != 0 {
		t.Fatalf("the target was sent %d requests by refused specs", hits.Load())
	}
	t.Run("a normal spec runs", func(t *testing.T) {
		spec := replaySpec("j-normal", "load-1", text)
		spec.IssuedAt = spec.IssuedAt.Add(ClockSkew / 2) // a submitter's clock a little ahead
		spec.ExpiresAt = spec.IssuedAt.Add(time.Hour)    // exactly the bound
		f.publishSpec(t, spec)
		s := f.finalShard(t, "j-normal")
		if s.State != Succeeded || s.Result == nil || s.Result.Sent != 1 || hits.Load() != 1 {
			t.Fatalf("shard %s %q (result %+v, %d hits), want SUCCEEDED, 1 request sent", s.State, s.Reason, s.Result, hits.Load())
		}
	})
}

// TestCancelValidityBounded: a signed cancel valid for longer than the
// agent's --max-spec-ttl, or issued in the future, is not obeyed: the
// agent publishes its refusal under the command's ID (what jobs cancel
// reads) and the job goes on; a normal cancel then stops it.
func TestCancelValidityBounded(t *testing.T) {
	f := newIDFleet(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	_, work := f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.MaxSpecTTL = time.Hour })
	writeTwoRequests(t, work)
	text := foreverReplay(work, srv.URL)
	f.publishReplay(t, "j-run", "load-1", text)
	f.waitShard(t, "j-run", Running)
	cancel := func(t *testing.T, cmd string, issued, expires time.Time) {
		t.Helper()
		env, err := Seal("cancel", Cancel{CommandID: cmd, JobID: "j-run", IssuedAt: issued, ExpiresAt: expires, Submitter: "tester"}, f.priv)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "cancel/j-run", env); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now().UTC()
	for _, c := range []struct {
		cmd             string
		issued, expires time.Time
		want            string
	}{
		{"c-long", at, at.Add(MaxTTL), "cancel refused: valid for too long: valid for 24h0m0s"},
		{"c-ahead", at.Add(time.Hour), at.Add(time.Hour + CancelTTL), "cancel refused: issued in the future: "},
	} {
		cancel(t, c.cmd, c.issued, c.expires)
		var s Status
		waitFor(t, 20*time.Second, "the refusal of "+c.cmd, func() bool {
			var ok bool
			s, ok = f.bus.Status(cancelRefusedKey(c.cmd, "load-1"))
			return ok
		})
		if s.State != Refused || !strings.Contains(s.Reason, c.want) || !strings.Contains(s.Reason, "1h0m0s") {
			t.Errorf("%s: %s %q, want REFUSED with %q and the agent's bound", c.cmd, s.State, s.Reason, c.want)
		}
	}
	if s, _ := f.bus.Status(shardKey("j-run", 0)); s.State != Running {
		t.Fatalf("after the refused cancels the shard is %s %q, want RUNNING", s.State, s.Reason)
	}
	now2 := time.Now().UTC()
	cancel(t, "c-ok", now2, now2.Add(CancelTTL))
	if s := f.waitShard(t, "j-run", Cancelled); s.Reason != "cancelled by tester" {
		t.Errorf("shard CANCELLED %q", s.Reason)
	}
}

// TestSubmitRefusesTTLOverAgentBound: an agent's heartbeat states its
// --max-spec-ttl; a submission whose TTL is longer for a job that would
// run on it is refused (a usage error, nothing published) rather than
// refused by the agent; one within it is submitted.
func TestSubmitRefusesTTLOverAgentBound(t *testing.T) {
	f := newIDFleet(t)
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: "web-1", Labels: Labels{"role": "assign"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: filepath.Join(t.TempDir(), "work"), Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)), MaxSpecTTL: time.Hour,
		Load: func(string, []byte, []string, map[string]string, string) (*scenario.Scenario, error) {
			return nil, errors.New("run by the test")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.run(t, "web-1", a, log)
	f.waitAlive(t, "web-1")
	waitFor(t, 3*HeartbeatInterval, "a heartbeat stating the bound", func() bool {
		h, _, _ := f.bus.Agent("web-1")
		return time.Duration(h.MaxSpecTTL) == time.Hour
	})
	var out strings.Builder
	c := &Client{bus: f.bus, Out: &out}
	req := SubmitRequest{Text: []byte(assignScenario), Job: "record", Selector: Selector{"role": "assign"}, Key: f.priv, JobID: "j-long", TTL: 2 * time.Hour}
	_, err = c.SubmitJob(f.ctx, req)
	want := "ttl 2h0m0s: more than the --max-spec-ttl of agents the job would run on (web-1's is 1h0m0s); they would refuse the spec: give a ttl of 1h0m0s or less"
	if !errors.Is(err, ErrUsage) || err.Error() != want {
		t.Fatalf("submit with a 2h TTL: %v\nwant the usage error %q", err, want)
	}
	if _, published := f.bus.Status(jobKey("j-long")); published {
		t.Fatal("the refused submission published the job")
	}
	req.JobID, req.TTL = "j-hour", time.Hour
	if _, err := c.SubmitJob(f.ctx, req); err != nil {
		t.Fatalf("submit with a 1h TTL: %v", err)
	}
	js, _ := f.bus.Status(jobKey("j-hour"))
	if js.State == Pending || len(js.Agents) != 1 {
		t.Fatalf("job j-hour %s %v, want it assigned to web-1", js.State, js.Agents)
	}
	if strings.Contains(log.String(), "valid for too long") {
		t.Fatalf("the agent refused the 1h spec:\n%s", log.String())
	}
}
