package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestAgentsShowRuns: /v1/agents shows how many jobs or shards each agent
// runs and has QUEUED, its --max-concurrent and its --max-spec-ttl, as its
// latest heartbeat says, and every one of those runs; an agent whose
// heartbeats are older than those fields shows none of them (not 0
// queued), and as its runs the one job its heartbeat names. A clock offset
// the agent could not measure is said to be so, and a clock more than 1m
// off the broker's says what it does to specs.
func TestAgentsShowRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus := embeddedBus(t, ctx)
	now := time.Now().UTC()
	zero, one := 0, 1
	for _, h := range []fleet.Heartbeat{
		{Name: "busy", Allow: []string{fleet.KindReplay}, At: now, Job: "j1", Running: 2, Queued: 3, MaxConcurrent: 2, MaxSpecTTL: fleet.Duration(time.Hour),
			ClockOffset: fleet.Duration(-3 * time.Minute), Runs: []fleet.Run{{Job: "j1", Shard: &zero}, {Job: "rec"}, {Job: "j2", Shard: &one, Queued: true}}},
		{Name: "idle", Allow: []string{fleet.KindReplay}, At: now, MaxConcurrent: 4, MaxSpecTTL: fleet.Duration(fleet.DefaultMaxSpecTTL), ClockUnmeasured: true},
		{Name: "older", Allow: []string{fleet.KindRecord}, At: now, Job: "old-job"},
	} {
		if _, err := bus.Publish(ctx, fleet.AgentsTopic, h.Name, h); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{bus: bus}
	rec := httptest.NewRecorder()
	s.listAgents(rec, httptest.NewRequest(http.MethodGet, "/v1/agents", nil), Token{})
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/agents: %d %s", rec.Code, rec.Body)
	}
	var raw []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range raw {
		var runs []string
		for _, k := range []string{"running", "queued", "max_concurrent", "max_spec_ttl", "clock_offset", "clock_unmeasured", "clock_off", "runs"} {
			if v, ok := a[k]; ok {
				if k == "runs" {
					text, _ := json.Marshal(v)
					v = string(text)
				}
				runs = append(runs, fmt.Sprint(k, "=", v))
			}
		}
		got[a["name"].(string)] = strings.Join(runs, " ")
	}
	for name, want := range map[string]string{
		"busy": "running=2 queued=3 max_concurrent=2 max_spec_ttl=1h0m0s clock_offset=-3m0s " +
			"clock_off=its clock is 3m0s ahead of the broker's: specs expire 3m0s early on it (one submitted with a shorter --ttl is refused as expired) " +
			`runs=[{"job":"j1","shard":0},{"job":"rec"},{"job":"j2","queued":true,"shard":1}]`,
		"idle":  "running=0 queued=0 max_concurrent=4 max_spec_ttl=24h0m0s clock_offset=0s clock_unmeasured=true",
		"older": `clock_offset=0s runs=[{"job":"old-job"}]`,
	} {
		if g, ok := got[name]; !ok || g != want {
			t.Errorf("agent %s: %q, want %q (all: %v)", name, g, want, got)
		}
	}
}

// TestAgentsSkewedClock: on an agents topic whose broker keeps its
// producers' timestamps (created CreateTime ahead of time), a heartbeat's
// record timestamp is its agent's clock.
// /v1/agents says when serve read an agent's latest heartbeat and how long
// ago, on serve's clock: an agent 2 min behind showed "2 min ago" on the
// Agents page while it heartbeat. A serve that has just opened the topics
// reads heartbeats from before: it waits for the agents' next ones (an
// agent 2 min behind looked lost, one 1 h ahead that died looked alive).
func TestAgentsSkewedClock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bus, cfg := producerTimeBus(ctx, t)
	beat := func(name string, offset time.Duration) {
		at := time.Now().Add(offset)
		h := fleet.Heartbeat{Name: name, Allow: []string{fleet.KindReplay}, At: at.UTC(), Instance: name + "-1"}
		v, err := json.Marshal(h)
		if err != nil {
			t.Error(err)
			return
		}
		r := &kgo.Record{Topic: fleet.AgentsTopic, Key: []byte(name), Value: v, Timestamp: at}
		if err := bus.Plain().ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Error(err)
		}
	}
	// behind heartbeats every HeartbeatInterval with its clock 2 min
	// behind; ahead, its clock 1 h ahead, heartbeats once and dies.
	beat("behind", -2*time.Minute)
	beat("ahead", time.Hour)
	bctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(fleet.HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-bctx.Done():
				return
			case <-tick.C:
				beat("behind", -2*time.Minute)
			}
		}
	}()
	defer func() { stop(); <-done }()

	list := func(t *testing.T, bus *fleet.Bus) map[string]AgentView {
		t.Helper()
		s := &Server{bus: bus}
		rec := httptest.NewRecorder()
		s.listAgents(rec, httptest.NewRequest(http.MethodGet, "/v1/agents", nil), Token{})
		if rec.Code != http.StatusOK {
			t.Fatalf("GET /v1/agents: %d %s", rec.Code, rec.Body)
		}
		var out []AgentView
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatal(err)
		}
		got := map[string]AgentView{}
		for _, a := range out {
			got[a.Name] = a
		}
		return got
	}
	behindLive := func(t *testing.T, got map[string]AgentView) {
		t.Helper()
		a := got["behind"]
		if a.Health != "alive" {
			t.Errorf("agent behind, heartbeating with its clock 2m behind: %s", a.Health)
		}
		if age := time.Since(a.LastHeartbeat); age >= time.Minute || time.Duration(a.LastHeartbeatAgeMS)*time.Millisecond >= time.Minute {
			t.Errorf("agent behind, heartbeating with its clock 2m behind: last heartbeat %s (%s ago), last_heartbeat_age_ms %d",
				a.LastHeartbeat.Format(time.RFC3339Nano), age.Round(time.Second), a.LastHeartbeatAgeMS)
		}
	}
	if err := bus.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Run("serve reading heartbeats as they come", func(t *testing.T) {
		behindLive(t, list(t, bus))
	})
	t.Run("serve that has just opened the topics", func(t *testing.T) {
		fresh, err := fleet.OpenBus(ctx, cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		got := list(t, fresh)
		behindLive(t, got)
		if a := got["ahead"]; a.Health != "lost" {
			t.Errorf("agent ahead, its clock 1h ahead, silent since before serve started: %s", a.Health)
		}
	})
}

// producerTimeBus starts an embedded broker whose agents topic keeps its
// producers' timestamps (created CreateTime ahead of the bus: a heartbeat
// is dated by its agent's clock) and returns a bus on it, and its
// configuration.
func producerTimeBus(ctx context.Context, t *testing.T) (*fleet.Bus, kafkaio.Config) {
	t.Helper()
	br, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Close() })
	cfg := kafkaio.Config{Brokers: br.Addrs()}
	target := kafkatest.Target{Name: "embedded", Addrs: br.Addrs()}
	if _, err := kafkaio.EnsureTopic(ctx, target.Admin(t), fleet.AgentsTopic, 1, 1, map[string]string{"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}); err != nil {
		t.Fatal(err)
	}
	bus, err := fleet.OpenBus(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	return bus, cfg
}
