package fleet

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/internal/testutil"
)

// replaySpec is a replay spec of text naming agent (one shard, no window
// plan), as jobs submit writes it.
func replaySpec(id, agent, text string) Spec {
	now := time.Now().UTC()
	return Spec{JobID: id, Kind: KindReplay, Job: "replay", Scenario: text, SHA256: ScenarioHash(text),
		Selector: Selector{"role": "load"}, Agents: []string{agent}, Shards: 1, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test"}
}

// publishSpec publishes spec signed by the fleet's key, and its ASSIGNED
// status naming it, as jobs submit does; it returns the spec's offset.
func (f *idFleet) publishSpec(t *testing.T, spec Spec) int64 {
	t.Helper()
	env, err := Seal("spec", spec, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+spec.JobID, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bus.PublishStatus(f.ctx, jobKey(spec.JobID), Status{JobID: spec.JobID, Kind: spec.Kind, State: Assigned, Agents: spec.Agents, SpecOffset: rec.Offset}); err != nil {
		t.Fatal(err)
	}
	return rec.Offset
}

// publishReplay publishes a signed replay spec of text naming agent (one
// shard, no window plan) and its ASSIGNED status, as jobs submit does.
func (f *idFleet) publishReplay(t *testing.T, id, agent, text string) {
	t.Helper()
	f.publishSpec(t, replaySpec(id, agent, text))
}

// finalShard waits until shard 0 of job id is final and returns it.
func (f *idFleet) finalShard(t *testing.T, id string) Status {
	t.Helper()
	var s Status
	waitFor(t, 30*time.Second, "the shard's final state", func() bool {
		var ok bool
		s, ok = f.bus.Status(shardKey(id, 0))
		return ok && s.State.Final()
	})
	return s
}

// finalJob waits up to timeout for job id's final status and returns it.
func (f *idFleet) finalJob(t *testing.T, id string, timeout time.Duration) Status {
	t.Helper()
	var js Status
	waitFor(t, timeout, "the job's final status", func() bool {
		var ok bool
		js, ok = f.bus.Status(jobKey(id))
		return ok && js.State.Final()
	})
	return js
}

// cancel publishes a signed cancel of a job, as jobs cancel does.
func (f *idFleet) cancel(t *testing.T, id string) {
	t.Helper()
	now := time.Now().UTC()
	env, err := Seal("cancel", Cancel{CommandID: "cancel-" + id, JobID: id, IssuedAt: now, ExpiresAt: now.Add(time.Minute), Submitter: "tester"}, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.bus.Publish(f.ctx, JobsTopic, "cancel/"+id, env); err != nil {
		t.Fatal(err)
	}
}

// waitShard waits until shard 0 of job id is in state and returns it.
func (f *idFleet) waitShard(t *testing.T, id string, state State) Status {
	t.Helper()
	var s Status
	waitFor(t, 20*time.Second, fmt.Sprintf("job %s %s", id, state), func() bool {
		var ok bool
		s, ok = f.bus.Status(shardKey(id, 0))
		return ok && s.State == state
	})
	return s
}

// gaugeValue reads a gauge of m as /metrics shows it.
func gaugeValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	return metricValue(t, m, name).GetGauge().GetValue()
}

// TestMaxConcurrent: an agent runs at most --max-concurrent jobs at once;
// the ones it takes beyond that are QUEUED (saying why and how many are
// ahead), start in the order taken as runs end, and are never dropped: a
// cancel or the agent's stop ends a queued one CANCELLED, saying so.
func TestMaxConcurrent(t *testing.T) {
	f := newIDFleet(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	work := filepath.Join(t.TempDir(), "work")
	log := &testutil.SyncBuffer{}
	m := NewMetrics()
	a, err := NewAgent(AgentConfig{
		Name: "load-1", Labels: Labels{"role": "load"}, Allow: []string{KindReplay}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: work, AllowTargets: []string{"127.0.0.1:*"}, Kafka: f.cfg, MaxConcurrent: 2, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(log, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTwoRequests(t, work)
	ia := f.run(t, "load-1", a, log)
	f.waitAlive(t, "load-1")
	// Every 10 ms: the runs holding a slot, at most 2 ever.
	var most atomic.Int64
	sctx, stopSampling := context.WithCancel(f.ctx)
	defer stopSampling()
	go func() {
		for sctx.Err() == nil {
			a.mu.Lock()
			n := int64(a.active)
			a.mu.Unlock()
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	text := foreverReplay(work, srv.URL)
	for _, id := range []string{"j1", "j2", "j3", "j4"} {
		f.publishReplay(t, id, "load-1", text)
	}
	f.waitShard(t, "j1", Running)
	f.waitShard(t, "j2", Running)
	for _, c := range []struct {
		id, want string
	}{
		{"j3", "waiting: 2 runs going on this agent (its --max-concurrent 2), 0 queued ahead of this one"},
		{"j4", "waiting: 2 runs going on this agent (its --max-concurrent 2), 1 queued ahead of this one"},
	} {
		if s := f.waitShard(t, c.id, Queued); s.Reason != c.want {
			t.Errorf("%s QUEUED %q, want %q", c.id, s.Reason, c.want)
		}
	}
	waitFor(t, 5*time.Second, "the metrics", func() bool {
		return gaugeValue(t, m, "replayctl_agent_runs") == 2 && gaugeValue(t, m, "replayctl_agent_runs_queued") == 2
	})
	// The heartbeats say it too, naming every run (the queued in their
	// turn), and agents ls shows it.
	var runs []string
	waitFor(t, 3*HeartbeatInterval, "a heartbeat with 2 running and 2 queued", func() bool {
		h, _, _ := f.bus.Agent("load-1")
		runs = runs[:0]
		for _, r := range h.Runs {
			runs = append(runs, fmt.Sprintf("%s/%d queued=%v", r.Job, *r.Shard, r.Queued))
		}
		return h.Running == 2 && h.Queued == 2 && h.MaxConcurrent == 2 && len(h.Runs) == 4
	})
	if want := []string{"j1/0 queued=false", "j2/0 queued=false", "j3/0 queued=true", "j4/0 queued=true"}; !slices.Equal(runs, want) {
		t.Errorf("the heartbeat names runs %q, want %q", runs, want)
	}
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	if !regexp.MustCompile(`(?m)^NAME .* JOB +RUNNING +QUEUED +MAX SPEC TTL +CLOCK OFFSET`).MatchString(ls.String()) ||
		!regexp.MustCompile(`(?m)^load-1 +role=load +replay +\S* +\S+ ago +alive +j[12] +2/2 +2 `).MatchString(ls.String()) {
		t.Errorf("agents ls does not show 2 of 2 running and 2 queued:\n%s", ls.String())
	}

	// A queued job cancelled ends CANCELLED without running.
	f.cancel(t, "j4")
	if s := f.waitShard(t, "j4", Cancelled); s.Reason != "cancelled by tester while it was queued" {
		t.Errorf("j4: %q", s.Reason)
	}
	if s, _ := f.bus.Status(shardKey("j3", 0)); s.State != Queued {
		t.Fatalf("j3 %s %q, want still QUEUED", s.State, s.Reason)
	}
	// A run that ends gives its slot to the first queued.
	f.cancel(t, "j1")
	f.waitShard(t, "j1", Cancelled)
	if s := f.waitShard(t, "j3", Running); s.Reason != "" {
		t.Errorf("j3 RUNNING with reason %q", s.Reason)
	}
	f.publishReplay(t, "j5", "load-1", text)
	f.waitShard(t, "j5", Queued)

	// The agent's stop ends the runs and the queued alike.
	ia.stop()
	if err := <-ia.done; err != nil {
		t.Fatal(err)
	}
	ia.done <- nil
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id, want string
	}{{"j2", "agent stopped"}, {"j3", "agent stopped"}, {"j5", "agent stopped while it was queued"}} {
		if s, _ := f.bus.Status(shardKey(c.id, 0)); s.State != Cancelled || s.Reason != c.want {
			t.Errorf("%s %s %q, want CANCELLED %q", c.id, s.State, s.Reason, c.want)
		}
	}
	for _, id := range []string{"j4", "j5"} {
		if strings.Contains(log.String(), `msg="job running" agent=load-1 job=`+id) {
			t.Errorf("%s ran:\n%s", id, log.String())
		}
	}
	if n := most.Load(); n != 2 {
		t.Errorf("at most %d runs at once, want 2", n)
	}
	if r, q := gaugeValue(t, m, "replayctl_agent_runs"), gaugeValue(t, m, "replayctl_agent_runs_queued"); r != 0 || q != 0 {
		t.Errorf("after the stop: %v running, %v queued", r, q)
	}
}

// TestAgentsListOlderHeartbeat: a heartbeat without the run counts and
// the --max-spec-ttl (an agent older than them) shows "-" for them in
// agents ls, not 0 queued.
func TestAgentsListOlderHeartbeat(t *testing.T) {
	f := newIDFleet(t)
	f.beat(t, "old-1", Labels{"role": "web"}, false)
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	if !regexp.MustCompile(`(?m)^old-1 +role=web +record +other +\S+ ago +alive +- +- +- +- `).MatchString(ls.String()) {
		t.Errorf("agents ls:\n%s", ls.String())
	}
}

// TestAgentsListMaxSpecTTL: agents ls shows the --max-spec-ttl an agent
// runs with, from its heartbeats (the bound past which it refuses a spec).
func TestAgentsListMaxSpecTTL(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgentWith(t, "load-1", func(c *AgentConfig) { c.MaxSpecTTL = time.Hour })
	f.replayAgentWith(t, "load-2", func(*AgentConfig) {})
	waitFor(t, 3*HeartbeatInterval, "heartbeats stating the bounds", func() bool {
		h1, _, _ := f.bus.Agent("load-1")
		h2, _, _ := f.bus.Agent("load-2")
		return h1.MaxSpecTTL != 0 && h2.MaxSpecTTL != 0
	})
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	for _, want := range []string{
		`(?m)^NAME .* QUEUED +MAX SPEC TTL +CLOCK OFFSET `,
		`(?m)^load-1 +role=load +replay +\S* +\S+ ago +alive +- +0/4 +0 +1h0m0s +\S+ `,
		`(?m)^load-2 +role=load +replay +\S* +\S+ ago +alive +- +0/4 +0 +24h0m0s +\S+ `,
	} {
		if !regexp.MustCompile(want).MatchString(ls.String()) {
			t.Errorf("agents ls does not match %s:\n%s", want, ls.String())
		}
	}
}
