package h2sink

import (
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// TestTargetsOwnSettings: with mode mirror, each HTTPS target gets its own
// timeout, CA file, server name and insecure-skip-verify: the second
// target, slower than the first one's timeout and trusted only through its
// own CA file under its own server name, answers.
func TestTargetsOwnSettings(t *testing.T) {
	newTLS := func(delay time.Duration) (*url.URL, string) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			_, _ = io.WriteString(w, r.TLS.ServerName)
		}))
		srv.EnableHTTP2 = true
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(srv.URL)
		return u, ca
	}
	fast, _ := newTLS(0)
	slow, slowCA := newTLS(600 * time.Millisecond)
	for _, tc := range []struct {
		name      string
		slowOwn   time.Duration
		slowClass string
	}{
		{"own timeout long enough", 3 * time.Second, ""},
		{"own timeout too short", 250 * time.Millisecond, stats.ClassTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, st := run(t, Config{Config: httpsink.Config{Mode: httpsink.ModeMirror, Targets: []httpsink.Target{
				{URL: fast, Name: "fast", Timeout: 250 * time.Millisecond, InsecureSkipVerify: true},
				{URL: slow, Name: "slow", Timeout: tc.slowOwn, CAFile: slowCA, ServerName: "example.com"},
			}}}, httpsink.Request{ID: "1", Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")})
			if len(res) != 2 {
				t.Fatalf("%d results, want 2 (stats %v)", len(res), st)
			}
			for _, r := range res {
				want := ""
				if r.Target == "slow" {
					want = tc.slowClass
				}
				if r.ErrClass != want {
					t.Errorf("%s: err %v class %q, want %q", r.Target, r.Err, r.ErrClass, want)
				}
			}
		})
	}
}
