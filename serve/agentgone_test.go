package serve

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
)

// TestJobMarksAgentGone: GET /v1/jobs/{id} marks a part not final whose
// agent is gone as jobs show does (fleet.AgentGone): agent_gone "lost"
// with agent_last_seen its last heartbeat, for an agent silent a minute;
// "stopped" for one whose last heartbeat said it stopped; nothing for a
// part whose agent heartbeats, nor for a final part of a lost agent.
// History (GET /v1/jobs) says it of the job.
func TestJobMarksAgentGone(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// An agents topic that keeps its producers' timestamps: the
	// heartbeat of a minute ago is dated so.
	pub, cfg := producerTimeBus(ctx, t)
	lastBeat := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	beat := func(name string, at time.Time, stopped bool) {
		v, err := json.Marshal(fleet.Heartbeat{Name: name, Allow: []string{fleet.KindReplay}, At: at.UTC(), Stopped: stopped})
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Plain().ProduceSync(ctx, &kgo.Record{Topic: fleet.AgentsTopic, Key: []byte(name), Value: v, Timestamp: at}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	beat("load-lost", lastBeat, false)
	beat("load-stopped", time.Now(), true)
	now := time.Now().UTC()
	shard := func(i int) *int { return &i }
	for key, st := range map[string]fleet.Status{
		"job/j1":         {JobID: "j1", Kind: fleet.KindReplay, State: fleet.Assigned, At: now},
		"job/j1/shard/0": {JobID: "j1", Kind: fleet.KindReplay, Agent: "load-lost", Shard: shard(0), State: fleet.Running, At: now},
		"job/j1/shard/1": {JobID: "j1", Kind: fleet.KindReplay, Agent: "load-stopped", Shard: shard(1), State: fleet.Running, At: now},
		"job/j1/shard/2": {JobID: "j1", Kind: fleet.KindReplay, Agent: "load-live", Shard: shard(2), State: fleet.Running, At: now},
		"job/j1/shard/3": {JobID: "j1", Kind: fleet.KindReplay, Agent: "load-lost", Shard: shard(3), State: fleet.Succeeded, At: now},
		"job/j2":         {JobID: "j2", Kind: fleet.KindReplay, State: fleet.Assigned, At: now},
		"job/j2/shard/0": {JobID: "j2", Kind: fleet.KindReplay, Agent: "load-stopped", Shard: shard(0), State: fleet.Running, At: now},
	} {
		if err := pub.PublishStatus(ctx, key, st); err != nil {
			t.Fatal(err)
		}
	}
	// serve opens its bus after: it reads the lost agent's heartbeat as
	// from a minute ago (its timestamp, before the bus opened).
	bus, err := fleet.OpenBus(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	beat("load-live", time.Now(), false)
	if err := bus.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	s := &Server{bus: bus}

	get := func(path string, out any) {
		t.Helper()
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		if path == "/v1/jobs" {
			s.listJobs(rec, r, Token{})
		} else {
			r.SetPathValue("id", "j1")
			s.getJob(rec, r, Token{})
		}
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatal(err)
		}
	}
	var job struct {
		AgentGone      string           `json:"agent_gone"`
		PartsAgentGone int              `json:"parts_agent_gone"`
		Parts          []map[string]any `json:"parts"`
	}
	get("/v1/jobs/j1", &job)
	got := map[string]map[string]any{}
	for _, p := range job.Parts {
		got[p["part"].(string)] = p
	}
	for part, want := range map[string]string{"shard/0": "lost", "shard/1": "stopped", "shard/2": "", "shard/3": ""} {
		p := got[part]
		gone, _ := p["agent_gone"].(string)
		if gone != want {
			t.Errorf("%s (agent %s, %s): agent_gone %q, want %q", part, p["agent"], p["state"], gone, want)
		}
		_, seen := p["agent_last_seen"]
		_, grace := p["agent_grace_s"]
		if want == "" && (seen || grace) {
			t.Errorf("%s: agent_last_seen or agent_grace_s without agent_gone: %v", part, p)
		}
		if want != "" && (!seen || p["agent_grace_s"] != 45.0) {
			t.Errorf("%s: agent_last_seen %v, agent_grace_s %v (want 45)", part, p["agent_last_seen"], p["agent_grace_s"])
		}
	}
	if seen, _ := time.Parse(time.RFC3339Nano, got["shard/0"]["agent_last_seen"].(string)); !seen.Equal(lastBeat) {
		t.Errorf("shard/0: agent_last_seen %v, want its agent's last heartbeat %v", seen, lastBeat)
	}
	if ms, _ := got["shard/0"]["agent_silent_ms"].(float64); ms < 60000 || ms > 120000 {
		t.Errorf("shard/0: agent_silent_ms %v, want a minute or so", got["shard/0"]["agent_silent_ms"])
	}
	if job.AgentGone != "lost" || job.PartsAgentGone != 2 {
		t.Errorf("job: agent_gone %q parts_agent_gone %d, want lost 2", job.AgentGone, job.PartsAgentGone)
	}

	var list []JobView
	get("/v1/jobs", &list)
	byID := map[string]JobView{}
	for _, j := range list {
		byID[j.ID] = j
	}
	if j := byID["j1"]; j.AgentGone != "lost" || j.PartsAgentGone != 2 {
		t.Errorf("History's j1: agent_gone %q parts_agent_gone %d, want lost 2", j.AgentGone, j.PartsAgentGone)
	}
	if j := byID["j2"]; j.AgentGone != "stopped" || j.PartsAgentGone != 1 {
		t.Errorf("History's j2: agent_gone %q parts_agent_gone %d, want stopped 1", j.AgentGone, j.PartsAgentGone)
	}
}
