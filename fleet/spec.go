package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Job kinds an agent may be allowed to run.
const (
	KindRecord = "record"
	KindReplay = "replay"
)

// Spec is a job as submitted: what to run, where, and until when the spec
// may be taken. It travels signed (Envelope) on the jobs topic.
type Spec struct {
	// Type is the envelope type the spec was signed as ("spec"; set by
	// Seal): the signature covers it, so a spec cannot be presented as
	// another kind of command.
	Type      string    `json:"type,omitempty"`
	JobID     string    `json:"job-id"`
	Kind      string    `json:"kind"` // record or replay
	Job       string    `json:"job"`  // the scenario's job to run
	Scenario  string    `json:"scenario"`
	SHA256    string    `json:"scenario-sha256"`
	File      string    `json:"file"` // the scenario's file name, for diagnostics
	Set       []string  `json:"set,omitempty"`
	Selector  Selector  `json:"selector"`
	Agents    []string  `json:"agents"` // record: one run per agent; replay: the shards' first assignment
	Shards    int       `json:"shards,omitempty"`
	For       Duration  `json:"for,omitempty"`
	IssuedAt  time.Time `json:"issued-at"`
	ExpiresAt time.Time `json:"expires-at"`
	Submitter string    `json:"submitter"`
	// Record jobs: the one recording every agent writes.
	Recording *RecordingPlan `json:"recording,omitempty"`
	// Replay jobs: the shards and their one start instant.
	Replay *ReplayPlan `json:"replay,omitempty"`
}

// RecordingPlan is what a multi-host record job shares.
type RecordingPlan struct {
	ID     string          `json:"id"`
	Window string          `json:"window,omitempty"` // save-window name, "" for none
	Topic  string          `json:"topic"`
	Start  map[int32]int64 `json:"start"` // the topic's end offsets before any agent wrote
}

// Cancel is a signed request to stop a job on every agent.
type Cancel struct {
	Type      string    `json:"type,omitempty"` // "cancel", set by Seal (see Spec.Type)
	CommandID string    `json:"command-id"`
	JobID     string    `json:"job-id"`
	IssuedAt  time.Time `json:"issued-at"`
	ExpiresAt time.Time `json:"expires-at"`
	Submitter string    `json:"submitter"`
}

// Duration is a time.Duration that reads and writes as text ("30m").
type Duration time.Duration

// MarshalJSON writes the duration as text.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration written as text.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Envelope carries a signed payload (a Spec or a Cancel) on the jobs topic.
// Payload is the exact bytes that were signed.
type Envelope struct {
	Type      string `json:"type"` // "spec" or "cancel"
	Payload   []byte `json:"payload"`
	Key       []byte `json:"key,omitempty"` // the signer's public key
	Signature []byte `json:"signature,omitempty"`
}

// ScenarioHash returns the hex sha256 of a scenario's text.
func ScenarioHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// sealable is what Seal signs: a command whose payload names its type.
type sealable interface {
	// typed returns a copy of the command with its Type set to typ.
	typed(typ string) any
}

func (s Spec) typed(typ string) any   { s.Type = typ; return s }
func (c Cancel) typed(typ string) any { c.Type = typ; return c }

// Seal marshals v (a Spec or a Cancel, or a pointer to one) and signs it
// with key (nil key: unsigned, which every agent refuses; used to prove
// that it does).
//
// The payload names typ (Spec.Type, Cancel.Type), so that the signature
// covers it: Open refuses an envelope whose type is not the one signed (a
// signed spec republished as a cancel of its own job, say).
func Seal(typ string, v any, key ed25519.PrivateKey) (Envelope, error) {
	// A pointer's method set holds the value methods: *Spec and *Cancel
	// are sealable too, and typed gives back a copy.
	s, ok := v.(sealable)
	if !ok {
		return Envelope{}, fmt.Errorf("seal %s: cannot sign a %T", typ, v)
	}
	v = s.typed(typ)
	payload, err := json.Marshal(v)
	if err != nil {
		return Envelope{}, fmt.Errorf("encode %s: %w", typ, err)
	}
	env := Envelope{Type: typ, Payload: payload}
	if key != nil {
		env.Key = key.Public().(ed25519.PublicKey)
		env.Signature = ed25519.Sign(key, payload)
	}
	return env, nil
}

// Refusal reasons an agent publishes.
var (
	ErrUnsigned     = errors.New("unsigned spec")
	ErrUntrustedKey = errors.New("signed by a key this agent does not trust")
	ErrBadSignature = errors.New("bad signature")
	ErrExpired      = errors.New("expired")
	ErrWrongType    = errors.New("signed as another type")
	ErrTooLong      = errors.New("valid for too long")
	ErrIssuedAhead  = errors.New("issued in the future")
)

// Bounds of a signed command's validity (ExpiresAt - IssuedAt). A signed
// spec or cancel is runnable by whoever re-publishes it until it expires,
// and an agent refuses one valid for longer than its --max-spec-ttl
// (DefaultMaxSpecTTL, at most MaxTTL, at least CancelTTL) or issued
// further in the future than ClockSkew.
const (
	// MaxTTL is the longest a spec may be valid: jobs submit refuses a
	// longer --ttl, and it is DefaultMaxSpecTTL.
	MaxTTL = 24 * time.Hour
	// DefaultMaxSpecTTL is AgentConfig.MaxSpecTTL's default.
	DefaultMaxSpecTTL = MaxTTL
	// DefaultTTL is how long a spec is valid when its submitter does not
	// say (jobs submit --ttl).
	DefaultTTL = 5 * time.Minute
	// CancelTTL is how long a cancel (jobs cancel) is valid; an agent's
	// --max-spec-ttl may not be shorter, or it would refuse every cancel.
	CancelTTL = 10 * time.Minute
	// ClockSkew is how far ahead of an agent's clock a command's IssuedAt
	// may lie (the submitter's clock may run ahead of the agent's).
	ClockSkew = 2 * time.Minute
)

