package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestUnsignedSpecDoesNotEndAJob: anyone who can write to the jobs topic
// can publish an unsigned spec reusing a running job's ID and naming an
// agent. The agent refuses it, and that refusal must not end the job: its
// final status is written only from the job's real spec.
func TestUnsignedSpecDoesNotEndAJob(t *testing.T) {
	f := newIDFleet(t)
	f.submit(t, "j-run", Selector{"role": "web"}, "web-1") // web-1 is not started: the job stays on
	if err := f.bus.PublishStatus(f.ctx, agentKey("j-run", "web-1"), Status{JobID: "j-run", Kind: KindRecord, Agent: "web-1", State: Running}); err != nil {
		t.Fatal(err)
	}
	a := f.agent(t, "web-2", Labels{"role": "web"})
	f.waitAlive(t, "web-2")
	forged, err := Seal("spec", Spec{JobID: "j-run", Kind: KindRecord, Job: "record", Agents: []string{"web-2"}, Selector: Selector{"role": "web"},
		ExpiresAt: time.Now().Add(time.Hour)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-run", forged)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "refusal of the unsigned spec", func() bool {
		_, ok := f.bus.Status(refusedKey("j-run", "web-2", rec.Offset))
		return ok
	})
	// The agent finishes a job (if it does) right after its refusal.
	time.Sleep(time.Second)
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if js, _ := f.bus.Status(jobKey("j-run")); js.State != Assigned {
		t.Fatalf("an unsigned spec ended job j-run: %s %q\nagent log:\n%s", js.State, js.Reason, a.log.String())
	}
}

