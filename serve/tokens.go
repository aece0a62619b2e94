package serve

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Scopes a token may hold. admin implies the others.
const (
	ScopeRead   = "read"
	ScopeRecord = "record"
	ScopeReplay = "replay"
	ScopeAdmin  = "admin"
)

// AllScopes lists the scopes in order.
var AllScopes = []string{ScopeRead, ScopeRecord, ScopeReplay, ScopeAdmin}

// Token is one entry of a tokens file: only the token's hash is stored.
type Token struct {
	Name    string    `json:"name"`
	Scopes  []string  `json:"scopes"`
	Hash    string    `json:"sha256"`
	Created time.Time `json:"created"`
}

// Has reports whether the token holds scope (admin holds every scope;
// record and replay imply read).
func (t Token) Has(scope string) bool {
	if slices.Contains(t.Scopes, ScopeAdmin) || slices.Contains(t.Scopes, scope) {
		return true
	}
	return scope == ScopeRead && (slices.Contains(t.Scopes, ScopeRecord) || slices.Contains(t.Scopes, ScopeReplay))
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// HashToken returns the stored form of a token.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ParseScopes reads "read,replay".
func ParseScopes(list []string) ([]string, error) {
	var out []string
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			if !slices.Contains(AllScopes, s) {
				return nil, fmt.Errorf("scope %q: want one of %s", s, strings.Join(AllScopes, ", "))
			}
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--scope is required: %s", strings.Join(AllScopes, ", "))
	}
	return out, nil
}

// ReadTokens reads a tokens file (a JSON array of Token). A missing file
// holds no token.
func ReadTokens(path string) ([]Token, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	var ts []Token
	if err := json.Unmarshal(data, &ts); err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return ts, nil
}

func writeTokens(path string, ts []Token) error {
	data, err := json.MarshalIndent(ts, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tokens-*")
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("tokens file: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// AddToken creates a token called name with scopes in the tokens file and
// returns its secret (shown once; only its sha256 is stored).
func AddToken(path, name string, scopes []string) (string, error) {
	if !tokenName.MatchString(name) {
		return "", fmt.Errorf("token name %q: letters, digits, '.', '_', '@', '-' (up to 64)", name)
	}
	ts, err := ReadTokens(path)
	if err != nil {
		return "", err
	}
	for _, t := range ts {
		if t.Name == name {
			return "", fmt.Errorf("token %q already exists in %s (replayctl tokens rm %s first)", name, path, name)
		}
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	secret := "rpl_" + base64.RawURLEncoding.EncodeToString(b[:])
	ts = append(ts, Token{Name: name, Scopes: scopes, Hash: HashToken(secret), Created: time.Now().UTC().Truncate(time.Second)})
	if err := writeTokens(path, ts); err != nil {
		return "", err
	}
	return secret, nil
}

// RemoveToken deletes the token called name.
func RemoveToken(path, name string) error {
	ts, err := ReadTokens(path)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ts, func(t Token) bool { return t.Name == name })
	if i < 0 {
		return fmt.Errorf("no token %q in %s", name, path)
	}
	return writeTokens(path, slices.Delete(ts, i, i+1))
}

// tokenStore answers token lookups from a tokens file, re-read when it
// changes, so that every serve instance sharing the file (a mounted secret)
// sees the same tokens and a removal takes effect at once.
type tokenStore struct {
	path string

	mu     sync.Mutex
	mod    time.Time
	size   int64
	byHash map[string]Token
	err    error
}

func (s *tokenStore) lookup(secret string) (Token, bool, error) {
	st, err := os.Stat(s.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.byHash, s.err = nil, nil
	case err != nil:
		return Token{}, false, err
	case !st.ModTime().Equal(s.mod) || st.Size() != s.size || s.byHash == nil:
		ts, rerr := ReadTokens(s.path)
		s.mod, s.size, s.err = st.ModTime(), st.Size(), rerr
		s.byHash = map[string]Token{}
		for _, t := range ts {
			s.byHash[t.Hash] = t
		}
	}
	if s.err != nil {
		return Token{}, false, s.err
	}
	t, ok := s.byHash[HashToken(secret)]
	return t, ok, nil
}
