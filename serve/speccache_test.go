package serve

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio"
)

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// embeddedBus is a fleet bus over an in-process embedded broker, both
// closed when the test ends.
func embeddedBus(tb testing.TB, ctx context.Context) *fleet.Bus {
	tb.Helper()
	br, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = br.Close() })
	bus, err := fleet.OpenBus(ctx, kafkaio.Config{Brokers: br.Addrs()}, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(bus.Close)
	return bus
}

// sealEnv signs sp with k (nil: unsigned) as a spec envelope.
func sealEnv(t testing.TB, sp fleet.Spec, k ed25519.PrivateKey) fleet.Envelope {
	t.Helper()
	env, err := fleet.Seal("spec", sp, k)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// specAt is sp signed by k as the record at offset of the jobs topic,
// under its job's key.
func specAt(t testing.TB, offset int64, sp fleet.Spec, k ed25519.PrivateKey) jobSpec {
	t.Helper()
	return jobSpec{rec: fleet.JobRecord{Offset: offset, Key: "spec/" + sp.JobID, Envelope: sealEnv(t, sp, k)}}
}

// TestSpecViewsKept: a spec record is decoded and its signature checked
// once, however often it is shown, and its view leaves the scenario text
// out (full reads it); a tampered copy and even the same envelope
// published again are other records, read and checked afresh; a copy
// under another job's key is refused; and the same offset holding other
// bytes (a jobs topic created again) is not taken for the record kept.
func TestSpecViewsKept(t *testing.T) {
	own, cli := newKey(t), newKey(t)
	s := &Server{cfg: Config{Key: own, Trust: []ed25519.PublicKey{cli.Public().(ed25519.PublicKey)}}}
	now := time.Now().UTC()
	spec := fleet.Spec{JobID: "j1", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Scenario: "version: 1\n", Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	good := specAt(t, 10, spec, own)
	check := func(name string, r jobSpec, ok bool, why string, reads, checks int64) {
		t.Helper()
		got := s.verifiedSpec(r)
		if got.verified != ok || !strings.Contains(got.why, why) || ok && got.why != "" {
			t.Errorf("%s: verified %v %q, want %v %q", name, got.verified, got.why, ok, why)
		}
		if ok && (got.Submitter != spec.Submitter || got.signer != fleet.Fingerprint(r.rec.Envelope.Key)) {
			t.Errorf("%s: submitter %q signer %q", name, got.Submitter, got.signer)
		}
		if got.Scenario != "" {
			t.Errorf("%s: the view kept holds the scenario text", name)
		}
		if n, c := s.specs.reads.Load(), s.specs.checks.Load(); n != reads || c != checks {
			t.Errorf("%s: %d records read, %d signatures checked; want %d and %d", name, n, c, reads, checks)
		}
	}
	check("first", good, true, "", 1, 1)
	for i := range 5 {
		check(fmt.Sprintf("again %d", i), good, true, "", 1, 1)
		if v := s.specs.read(good.rec); v.spec.Submitter != spec.Submitter || v.bad {
			t.Fatalf("read again: %+v", v)
		}
	}
	if full, err := good.full(); err != nil || full.Scenario != spec.Scenario {
		t.Errorf("the full spec: %v %+v", err, full)
	}

	// The same signature over a changed payload, at a later offset: read
	// and refused, and still refused when shown again.
	tampered := good
	tampered.rec.Offset = 11
	tampered.rec.Envelope.Payload = []byte(strings.Replace(string(good.rec.Envelope.Payload), "alice", "mallory", 1))
	check("tampered", tampered, false, "bad signature", 2, 2)
	check("tampered again", tampered, false, "bad signature", 2, 2)
	check("the valid one again", good, true, "", 2, 2)
	if v := s.verifiedSpec(tampered); v.verified || v.Submitter != "token:mallory (replayctl serve)" {
		t.Errorf("the tampered spec shows %+v", v)
	}

	// The valid envelope published again is another record; under another
	// job's key, it is refused.
	again := good
	again.rec.Offset = 12
	check("republished", again, true, "", 3, 3)
	elsewhere := good
	elsewhere.rec.Offset, elsewhere.rec.Key = 13, "spec/j2"
	check("another job", elsewhere, false, `signed for job "j1", published as job "j2"`, 4, 4)
	check("another job again", elsewhere, false, `signed for job "j1", published as job "j2"`, 4, 4)
	byCli := specAt(t, 14, spec, cli)
	check("by a --trust key", byCli, true, "", 5, 5)

	// Offset 10 holding an unsigned spec (the topic deleted and created
	// again): read and checked afresh, not shown as the one kept.
	recreated := specAt(t, 10, spec, nil)
	check("offset 10 again, other bytes", recreated, false, "unsigned spec", 6, 6)
	check("the first record again", good, true, "", 7, 7)

	// A record that is not a spec is read once, and not listed.
	junk := jobSpec{rec: fleet.JobRecord{Offset: 15, Key: "spec/j3", Envelope: fleet.Envelope{Type: "spec", Payload: []byte(`{"shards": "many"}`)}}}
	for range 3 {
		if v := s.specs.read(junk.rec); !v.bad {
			t.Errorf("a payload that is not a spec reads %+v", v)
		}
	}
	if n := s.specs.reads.Load(); n != 8 {
		t.Errorf("%d records read, want 8", n)
	}
}

// TestSpecViewsBounded: a flood of forged specs keeps at most the bound,
// the least recently used evicted first; an evicted record is read and
// checked again, and says the same.
func TestSpecViewsBounded(t *testing.T) {
	own, rogue := newKey(t), newKey(t)
	s := &Server{cfg: Config{Key: own}}
	s.specs.max = 8
	now := time.Now().UTC()
	good := specAt(t, 0, fleet.Spec{JobID: "real", Kind: fleet.KindReplay, IssuedAt: now}, own)
	if !s.verifiedSpec(good).verified {
		t.Fatal("the real spec does not verify")
	}
	for i := range 100 {
		id := fmt.Sprintf("forged-%d", i)
		k := rogue
		if i%2 == 0 {
			k = nil
		}
		if s.verifiedSpec(specAt(t, int64(i+1), fleet.Spec{JobID: id, Kind: fleet.KindReplay, IssuedAt: now}, k)).verified {
			t.Fatalf("%s verified", id)
		}
		if n := s.specs.len(); n > 8 {
			t.Fatalf("%d views kept after %d specs, want at most 8", n, i+2)
		}
	}
	if n, ev := s.specs.len(), s.specs.evicted.Load(); n != 8 || ev != 101-8 {
		t.Errorf("%d kept, %d evicted; want 8 and %d", n, ev, 101-8)
	}
	if !s.verifiedSpec(good).verified || s.specs.checks.Load() != 102 || s.specs.reads.Load() != 102 {
		t.Errorf("the real spec, evicted, is read and checked again: %d reads, %d checks, want 102", s.specs.reads.Load(), s.specs.checks.Load())
	}

	// Least recently used: a view asked for stays while others come.
	s2 := &Server{cfg: Config{Key: own}}
	s2.specs.max = 3
	specs := make([]jobSpec, 5)
	for i := range specs {
		specs[i] = specAt(t, int64(i), fleet.Spec{JobID: fmt.Sprint(i), IssuedAt: now}, own)
	}
	for _, i := range []int{0, 1, 2, 0, 3, 4, 0} { // 1 and 2 go; 0 stays
		s2.verifiedSpec(specs[i])
	}
	if got := s2.specs.checks.Load(); got != 5 {
		t.Errorf("%d checks, want 5 (0 kept while used)", got)
	}
	s2.verifiedSpec(specs[1])
	if got := s2.specs.checks.Load(); got != 6 {
		t.Errorf("%d checks, want 6 (1 evicted)", got)
	}
}

// BenchmarkVerifiedSpec: showing a spec, its signature checked each time
// (what serve did before verdicts were kept) and with its view kept.
func BenchmarkVerifiedSpec(b *testing.B) {
	own := newKey(b)
	now := time.Now().UTC()
	scenario := strings.Repeat("# a scenario of a few KiB\n", 160)
	r := specAt(b, 0, fleet.Spec{JobID: "j1", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Scenario: scenario,
		SHA256: fleet.ScenarioHash(scenario), Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}, own)
	s := &Server{cfg: Config{Key: own}}
	b.Run("checked", func(b *testing.B) {
		trusted := s.trusted()
		for b.Loop() {
			if !checkSpec("j1", r.rec.Envelope, trusted).verified {
				b.Fatal("not verified")
			}
		}
	})
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			if !s.verifiedSpec(r).verified {
				b.Fatal("not verified")
			}
		}
	})
}

