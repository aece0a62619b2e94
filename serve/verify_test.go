package serve

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
)

// TestVerifiedSpec: a job's submitter is shown only when its spec's
// signature verifies against a key serve trusts (its own, --trust), as the
// spec of that very job; any other spec's submitter is only claimed.
func TestVerifiedSpec(t *testing.T) {
	key := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	own, cli, rogue := key(), key(), key()
	s := &Server{cfg: Config{Key: own, Trust: []ed25519.PublicKey{cli.Public().(ed25519.PublicKey)}}}
	now := time.Now().UTC()
	spec := fleet.Spec{JobID: "j1", Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	seal := func(typ string, v any, k ed25519.PrivateKey) fleet.Envelope {
		env, err := fleet.Seal(typ, v, k)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	other := spec
	other.JobID = "j2"
	tampered := seal("spec", spec, own)
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), "alice", "mallory", 1))
	asCancel := seal("cancel", fleet.Cancel{JobID: "j1", Submitter: "token:alice (replayctl serve)"}, own)
	asCancel.Type = "spec"
	for i, c := range []struct {
		name string
		env  fleet.Envelope
		ok   bool
		why  string
	}{
		{"signed by serve's key", seal("spec", spec, own), true, ""},
		{"signed by a --trust key", seal("spec", spec, cli), true, ""},
		{"unsigned", seal("spec", spec, nil), false, "unsigned spec"},
		{"signed by another key", seal("spec", spec, rogue), false, "signed by a key this serve does not trust (key " + fleet.Fingerprint(rogue.Public().(ed25519.PublicKey)) + ")"},
		{"payload changed after signing", tampered, false, "bad signature"},
		{"another job's signed spec", seal("spec", other, own), false, `signed for job "j2", published as job "j1"`},
		{"a cancel published as a spec", asCancel, false, "signed as another type"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sp fleet.Spec
			if err := jsonUnmarshal(c.env.Payload, &sp); err != nil {
				t.Fatal(err)
			}
			shown := s.verifiedSpec(jobSpec{rec: fleet.JobRecord{Offset: int64(i), Key: "spec/j1", Envelope: c.env}, spec: sp})
			v := s.view("j1", fleet.Status{Kind: fleet.KindReplay, State: fleet.Running}, shown, false)
			if v.Verified != c.ok || !strings.Contains(v.Unverified, c.why) || (c.ok && v.Unverified != "") {
				t.Errorf("verified %v %q, want %v %q", v.Verified, v.Unverified, c.ok, c.why)
			}
			if want := c.ok && c.env.Key != nil && fleet.Fingerprint(c.env.Key) == fleet.Fingerprint(own.Public().(ed25519.PublicKey)); v.Rerunnable != want {
				t.Errorf("rerunnable %v, want %v (only what serve's own key signed)", v.Rerunnable, want)
			}
			if c.ok {
				if v.Submitter != spec.Submitter || v.ClaimedSubmitter != "" || v.Signer != fleet.Fingerprint(c.env.Key) {
					t.Errorf("submitter %q claimed %q signer %q", v.Submitter, v.ClaimedSubmitter, v.Signer)
				}
				return
			}
			if v.Submitter != "" || v.Signer != "" {
				t.Errorf("an unverified spec shows submitter %q, signer %q", v.Submitter, v.Signer)
			}
			if v.ClaimedSubmitter != sp.Submitter {
				t.Errorf("claimed submitter %q, want %q", v.ClaimedSubmitter, sp.Submitter)
			}
		})
	}
	t.Run("no spec", func(t *testing.T) {
		v := s.view("j1", fleet.Status{Kind: fleet.KindReplay, State: fleet.Running}, nil, false)
		if v.Verified || v.Submitter != "" || v.Unverified == "" {
			t.Errorf("a job without a spec: %+v", v)
		}
	})
}