// checkValidity says why an agent whose bound is maxTTL may not take, at
// now, a command issued at issued that expires at expires (nil: it may).
// Expiry itself is checked apart (ErrExpired).
func checkValidity(issued, expires, now time.Time, maxTTL time.Duration) error {
	const at = time.RFC3339
	switch {
	case issued.IsZero():
		return fmt.Errorf("%w: it has no issued-at time (expires %s), so its validity is unbounded; this agent's --max-spec-ttl is %s",
			ErrTooLong, expires.UTC().Format(at), maxTTL)
	case issued.After(now.Add(ClockSkew)):
		return fmt.Errorf("%w: issued at %s, %s ahead of this agent's clock (now %s), more than the %s of clock skew it allows",
			ErrIssuedAhead, issued.UTC().Format(at), issued.Sub(now).Round(time.Second), now.UTC().Format(at), ClockSkew)
	case expires.Sub(issued) > maxTTL:
		return fmt.Errorf("%w: valid for %s (issued %s, expires %s), more than this agent's --max-spec-ttl %s",
			ErrTooLong, expires.Sub(issued), issued.UTC().Format(at), expires.UTC().Format(at), maxTTL)
	}
	return nil
}

// checkLifetime says why an agent whose bound is maxTTL may not take, at
// now, a spec issued at issued that expires at expires (nil: it may): it
// expired (ErrExpired), or checkValidity refuses it. A fresh claim and a
// shard resumed after a restart (a new take of its spec) check the same.
func checkLifetime(issued, expires, now time.Time, maxTTL time.Duration) error {
	if now.After(expires) {
		return fmt.Errorf("%w: the spec expired at %s (now %s)", ErrExpired, expires.Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return checkValidity(issued, expires, now, maxTTL)
}

// Open checks env's signature against the trusted keys and decodes its
// payload into v.
func (env Envelope) Open(trusted []ed25519.PublicKey, v any) error {
	if len(env.Signature) == 0 {
		return ErrUnsigned
	}
	if len(env.Key) != ed25519.PublicKeySize {
		return ErrBadSignature
	}
	ok := false
	for _, k := range trusted {
		if bytes.Equal(k, env.Key) {
			ok = true
			break
		}
	}
	if !ok {
		return fmt.Errorf("%w (key %s)", ErrUntrustedKey, Fingerprint(env.Key))
	}
	if !ed25519.Verify(ed25519.PublicKey(env.Key), env.Payload, env.Signature) {
		return ErrBadSignature
	}
	// The envelope's type is outside the signature: the signed payload
	// says what it is.
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(env.Payload, &head); err != nil {
		return fmt.Errorf("decode %s: %w", env.Type, err)
	}
	if head.Type != env.Type {
		return fmt.Errorf("%w: the payload was signed as %q, published as %q", ErrWrongType, head.Type, env.Type)
	}
	if err := json.Unmarshal(env.Payload, v); err != nil {
		return fmt.Errorf("decode %s: %w", env.Type, err)
	}
	return nil
}

// Fingerprint is a short, stable name for a public key.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	return "ed25519:" + hex.EncodeToString(sum[:8])
}

// NewKeyPair writes a new Ed25519 key pair as PEM: the private key (PKCS #8)
// to base+".key" with mode 0600 and the public key (PKIX) to base+".pub". It
// refuses to overwrite either file.
func NewKeyPair(base string) (pub ed25519.PublicKey, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if dir := filepath.Dir(base); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	}
	if err := writeNew(base+".key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return nil, err
	}
	if err := writeNew(base+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return nil, err
	}
	return pub, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	return f.Close()
}

// ReadPrivateKey reads a PEM private key written by NewKeyPair. It refuses a
// file that others can read.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	b, _ := pem.Decode(data)
	switch {
	case b != nil && b.Type == "PUBLIC KEY":
		// The .pub of a key pair: told before its mode, which a public
		// key may well have (chmod 600 would not help).
		return nil, fmt.Errorf("signing key %s: a PUBLIC KEY (what agents --trust); sign with the private key of the pair (keys new writes NAME.key and NAME.pub)", path)
	case b == nil || b.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("signing key %s: not a PEM PRIVATE KEY", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("signing key %s: mode %v lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s: not an Ed25519 key", path)
	}
	return ek, nil
}

// ReadTrusted reads the public keys of a trust file: one or more PEM PUBLIC
// KEY blocks (a .pub file written by NewKeyPair, or several concatenated).
func ReadTrusted(path string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	var keys []ed25519.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("trust file %s: unexpected PEM block %q", path, b.Type)
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("trust file %s: %w", path, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("trust file %s: not an Ed25519 key", path)
		}
		keys = append(keys, ek)
	}
	if len(bytes.TrimSpace(data)) > 0 {
		return nil, fmt.Errorf("trust file %s: text that is not a PEM block", path)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("trust file %s: no public key", path)
	}
	return keys, nil
}
