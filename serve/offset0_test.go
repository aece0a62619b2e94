package serve

import (
	"context"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
)

// TestSpecAtOffsetZero: the first job on a cluster has its spec at
// jobs-topic offset 0, which its status names once past PENDING; a later
// unsigned copy under the same key does not take its place (its
// submitter, verified mark and rerun stay the real spec's).
func TestSpecAtOffsetZero(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, bus, key := keyedServer(t, ctx)
	now := time.Now().UTC()
	spec := fleet.Spec{JobID: "first", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Submitter: "token:alice (replayctl serve)",
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	env, err := fleet.Seal("spec", spec, key)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := bus.Publish(ctx, fleet.JobsTopic, "spec/first", env)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Offset != 0 {
		t.Fatalf("the spec is at offset %d, want 0", rec.Offset)
	}
	if err := bus.PublishStatus(ctx, "job/first", fleet.Status{JobID: "first", Kind: fleet.KindReplay, State: fleet.Assigned, SpecOffset: rec.Offset, At: now}); err != nil {
		t.Fatal(err)
	}
	copySpec := spec
	copySpec.Submitter = "mallory"
	copySpec.IssuedAt = now.Add(24 * time.Hour)
	forged, err := fleet.Seal("spec", copySpec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/first", forged); err != nil {
		t.Fatal(err)
	}
	if err := bus.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	r, ok := s.specOf("first")
	if !ok {
		t.Fatal("no spec")
	}
	shown := s.verifiedSpec(r)
	v := s.view("first", fleet.Status{JobID: "first", Kind: fleet.KindReplay, State: fleet.Assigned}, shown, false)
	if !v.Verified || v.Submitter != spec.Submitter || !v.Rerunnable || !v.IssuedAt.Equal(now) {
		t.Errorf("job view: verified %v submitter %q rerunnable %v issued %v (%s)", v.Verified, v.Submitter, v.Rerunnable, v.IssuedAt, v.Unverified)
	}
	if idx := s.specIndex("")["first"]; idx.spec.Submitter != spec.Submitter {
		t.Errorf("specIndex picks the spec claiming %q", idx.spec.Submitter)
	}
	if _, err := s.ownSpec("first"); err != nil {
		t.Errorf("ownSpec: %v", err)
	}
}
