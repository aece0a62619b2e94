package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"strings"
	"testing"
	"time"
)

// TestSubmittedBy: jobs show names a spec's submitter as such only when
// its signature verifies against --trust, for that job; otherwise the
// name is a claim, and the line says why: `submitted by "alice@ci"
// according to its spec (UNVERIFIED: …)`, not `submitted by claims
// "alice@ci" (…)`, which did not read as English.
func TestSubmittedBy(t *testing.T) {
	key := func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	trusted, rogue := key(), key()
	now := time.Now().UTC()
	spec := Spec{JobID: "j1", Kind: KindReplay, Job: "replay", File: "r.yaml", Submitter: "alice@ci", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	other := spec
	other.JobID = "j2"
	seal := func(v Spec, k ed25519.PrivateKey) Envelope {
		env, err := Seal("spec", v, k)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	tampered := seal(spec, trusted)
	tampered.Payload = []byte(strings.Replace(string(tampered.Payload), "alice", "mallory", 1))
	trust := []ed25519.PublicKey{trusted.Public().(ed25519.PublicKey)}
	fp := func(k ed25519.PrivateKey) string { return Fingerprint(k.Public().(ed25519.PublicKey)) }
	for _, c := range []struct {
		name  string
		trust []ed25519.PublicKey
		env   Envelope
		want  string
	}{
		{"verified", trust, seal(spec, trusted), "alice@ci (signature verified: key " + fp(trusted) + ")"},
		{"unsigned", trust, seal(spec, nil), `"alice@ci" according to its spec (UNVERIFIED: unsigned spec)`},
		{"another key", trust, seal(spec, rogue), `"alice@ci" according to its spec (UNVERIFIED: signed by key ` + fp(rogue) + `, not one of --trust)`},
		{"changed after signing", trust, tampered, `"mallory@ci" according to its spec (UNVERIFIED: bad signature)`},
		{"another job's spec", trust, seal(other, trusted), `"alice@ci" according to its spec (UNVERIFIED: signed for job "j2")`},
		{"no --trust", nil, seal(spec, trusted), `"alice@ci" according to its spec (signed by key ` + fp(trusted) + `; not checked: --trust FILE checks it)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var shown Spec
			if err := jsonUnmarshal(c.env.Payload, &shown); err != nil {
				t.Fatal(err)
			}
			got := (&Client{Trust: c.trust}).submittedBy("j1", shown, c.env)
			if got != c.want {
				t.Errorf("submitted by %s\nwant %s", got, c.want)
			}
		})
	}
}
