package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	spec := Spec{JobID: "j1", Kind: KindRecord, Scenario: "version: 1", SHA256: ScenarioHash("version: 1"), ExpiresAt: time.Now().Add(time.Minute)}
	signed, err := Seal("spec", spec, priv)
	if err != nil {
		t.Fatal(err)
	}
	unsigned, _ := Seal("spec", spec, nil)
	other, _ := Seal("spec", spec, otherPriv)
	tampered := signed
	tampered.Payload = []byte(strings.Replace(string(signed.Payload), `"j1"`, `"j2"`, 1))
	forged := other
	forged.Key = pub // claims the trusted key, signed by another
	tests := []struct {
		name    string
		env     Envelope
		trusted []ed25519.PublicKey
		want    error
	}{
		{"signed", signed, []ed25519.PublicKey{pub}, nil},
		{"one of several keys", signed, []ed25519.PublicKey{otherPub, pub}, nil},
		{"unsigned", unsigned, []ed25519.PublicKey{pub}, ErrUnsigned},
		{"other key", other, []ed25519.PublicKey{pub}, ErrUntrustedKey},
		{"tampered", tampered, []ed25519.PublicKey{pub}, ErrBadSignature},
		{"forged key", forged, []ed25519.PublicKey{pub}, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Spec
			err := tt.env.Open(tt.trusted, &got)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open: %v, want %v", err, tt.want)
			}
			if err == nil && (got.JobID != "j1" || got.ScenarioHashMismatch()) {
				t.Fatalf("decoded %+v", got)
			}
		})
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "k", "fleet")
	pub, err := NewKeyPair(base)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(base + ".key")
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", st.Mode(), err)
	}
	if _, err := NewKeyPair(base); err == nil {
		t.Fatal("NewKeyPair overwrote a key")
	}
	priv, err := ReadPrivateKey(base + ".key")
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := ReadTrusted(base + ".pub")
	if err != nil || len(trusted) != 1 || !trusted[0].Equal(pub) || !priv.Public().(ed25519.PublicKey).Equal(pub) {
		t.Fatalf("keys do not match: %v", err)
	}
	// Several keys in one trust file.
	if _, err := NewKeyPair(filepath.Join(dir, "two")); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(base + ".pub")
	b, _ := os.ReadFile(filepath.Join(dir, "two.pub"))
	both := filepath.Join(dir, "both.pub")
	_ = os.WriteFile(both, append(a, b...), 0o644)
	if keys, err := ReadTrusted(both); err != nil || len(keys) != 2 {
		t.Fatalf("two keys: %d, %v", len(keys), err)
	}
	// A private key others can read is refused; so is a private key as a trust file.
	_ = os.Chmod(base+".key", 0o644)
	if _, err := ReadPrivateKey(base + ".key"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("readable private key: %v", err)
	}
	if _, err := ReadTrusted(base + ".key"); err == nil {
		t.Fatal("a private key was read as a trust file")
	}
	// The public key given to sign with: told so, not to chmod it.
	if _, err := ReadPrivateKey(base + ".pub"); err == nil || !strings.Contains(err.Error(), "a PUBLIC KEY (what agents --trust); sign with the private key") {
		t.Fatalf("public key as the signing key: %v", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "junk.pub"), []byte("not a key\n"), 0o644)
	if _, err := ReadTrusted(filepath.Join(dir, "junk.pub")); err == nil {
		t.Fatal("junk trust file accepted")
	}
}

func TestLabels(t *testing.T) {
	tests := []struct {
		in, sel string
		match   bool
		bad     bool
	}{
		{"role=web,zone=a", "role=web", true, false},
		{"role=web,zone=a", "role=web,zone=b", false, false},
		{"role=web", "", true, false},
		{"", "role=web", false, false},
		{"role", "", false, true},
		{"=x", "", false, true},
	}
	for _, tt := range tests {
		l, err := ParseLabels(tt.in)
		if (err != nil) != tt.bad {
			t.Fatalf("ParseLabels(%q): %v", tt.in, err)
		}
		if err != nil {
			continue
		}
		sel, _ := ParseLabels(tt.sel)
		if l.Matches(sel) != tt.match {
			t.Fatalf("%q matches %q: %v", tt.in, tt.sel, !tt.match)
		}
	}
	if got := (Labels{"zone": "a", "role": "web"}).String(); got != "role=web,zone=a" {
		t.Fatalf("String: %q", got)
	}
}

func FuzzParseLabels(f *testing.F) {
	for _, s := range []string{"role=web,zone=a", "", "a=", ",", "=", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLabels(s)
		if err != nil {
			return
		}
		again, err := ParseLabels(l.String())
		if err != nil || !again.Matches(l) || !l.Matches(again) {
			t.Fatalf("%q → %q does not read back: %v", s, l.String(), err)
		}
	})
}

