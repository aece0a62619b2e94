package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
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
