package serve_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
)

// TestVerdictsKeptAcrossRequests: through a serve on loopback, the specs
// GET /v1/jobs, GET /v1/jobs/{id} and GET /v1/windows show are verified
// once (replayctl_serve_spec_verifications_total), however many requests
// show them; a tampered copy of a verified spec, published after its
// verdict was kept, is verified afresh and refused, and stays refused; the
// valid spec published again is read and verified once more (another
// record), and no other record is read again.
// Against an in-process embedded broker; with REPLAYCTL_TEST_KAFKA set,
// against the real Kafka as well.
func TestVerdictsKeptAcrossRequests(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) { verdictsSuite(t, target) })
	}
}

func verdictsSuite(t *testing.T, target kafkatest.Target) {
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kind, sfx := "verdicts-"+l.suffix, "-"+l.suffix
	_, rogue, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	// A window and the record job that saved it (serve ties them only
	// when the job's spec verifies).
	win, rec := "win"+sfx, "rec"+sfx
	cat, err := catalog.Open(ctx, target.Client(t), kadm.NewClient(target.Client(t)), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(ctx, catalog.Window{Name: win, Topic: "none" + sfx, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}, RecordingID: "recording" + sfx}, false); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cat.Remove(context.Background(), win) })

	now := time.Now().UTC()
	spec := func(id string) fleet.Spec {
		return fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Selector: fleet.Selector{"role": "nobody"},
			Submitter: "token:alice" + sfx + " (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	}
	recSpec := spec(rec)
	recSpec.Kind, recSpec.Job, recSpec.Replay = fleet.KindRecord, "record", nil
	recSpec.Recording = &fleet.RecordingPlan{ID: "recording" + sfx, Window: win, Topic: "none" + sfx}
	jobs := []struct {
		id  string
		env fleet.Envelope
		why string // "": verified
	}{
		{"real-1" + sfx, seal(t, spec("real-1"+sfx), l.key), ""},
		{"real-2" + sfx, seal(t, spec("real-2"+sfx), l.key), ""},
		{"real-3" + sfx, seal(t, spec("real-3"+sfx), l.key), ""},
		{rec, seal(t, recSpec, l.key), ""},
		{"forged" + sfx, seal(t, spec("forged"+sfx), nil), "unsigned spec"},
		{"rogue" + sfx, seal(t, spec("rogue"+sfx), rogue), "signed by a key this serve does not trust"},
	}
	for _, j := range jobs {
		l.publish(t, j.id, kind, j.env)
	}
	checks := func() float64 { return l.metric(t, "replayctl_serve_spec_verifications_total") }
	hits := func() float64 { return l.metric(t, "replayctl_serve_spec_verdict_hits_total") }

	// One round of what the UI asks: History, each job's page, the
	// window's page and (on a broker of this test alone) the Recordings.
	round := func(tampered string) {
		t.Helper()
		var list []serve.JobView
		if code := call(t, "GET", l.base+"/v1/jobs?kind="+kind, l.read, nil, &list); code != 200 || len(list) != len(jobs) {
			t.Fatalf("GET /v1/jobs?kind=%s: %d, %d jobs, want %d", kind, code, len(list), len(jobs))
		}
		byID := map[string]serve.JobView{}
		for _, v := range list {
			byID[v.ID] = v
		}
		for _, j := range jobs {
			var one serve.JobView
			if code := call(t, "GET", l.base+"/v1/jobs/"+j.id, l.read, nil, &one); code != 200 {
				t.Fatalf("GET /v1/jobs/%s: %d", j.id, code)
			}
			for where, v := range map[string]serve.JobView{"History": byID[j.id], "its page": one} {
				why := j.why
				if j.id == tampered {
					why = "bad signature"
				}
				switch {
				case why == "" && (!v.Verified || v.Submitter != "token:alice"+sfx+" (replayctl serve)" || v.ClaimedSubmitter != ""):
					t.Errorf("%s in %s: verified %v (%s), submitter %q", j.id, where, v.Verified, v.Unverified, v.Submitter)
				case why != "" && (v.Verified || v.Submitter != "" || !strings.Contains(v.Unverified, why)):
					t.Errorf("%s in %s: verified %v %q, submitter %q; want refused with %q", j.id, where, v.Verified, v.Unverified, v.Submitter, why)
				}
			}
		}
		var w serve.WindowView
		if code := call(t, "GET", l.base+"/v1/windows/"+win, l.read, nil, &w); code != 200 || w.RecordedBy != rec {
			t.Errorf("GET /v1/windows/%s: %d, recorded by %q, want %s", win, code, w.RecordedBy, rec)
		}
		if target.Name == "embedded" {
			var ws []serve.WindowView
			if code := call(t, "GET", l.base+"/v1/windows", l.read, nil, &ws); code != 200 || len(ws) != 1 || ws[0].RecordedBy != rec {
				t.Errorf("GET /v1/windows: %d %+v", code, ws)
			}
		}
	}

	c0, h0 := checks(), hits()
	round("")
	if got := checks() - c0; got != float64(len(jobs)) {
		t.Errorf("the first round checked %v signatures, want %d (one a spec)", got, len(jobs))
	}
	c1, h1 := checks(), hits()
	for range 4 {
		round("")
	}
	if got := checks() - c1; got != 0 {
		t.Errorf("4 more rounds checked %v signatures, want 0 (every verdict kept)", got)
	}
	// A round shows each spec twice (History, its page) and the record
	// job's once more (the window).
	if want := 4 * (2*len(jobs) + 1); hits()-h1 < float64(want) {
		t.Errorf("4 more rounds found %v verdicts kept, want %d or more", hits()-h1, want)
	}
	t.Logf("%s: %v checks in the first round, %v verdicts found in it and %v in the 4 rounds after", target.Name, c1-c0, h1-h0, hits()-h1)

	// A copy of real-1's spec, its submitter changed after signing, under
	// real-1's key: the job shows it (still PENDING), refused.
	real1 := jobs[0]
	forged := real1.env
	forged.Payload = []byte(strings.Replace(string(real1.env.Payload), "token:alice", "token:mallory", 1))
	l.publish(t, real1.id, kind, forged)
	c2 := checks()
	round(real1.id)
	var v serve.JobView
	call(t, "GET", l.base+"/v1/jobs/"+real1.id, l.read, nil, &v)
	if v.Verified || v.ClaimedSubmitter != "token:mallory"+sfx+" (replayctl serve)" || v.Submitter != "" {
		t.Errorf("the tampered spec: verified %v, submitter %q, claimed %q", v.Verified, v.Submitter, v.ClaimedSubmitter)
	}
	if got := checks() - c2; got != 1 {
		t.Errorf("the tampered copy: %v signatures checked, want 1 (it alone is new)", got)
	}
	c3 := checks()
	round(real1.id)
	round(real1.id)
	if got := checks() - c3; got != 0 {
		t.Errorf("the tampered copy shown again: %v signatures checked, want 0 (its refusal is kept)", got)
	}

	// The valid envelope published again, at a later offset: another
	// record, read and checked once, then kept.
	l.publish(t, real1.id, kind, real1.env)
	r0 := l.metric(t, "replayctl_serve_spec_reads_total")
	round("")
	round("")
	if got := checks() - c3; got != 1 {
		t.Errorf("the valid spec republished: %v signatures checked, want 1", got)
	}
	// (On a shared Kafka, other runs' specs come too.)
	if got := l.metric(t, "replayctl_serve_spec_reads_total") - r0; got != 1 && target.Name == "embedded" {
		t.Errorf("the valid spec republished: %v records read in two rounds, want 1 (every other record's view kept)", got)
	}
}