func FuzzEnvelopeOpen(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	env, _ := Seal("spec", Spec{JobID: "x"}, priv)
	f.Add(env.Payload, env.Signature, []byte(pub))
	f.Fuzz(func(t *testing.T, payload, sig, key []byte) {
		var s Spec
		err := Envelope{Type: "spec", Payload: payload, Signature: sig, Key: key}.Open([]ed25519.PublicKey{pub}, &s)
		if err == nil && !ed25519.Verify(pub, payload, sig) {
			t.Fatal("accepted a payload the trusted key did not sign")
		}
	})
}

// TestOpenTypeSigned: the envelope's type is outside the signature, so the
// payload names it. A signed spec (any reader of the jobs topic has one)
// republished as a "cancel" would otherwise decode as a cancel of its own
// job (job-id and expires-at are common to both), signed by a trusted key.
func TestOpenTypeSigned(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	trusted := []ed25519.PublicKey{pub}
	now := time.Now()
	spec := Spec{JobID: "j1", Kind: KindReplay, Scenario: "version: 1", SHA256: ScenarioHash("version: 1"), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	signed, err := Seal("spec", spec, priv)
	if err != nil {
		t.Fatal(err)
	}
	asCancel := signed
	asCancel.Type = "cancel"
	var c Cancel
	if err := asCancel.Open(trusted, &c); !errors.Is(err, ErrWrongType) {
		t.Fatalf("a spec published as a cancel opened: %v (cancel %+v)", err, c)
	}
	cancel, err := Seal("cancel", Cancel{CommandID: "c1", JobID: "j1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, priv)
	if err != nil {
		t.Fatal(err)
	}
	asSpec := cancel
	asSpec.Type = "spec"
	var s Spec
	if err := asSpec.Open(trusted, &s); !errors.Is(err, ErrWrongType) {
		t.Fatalf("a cancel published as a spec opened: %v", err)
	}
	// As signed, each opens.
	if err := cancel.Open(trusted, &c); err != nil || c.JobID != "j1" {
		t.Fatalf("cancel: %v %+v", err, c)
	}
	if err := signed.Open(trusted, &s); err != nil || s.JobID != "j1" {
		t.Fatalf("spec: %v %+v", err, s)
	}
}

// FuzzJobRecord: any value on the jobs topic is decoded, judged and opened
// without a panic; what it accepts as a trusted spec was signed by the
// trusted key, as its own type, under its own job's key.
func FuzzJobRecord(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	good, _ := Seal("spec", Spec{JobID: "x", Kind: KindRecord, ExpiresAt: now.Add(time.Hour)}, priv)
	cancel, _ := Seal("cancel", Cancel{CommandID: "c", JobID: "x", ExpiresAt: now.Add(time.Hour)}, priv)
	for _, env := range []Envelope{good, cancel} {
		b, _ := json.Marshal(env)
		f.Add("spec/x", b)
	}
	f.Add("spec/x", []byte(`{"type":"spec","payload":"e30="}`))
	f.Add("spec/x", []byte(`null`))
	f.Add("", []byte(`{"type":1}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		jr := decodeJobRecord(1, key, value)
		why := checkJobRecord(jr)
		if jr.Bad != "" {
			return
		}
		var s Spec
		if err := jr.Envelope.Open([]ed25519.PublicKey{pub}, &s); err != nil {
			return
		}
		if !ed25519.Verify(pub, jr.Envelope.Payload, jr.Envelope.Signature) {
			t.Fatal("opened a payload the trusted key did not sign")
		}
		if jr.Envelope.Type == "spec" && why == "" && key != "spec/"+s.JobID {
			t.Fatalf("spec of %q accepted under key %q", s.JobID, key)
		}
		if s.Type != jr.Envelope.Type {
			t.Fatalf("opened a %q signed as %q", jr.Envelope.Type, s.Type)
		}
	})
}

// TestSealForms: Seal signs a Spec or a Cancel, given as a value or a
// pointer, with the type it is sealed as in its payload; the caller's value
// is not changed. Anything else is refused.
func TestSealForms(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	spec := &Spec{JobID: "j1", Kind: KindRecord}
	cancel := &Cancel{CommandID: "c1", JobID: "j1"}
	tests := []struct {
		name, typ string
		v         any
		wantErr   string
	}{
		{"spec", "spec", *spec, ""},
		{"*spec", "spec", spec, ""},
		{"cancel", "cancel", *cancel, ""},
		{"*cancel", "cancel", cancel, ""},
		{"other type", "spec", map[string]string{"job-id": "j1"}, "seal spec: cannot sign a map[string]string"},
		{"nil", "cancel", nil, "seal cancel: cannot sign a <nil>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := Seal(tt.typ, tt.v, priv)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Seal: %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var head struct {
				Type  string `json:"type"`
				JobID string `json:"job-id"`
			}
			if err := json.Unmarshal(env.Payload, &head); err != nil || head.Type != tt.typ || head.JobID != "j1" || env.Type != tt.typ {
				t.Fatalf("payload %s (envelope type %q): %v", env.Payload, env.Type, err)
			}
		})
	}
	if spec.Type != "" || cancel.Type != "" {
		t.Fatalf("Seal changed the caller's values: %q %q", spec.Type, cancel.Type)
	}
}
