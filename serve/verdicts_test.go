package serve

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
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

func sealSpec(t testing.TB, sp fleet.Spec, k ed25519.PrivateKey) jobSpec {
	t.Helper()
	env, err := fleet.Seal("spec", sp, k)
	if err != nil {
		t.Fatal(err)
	}
	var dec fleet.Spec
	if err := jsonUnmarshal(env.Payload, &dec); err != nil {
		t.Fatal(err)
	}
	return jobSpec{spec: dec, env: env}
}

// TestVerdictsKept: a spec is verified once, however often it is shown;
// another envelope for the same job (a payload changed after signing, a
// signature moved), another job ID or another set of trusted keys is
// verified afresh, and a refusal stays a refusal once a valid spec of the
// job was kept.
func TestVerdictsKept(t *testing.T) {
	own, cli := newKey(t), newKey(t)
	s := &Server{cfg: Config{Key: own, Trust: []ed25519.PublicKey{cli.Public().(ed25519.PublicKey)}}}
	now := time.Now().UTC()
	spec := fleet.Spec{JobID: "j1", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	good := sealSpec(t, spec, own)
	check := func(name, id string, r jobSpec, ok bool, why string, checks int64) {
		t.Helper()
		got := s.verifiedSpec(id, r)
		if got.verified != ok || !strings.Contains(got.why, why) || ok && got.why != "" {
			t.Errorf("%s: verified %v %q, want %v %q", name, got.verified, got.why, ok, why)
		}
		if ok && (got.Submitter != spec.Submitter || got.signer != fleet.Fingerprint(r.env.Key)) {
			t.Errorf("%s: submitter %q signer %q", name, got.Submitter, got.signer)
		}
		if n := s.verdicts.checks.Load(); n != checks {
			t.Errorf("%s: %d signatures checked, want %d", name, n, checks)
		}
	}
	check("first", "j1", good, true, "", 1)
	for i := range 5 {
		check(fmt.Sprintf("again %d", i), "j1", good, true, "", 1)
	}

	// The same signature over a changed payload (what a copy republished
	// at the same offset after compaction, or under the same key, could
	// carry): verified afresh, refused, and still refused when asked again.
	tampered := good
	tampered.env.Payload = []byte(strings.Replace(string(good.env.Payload), "alice", "mallory", 1))
	if err := jsonUnmarshal(tampered.env.Payload, &tampered.spec); err != nil {
		t.Fatal(err)
	}
	check("tampered", "j1", tampered, false, "bad signature", 2)
	check("tampered again", "j1", tampered, false, "bad signature", 2)
	check("the valid one again", "j1", good, true, "", 2)
	if v := s.verifiedSpec("j1", tampered); v.verified || v.Submitter != "token:mallory (replayctl serve)" {
		t.Errorf("the tampered spec shows %+v", v)
	}

	// Another signature with the same key and payload; no signature; the
	// valid envelope under another job ID.
	resigned := good
	resigned.env.Signature = append([]byte(nil), good.env.Signature...)
	resigned.env.Signature[0] ^= 1
	check("signature changed", "j1", resigned, false, "bad signature", 3)
	unsigned := good
	unsigned.env.Signature = nil
	check("unsigned", "j1", unsigned, false, "unsigned spec", 4)
	check("another job", "j2", good, false, `signed for job "j1", published as job "j2"`, 5)
	check("another job again", "j2", good, false, `signed for job "j1", published as job "j2"`, 5)

	// The --trust keys change (a serve with other keys): the kept verdict
	// is not used.
	byCli := sealSpec(t, spec, cli)
	check("by a --trust key", "j1", byCli, true, "", 6)
	s.cfg.Trust = nil
	check("that key no longer trusted", "j1", byCli, false, "signed by a key this serve does not trust", 7)
	check("that key no longer trusted, again", "j1", byCli, false, "signed by a key this serve does not trust", 7)
	check("serve's own key still", "j1", good, true, "", 8) // the set of keys is part of the verdict's name
}

// TestVerdictsBounded: a flood of forged specs keeps at most the bound,
// the least recently used evicted first; an evicted verdict is verified
// again, and says the same.
func TestVerdictsBounded(t *testing.T) {
	own, rogue := newKey(t), newKey(t)
	s := &Server{cfg: Config{Key: own}}
	s.verdicts.max = 8
	now := time.Now().UTC()
	good := sealSpec(t, fleet.Spec{JobID: "real", Kind: fleet.KindReplay, IssuedAt: now}, own)
	if !s.verifiedSpec("real", good).verified {
		t.Fatal("the real spec does not verify")
	}
	for i := range 100 {
		id := fmt.Sprintf("forged-%d", i)
		k := rogue
		if i%2 == 0 {
			k = nil
		}
		if s.verifiedSpec(id, sealSpec(t, fleet.Spec{JobID: id, Kind: fleet.KindReplay, IssuedAt: now}, k)).verified {
			t.Fatalf("%s verified", id)
		}
		if n := s.verdicts.len(); n > 8 {
			t.Fatalf("%d verdicts kept after %d specs, want at most 8", n, i+2)
		}
	}
	if n, ev := s.verdicts.len(), s.verdicts.evicted.Load(); n != 8 || ev != 101-8 {
		t.Errorf("%d kept, %d evicted; want 8 and %d", n, ev, 101-8)
	}
	if !s.verifiedSpec("real", good).verified || s.verdicts.checks.Load() != 102 {
		t.Errorf("the real spec, evicted, is verified again: %d checks, want 102", s.verdicts.checks.Load())
	}

	// Least recently used: a verdict asked for stays while others come.
	s2 := &Server{cfg: Config{Key: own}}
	s2.verdicts.max = 3
	specs := make([]jobSpec, 5)
	for i := range specs {
		specs[i] = sealSpec(t, fleet.Spec{JobID: fmt.Sprint(i), IssuedAt: now}, own)
	}
	for _, i := range []int{0, 1, 2, 0, 3, 4, 0} { // 1 and 2 go; 0 stays
		s2.verifiedSpec(fmt.Sprint(i), specs[i])
	}
	if got := s2.verdicts.checks.Load(); got != 5 {
		t.Errorf("%d checks, want 5 (0 kept while used)", got)
	}
	s2.verifiedSpec("1", specs[1])
	if got := s2.verdicts.checks.Load(); got != 6 {
		t.Errorf("%d checks, want 6 (1 evicted)", got)
	}
}

// BenchmarkVerifiedSpec: showing a spec, its signature checked each time
// (what serve did before verdicts were kept) and with its verdict kept.
func BenchmarkVerifiedSpec(b *testing.B) {
	own := newKey(b)
	now := time.Now().UTC()
	scenario := strings.Repeat("# a scenario of a few KiB\n", 160)
	r := sealSpec(b, fleet.Spec{JobID: "j1", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Scenario: scenario,
		SHA256: fleet.ScenarioHash(scenario), Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}, own)
	s := &Server{cfg: Config{Key: own}}
	b.Run("checked", func(b *testing.B) {
		trusted := s.trusted()
		for b.Loop() {
			if !checkSpec("j1", r.env, trusted).verified {
				b.Fatal("not verified")
			}
		}
	})
	b.Run("kept", func(b *testing.B) {
		for b.Loop() {
			if !s.verifiedSpec("j1", r).verified {
				b.Fatal("not verified")
			}
		}
	})
}

// BenchmarkListJobs: GET /v1/jobs?limit=500 over 500 jobs on an embedded
// broker, every spec's signature checked on each request (the verdicts
// dropped before each, as serve did before it kept them) and with the
// verdicts kept.
func BenchmarkListJobs(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	br, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = br.Close() }()
	bus, err := fleet.OpenBus(ctx, kafkaio.Config{Brokers: br.Addrs()}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer bus.Close()
	own := newKey(b)
	now := time.Now().UTC()
	scenario := strings.Repeat("# a scenario of a few KiB\n", 160)
	const jobs = 500
	for i := range jobs {
		id := fmt.Sprintf("bench-%03d", i)
		sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Scenario: scenario, SHA256: fleet.ScenarioHash(scenario),
			Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, sealSpec(b, sp, own).env); err != nil {
			b.Fatal(err)
		}
		if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: fleet.Pending, At: now}); err != nil {
			b.Fatal(err)
		}
	}
	s := &Server{cfg: Config{Key: own}, bus: bus}
	list := func(b *testing.B) {
		w := httptest.NewRecorder()
		s.listJobs(w, httptest.NewRequest("GET", "/v1/jobs?limit=500", nil), Token{})
		if w.Code != 200 || !strings.Contains(w.Body.String(), `"id": "bench-000"`) {
			b.Fatalf("GET /v1/jobs: %d %.200s", w.Code, w.Body.String())
		}
	}
	b.Run("checked", func(b *testing.B) {
		for b.Loop() {
			s.verdicts.mu.Lock()
			s.verdicts.order, s.verdicts.byKey = nil, nil
			s.verdicts.mu.Unlock()
			list(b)
		}
	})
	b.Run("kept", func(b *testing.B) {
		list(b)
		for b.Loop() {
			list(b)
		}
	})
}
