package httpsink

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/replayctl/replayctl/stats"
)

// TestTargetsOwnTimeout: with mode mirror, each target's requests are
// bounded by its own timeout (Config.Timeout only for a target without
// one), in each model: the closed one on event loops (plain TCP) and on
// worker goroutines (sessions), and the open one.
func TestTargetsOwnTimeout(t *testing.T) {
	fast := newRawServer(t, answer(okResponse))
	slow := newRawServer(t, func(c net.Conn, _ []byte) bool {
		time.Sleep(300 * time.Millisecond)
		_, err := c.Write([]byte(okResponse))
		return err == nil
	})
	models := []struct {
		name string
		cfg  Config
	}{
		{"closed", Config{Workers: 4}},
		{"closed sessions", Config{Workers: 4, Session: true}},
		{"open", Config{Open: true}},
	}
	for _, m := range models {
		for _, tc := range []struct {
			name      string
			slowOwn   time.Duration // the slow target's own timeout; 0: Config.Timeout
			slowClass string        // its requests' error class
		}{
			{"slow target's own timeout is long enough", 3 * time.Second, ""},
			{"slow target's own timeout is too short", 100 * time.Millisecond, stats.ClassTimeout},
			{"slow target without one takes Config.Timeout", 0, stats.ClassTimeout},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				cfg := m.cfg
				cfg.Mode = ModeMirror
				cfg.Timeout = 150 * time.Millisecond
				cfg.Targets = []Target{
					{URL: fast.url(), Name: "fast", Timeout: 100 * time.Millisecond},
					{URL: slow.url(), Name: "slow", Timeout: tc.slowOwn},
				}
				s, col := newSender(t, cfg)
				for i := range 4 {
					mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: fmt.Sprint(i), ConnID: fmt.Sprint("c", i)})
				}
				mustClose(t, s)
				got := map[string]int{}
				for _, r := range col.all() {
					want := ""
					if r.Target == "slow" {
						want = tc.slowClass
					}
					if r.ErrClass != want {
						t.Errorf("%s: err %v class %q, want %q", r.Target, r.Err, r.ErrClass, want)
					}
					got[r.Target]++
				}
				if got["fast"] != 4 || got["slow"] != 4 {
					t.Errorf("results by target %v, want 4 each", got)
				}
			})
		}
	}
}

// TestTargetsOwnTLS: each HTTPS target is verified with its own CA file
// and server name, or not at all with its own insecure-skip-verify; a
// target's settings do not leak to the other.
func TestTargetsOwnTLS(t *testing.T) {
	newTLS := func() (*url.URL, string) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, r.TLS.ServerName)
		}))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected
		srv.StartTLS()
		t.Cleanup(srv.Close)
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		return mustURL(t, srv.URL), ca
	}
	u1, ca1 := newTLS()
	u2, _ := newTLS()
	u3, _ := newTLS()
	for _, open := range []bool{false, true} {
		t.Run(fmt.Sprint("open=", open), func(t *testing.T) {
			s, col := newSender(t, Config{Mode: ModeMirror, Workers: 2, Open: open, KeepResponse: true, Targets: []Target{
				{URL: u1, Name: "verified", CAFile: ca1, ServerName: "example.com"},
				{URL: u2, Name: "insecure", InsecureSkipVerify: true},
				{URL: u3, Name: "unknown"}, // neither: the others' settings must not apply
			}})
			mustSend(t, s, Request{Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ID: "1"})
			mustClose(t, s)
			want := map[string]string{"verified": "", "insecure": "", "unknown": stats.ClassTLS}
			res := col.all()
			if len(res) != 3 {
				t.Fatalf("%d results, want 3", len(res))
			}
			for _, r := range res {
				if r.ErrClass != want[r.Target] {
					t.Errorf("%s: err %v class %q, want %q", r.Target, r.Err, r.ErrClass, want[r.Target])
				}
				if r.Target == "verified" && r.Err == nil && !bytes.HasSuffix(r.Response, []byte("example.com")) {
					t.Errorf("verified: response %q, want the server name example.com", r.Response)
				}
			}
		})
	}
}