// TestJobPartsIgnoresRefusalsOfOtherCopies: a refusal counts as an agent's
// final word on a job only when it refused the job's own spec (the offset
// the submitter recorded), not a copy of it published later (refused as
// replayed) or a forged spec under its ID.
func TestJobPartsIgnoresRefusalsOfOtherCopies(t *testing.T) {
	f := newIDFleet(t)
	off := f.submit(t, "j-parts", Selector{"role": "web"}, "web-1")
	if err := f.bus.PublishStatus(f.ctx, refusedKey("j-parts", "web-1", off+7), Status{JobID: "j-parts", Agent: "web-1", State: Refused,
		Reason: "replayed", SpecOffset: off + 7}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	spec := Spec{JobID: "j-parts", Kind: KindRecord, Agents: []string{"web-1"}}
	if p := jobParts(f.bus, spec); len(p) != 1 || p[0].State != Pending {
		t.Fatalf("parts: %+v, want web-1 PENDING (the refusal is of another copy)", p)
	}
	if err := f.bus.PublishStatus(f.ctx, refusedKey("j-parts", "web-1", off), Status{JobID: "j-parts", Agent: "web-1", State: Refused,
		Reason: "kind record not allowed", SpecOffset: off}); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if p := jobParts(f.bus, spec); len(p) != 1 || p[0].State != Refused || p[0].SpecOffset != off {
		t.Fatalf("parts: %+v, want web-1 REFUSED (its refusal of the job's spec)", p)
	}
}

// TestMalformedJobRecords: what anyone can write to the jobs topic — a
// value that is no envelope, an unknown type, a spec payload that does not
// decode, a signed spec under another job's key — is counted and logged,
// never run, and the agent goes on taking jobs.
func TestMalformedJobRecords(t *testing.T) {
	f := newIDFleet(t)
	a := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	raw := func(key string, value []byte) {
		t.Helper()
		if err := f.bus.cl.ProduceSync(f.ctx, &kgo.Record{Topic: JobsTopic, Key: []byte(key), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	raw("spec/x", []byte("not json"))
	raw("spec/x", []byte(`{"type":"exec","payload":"eyJ4IjoxfQ=="}`))
	raw("spec/x", []byte(`{"type":"spec","payload":"WzEsMiwz"}`)) // [1,2,3]
	raw("spec/x", []byte(`{"type":"spec","payload":"e30="}`))     // {}: no job ID
	now := time.Now().UTC()
	moved, err := Seal("spec", Spec{JobID: "j-moved", Kind: KindRecord, Job: "record", Scenario: assignScenario, SHA256: ScenarioHash(assignScenario),
		Selector: Selector{"role": "web"}, Agents: []string{"web-1"}, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(moved)
	raw("spec/j-other", b)
	// A good job after them is still taken (its run fails: "run by the test").
	f.submit(t, "j-good", Selector{"role": "web"}, "web-1")
	waitFor(t, 15*time.Second, "the good job taken", func() bool {
		s, ok := f.bus.Status(agentKey("j-good", "web-1"))
		return ok && s.State.Final()
	})
	if n := a.Malformed(); n != 5 {
		t.Fatalf("malformed records counted: %d, want 5\n%s", n, a.log.String())
	}
	if !strings.Contains(a.log.String(), "malformed record on the jobs topic ignored") {
		t.Fatalf("not logged:\n%s", a.log.String())
	}
	if got := f.bus.StatusPrefix(jobKey("j-moved")); len(got) > 0 {
		t.Fatalf("a spec under another job's key was acted on: %+v", got)
	}
}

// TestForgedSpecsDoNotStallAgent: unsigned specs reusing the ID of a job
// left PENDING (its submitter died before ASSIGNED) are refused at once:
// the agent does not wait for an ASSIGNED that never comes for each of
// them, and takes the next good job without delay.
func TestForgedSpecsDoNotStallAgent(t *testing.T) {
	f := newIDFleet(t)
	if err := f.bus.PublishStatus(f.ctx, jobKey("j-stuck"), Status{JobID: "j-stuck", Kind: KindRecord, State: Pending, Agents: []string{"web-1"}}); err != nil {
		t.Fatal(err)
	}
	a := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	start := time.Now()
	for range 3 {
		forged, err := Seal("spec", Spec{JobID: "j-stuck", Kind: KindRecord, Job: "record", Agents: []string{"web-1"}, Selector: Selector{"role": "web"},
			ExpiresAt: time.Now().Add(time.Hour)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-stuck", forged); err != nil {
			t.Fatal(err)
		}
	}
	f.submit(t, "j-next", Selector{"role": "web"}, "web-1")
	waitFor(t, 30*time.Second, "the next job taken", func() bool {
		s, ok := f.bus.Status(agentKey("j-next", "web-1"))
		return ok && s.State.Final()
	})
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("the next job was taken after %s: forged specs stalled the agent\n%s", d.Round(time.Millisecond), a.log.String())
	}
}

// TestForgedSpecBeforeJob: an unsigned spec published ahead of a job under
// the job's (predictable: jobs submit --id) ID, or under an ID that nests
// it ("<id>/x"), is refused; that refusal does not make the agent refuse
// the real job later as "already taken".
func TestForgedSpecBeforeJob(t *testing.T) {
	f := newIDFleet(t)
	a := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	for _, id := range []string{"nightly-1", "nightly-1/agent/x"} {
		forged, err := Seal("spec", Spec{JobID: id, Kind: KindRecord, Job: "record", Agents: []string{"web-1"}, Selector: Selector{"role": "web"},
			ExpiresAt: time.Now().Add(time.Hour)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+id, forged); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "the forged spec refused", func() bool {
		return len(f.bus.StatusPrefix(jobKey("nightly-1")+"/refused/web-1/")) > 0
	})
	f.submit(t, "nightly-1", Selector{"role": "web"}, "web-1")
	var s Status
	waitFor(t, 15*time.Second, "the real job taken", func() bool {
		var ok bool
		s, ok = f.bus.Status(agentKey("nightly-1", "web-1"))
		return ok && s.State.Final()
	})
	if !strings.Contains(s.Reason, "run by the test") {
		t.Fatalf("the real job: %s %q\n%s", s.State, s.Reason, a.log.String())
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	for k, r := range f.bus.StatusPrefix(jobKey("nightly-1") + "/") {
		if strings.Contains(r.Reason, "replayed") {
			t.Fatalf("%s: %s", k, r.Reason)
		}
	}
}

// TestShowRefusedSpecsOfUnsubmittedJob: jobs show of an ID that no
// submitter wrote a job for, under which agents refused spec records (an
// unsigned one, one of a key they do not trust), prints those refusals and
// their reasons, rather than "no job": published by hand or by a broken
// tool, the refusals are the only answer whoever published them gets. An
// ID with nothing stays "no job".
func TestShowRefusedSpecsOfUnsubmittedJob(t *testing.T) {
	f := newIDFleet(t)
	f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	_, other, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for id, key := range map[string]ed25519.PrivateKey{"hand-1": nil, "hand-2": other} {
		env, err := Seal("spec", Spec{JobID: id, Kind: KindRecord, Job: "record", Agents: []string{"web-1"}, Selector: Selector{"role": "web"},
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}, key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+id, env); err != nil {
			t.Fatal(err)
		}
	}
	for id, want := range map[string]string{"hand-1": "unsigned spec", "hand-2": "signed by a key this agent does not trust"} {
		waitFor(t, 15*time.Second, "the spec refused", func() bool {
			return len(f.bus.StatusPrefix(jobKey(id)+"/refused/web-1/")) > 0
		})
		var out strings.Builder
		err := (&Client{bus: f.bus, Out: &out}).Show(id)
		if err == nil || !strings.Contains(out.String(), "no job "+id+" was submitted") ||
			!regexp.MustCompile(`refused/web-1/\d+  web-1  `+want).MatchString(out.String()) {
			t.Errorf("jobs show %s: %v\n%s", id, err, out.String())
		}
	}
	var out strings.Builder
	if err := (&Client{bus: f.bus, Out: &out}).Show("hand-3"); err == nil || out.Len() > 0 || !strings.Contains(err.Error(), `no job "hand-3"`) {
		t.Errorf("jobs show of an unknown ID: %v\n%s", err, out.String())
	}
}
