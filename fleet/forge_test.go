package fleet

import (
	"testing"
	"time"
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
