package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// TestSettleStaleCost: settleStale looks every settleGrace/4 at every job
// in the status topic. A pass over 20 000 ended jobs, 100 running ones and
// 50 left PENDING (a submitter that died before its spec was published)
// allocates little: it copied every status of every job (StatusPrefix
// "job/"), and, for each job not ended, the jobs topic from its spec's
// offset on (Jobs), from offset 0 for each PENDING one, and verified its
// spec again at each pass: hundreds of MB every 11 s with the bus's lock
// held through the copies.
func TestSettleStaleCost(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const ended, running, pending = 20000, 100, 50
	b := &Bus{status: make(map[string]Status, 2*ended+2*running+pending)}
	shard := 0
	var off int64
	for i := range ended + running {
		id := fmt.Sprintf("j-%05d", i)
		spec := replaySpec(id, "load-1", "version: 1\n")
		env := Envelope{Type: "spec", Payload: []byte(`{"type":"spec"}`)}
		if i >= ended {
			if env, err = Seal("spec", spec, priv); err != nil {
				t.Fatal(err)
			}
		}
		b.jobs = append(b.jobs, JobRecord{Offset: off, Key: "spec/" + id, Envelope: env})
		js := Status{JobID: id, Kind: KindReplay, State: Succeeded, Agents: spec.Agents, SpecOffset: off}
		ps := Status{JobID: id, Kind: KindReplay, Agent: "load-1", Shard: &shard, State: Succeeded, SpecOffset: off, At: time.Now()}
		if i >= ended {
			js.State, ps.State = Assigned, Running
		}
		b.status[jobKey(id)], b.status[shardKey(id, 0)] = js, ps
		off++
	}
	for i := range pending {
		id := fmt.Sprintf("p-%05d", i)
		b.status[jobKey(id)] = Status{JobID: id, Kind: KindReplay, State: Pending, Agents: []string{"load-1"}}
	}
	a := &Agent{bus: b, cfg: AgentConfig{Name: "load-2", Trust: []ed25519.PublicKey{pub}}, log: slog.New(slog.DiscardHandler)}
	now := time.Now()
	a.settleStale(now) // the first pass may read each running job's spec once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	a.settleStale(now.Add(settleGrace))
	d := time.Since(start)
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 4<<20 {
		t.Errorf("a settleStale pass over %d jobs (%d not ended) allocated %d MB", ended+running+pending, running+pending, n>>20)
	}
	if d > 2*time.Second {
		t.Errorf("a settleStale pass over %d jobs took %s", ended+running+pending, d)
	}
}

// TestPartsFinalAsJobParts: settleStale's lookup of a job's parts agrees
// with jobParts: a part with no status is final when its agent refused the
// job's spec (at the offset the job names), not a copy of it.
func TestPartsFinalAsJobParts(t *testing.T) {
	spec := replaySpec("j-r", "load-1", "version: 1\n")
	spec.Agents = []string{"load-1", "load-2"}
	zero, one := 0, 1
	for _, c := range []struct {
		name    string
		refused int64 // the offset load-2 refused, -1: none
		want    bool
	}{
		{"refused the spec", 7, true},
		{"refused a copy", 9, false},
		{"no answer", -1, false},
	} {
		b := &Bus{status: map[string]Status{
			jobKey("j-r"):      {JobID: "j-r", State: Assigned, Agents: spec.Agents, SpecOffset: 7},
			shardKey("j-r", 0): {JobID: "j-r", Agent: "load-1", Shard: &zero, State: Succeeded, SpecOffset: 7},
		}}
		if c.refused >= 0 {
			b.status[refusedKey("j-r", "load-2", c.refused)] = Status{JobID: "j-r", Agent: "load-2", State: Refused, SpecOffset: c.refused}
		}
		ended := true
		for _, p := range jobParts(b, spec) {
			ended = ended && p.State.Final()
		}
		if got := partsFinal(b, spec, 7); got != c.want || ended != c.want {
			t.Errorf("%s: partsFinal %v, jobParts all final %v; want %v", c.name, got, ended, c.want)
		}
		b.status[shardKey("j-r", 1)] = Status{JobID: "j-r", Agent: "spare", Shard: &one, State: Running, SpecOffset: 7}
		if partsFinal(b, spec, 7) {
			t.Errorf("%s: a shard re-run on a spare (RUNNING) reads final", c.name)
		}
	}
}