// BenchmarkListRequest: GET /v1/jobs as History asks it, over 1000 signed
// jobs of a few KiB each on an embedded broker, the serve warmed up by
// one request (what a serve that has answered before does on every
// request): the first page of 50, a page of 500, and a page of 50 filtered
// by scenario (every job's spec read to filter).
func BenchmarkListRequest(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bus := embeddedBus(b, ctx)
	own := newKey(b)
	now := time.Now().UTC()
	scenario := strings.Repeat("# a scenario of a few KiB\n", 160)
	const jobs = 1000
	for i := range jobs {
		id := fmt.Sprintf("bench-%04d", i)
		file := "replay.yaml"
		if i%10 == 0 {
			file = "other.yaml"
		}
		sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: file, Scenario: scenario, SHA256: fleet.ScenarioHash(scenario),
			Selector: fleet.Selector{"role": "load"}, Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, sealEnv(b, sp, own)); err != nil {
			b.Fatal(err)
		}
		if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Succeeded, At: now}); err != nil {
			b.Fatal(err)
		}
	}
	if err := bus.Sync(ctx); err != nil {
		b.Fatal(err)
	}
	s := &Server{cfg: Config{Key: own}, bus: bus}
	for _, c := range []struct{ name, query, first string }{
		{"page=50", "limit=50", "bench-0999"},
		{"page=500", "limit=500", "bench-0999"},
		{"scenario/page=50", "scenario=other.yaml&limit=50", "bench-0990"},
	} {
		b.Run(c.name, func(b *testing.B) {
			list := func() {
				w := httptest.NewRecorder()
				s.listJobs(w, httptest.NewRequest("GET", "/v1/jobs?"+c.query, nil), Token{})
				if w.Code != 200 || !strings.Contains(w.Body.String(), fmt.Sprintf(`"id": %q`, c.first)) {
					b.Fatalf("GET /v1/jobs?%s: %d %.200s", c.query, w.Code, w.Body.String())
				}
			}
			list()
			b.ReportAllocs()
			for b.Loop() {
				list()
			}
		})
	}
}

// keyedServer is a Server with a signing key of its own over an embedded
// broker's bus, and that bus and key.
func keyedServer(t *testing.T, ctx context.Context) (*Server, *fleet.Bus, ed25519.PrivateKey) {
	t.Helper()
	bus, key := embeddedBus(t, ctx), newKey(t)
	return &Server{cfg: Config{Key: key}, bus: bus}, bus, key
}
