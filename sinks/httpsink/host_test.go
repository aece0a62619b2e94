package httpsink

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// models are the sender's paths to the wire: the event loop (closed model,
// plain TCP), goroutine workers (sessions) and the open model's direct
// sends.
var models = []struct {
	name string
	cfg  Config
}{
	{"loop", Config{Workers: 1}},
	{"workers", Config{Workers: 1, Session: true}},
	{"open", Config{Open: true}},
}

// TestKeepHost: a request marked KeepHost goes out with its own Host
// although PreserveHost is off; the others get the target's.
func TestKeepHost(t *testing.T) {
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			srv := newRawServer(t, answer(okResponse))
			cfg := m.cfg
			cfg.Targets = []Target{{URL: srv.url()}}
			s, _ := newSender(t, cfg)
			kept := "GET /kept HTTP/1.1\r\nHost: rewritten.example:8443\r\n\r\n"
			other := "GET /other HTTP/1.1\r\nHost: prod.example\r\n\r\n"
			mustSend(t, s, Request{Raw: []byte(kept), ID: "kept", ConnID: "c", KeepHost: true})
			mustSend(t, s, Request{Raw: []byte(other), ID: "other", ConnID: "c"})
			mustClose(t, s)
			got := srv.received()
			if len(got) != 2 {
				t.Fatalf("server got %d requests, want 2", len(got))
			}
			want := map[string]bool{kept: true, strings.Replace(other, "prod.example", srv.ln.Addr().String(), 1): true}
			for _, g := range got {
				if !want[string(g.raw)] {
					t.Errorf("on the wire %q, want one of %v", g.raw, want)
				}
			}
			if st := s.Stats(); st["ok"] != 2 || st["bytes-out"] != int64(len(got[0].raw)+len(got[1].raw)) {
				t.Errorf("stats %v", st)
			}
		})
	}
}

func TestKeepHostMirror(t *testing.T) {
	a, b := newRawServer(t, answer(okResponse)), newRawServer(t, answer(okResponse))
	s, _ := newSender(t, Config{Targets: []Target{{URL: a.url()}, {URL: b.url()}}, Mode: ModeMirror, Workers: 2})
	raw := "GET / HTTP/1.1\r\nHost: rewritten.example\r\n\r\n"
	mustSend(t, s, Request{Raw: []byte(raw), KeepHost: true})
	mustClose(t, s)
	for i, srv := range []*rawServer{a, b} {
		if got := srv.received(); len(got) != 1 || string(got[0].raw) != raw {
			t.Errorf("target %d got %q, want %q", i, fmt.Sprint(got), raw)
		}
	}
}

// TestAbsoluteFormRetargeted: an absolute-form request target gets the
// target's scheme and authority with its Host (RFC 9112 §3.2.2: a server
// goes by the request line's authority), on every path to the wire; kept
// as recorded with PreserveHost or KeepHost.
func TestAbsoluteFormRetargeted(t *testing.T) {
	const abs = "GET http://orig.example:18101/c60/abs?q=1 HTTP/1.1\r\nHost: orig.example:18101\r\nAccept: */*\r\n\r\n"
	big := "POST http://orig.example:18101/big HTTP/1.1\r\nHost: orig.example:18101\r\nContent-Length: 70000\r\n\r\n" + strings.Repeat("b", 70000)
	for _, m := range models {
		for _, keep := range []string{"retarget", "preserve-host", "keep-host"} {
			t.Run(m.name+"/"+keep, func(t *testing.T) {
				srv := newRawServer(t, answer(okResponse))
				cfg := m.cfg
				cfg.Targets = []Target{{URL: srv.url()}}
				cfg.PreserveHost = keep == "preserve-host"
				s, _ := newSender(t, cfg)
				for i, raw := range []string{abs, big} {
					mustSend(t, s, Request{Raw: []byte(raw), ID: fmt.Sprint(i), ConnID: "c", KeepHost: keep == "keep-host"})
				}
				mustClose(t, s)
				got := srv.received()
				if len(got) != 2 {
					t.Fatalf("server got %d requests, want 2", len(got))
				}
				if len(got[0].raw) > len(got[1].raw) { // the open model sends both at once
					got[0], got[1] = got[1], got[0]
				}
				var out int64
				for i, want := range []string{abs, big} {
					if keep == "retarget" {
						want = strings.ReplaceAll(want, "orig.example:18101", srv.ln.Addr().String())
					}
					if string(got[i].raw) != want {
						t.Errorf("on the wire\n%.200q\nwant\n%.200q", got[i].raw, want)
					}
					out += int64(len(got[i].raw))
				}
				if st := s.Stats(); st["ok"] != 2 || st["bytes-out"] != out {
					t.Errorf("stats %v (bytes on the wire %d)", st, out)
				}
			})
		}
	}
}

// TestAbsoluteFormMirror: each target of a mirror gets its own scheme and
// authority in the request line.
func TestAbsoluteFormMirror(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // scheme → request URI
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		mu.Lock()
		seen[scheme] = r.RequestURI + " Host " + r.Host
		mu.Unlock()
	})
	plain, secure := httptest.NewServer(h), httptest.NewTLSServer(h)
	defer plain.Close()
	defer secure.Close()
	pu, _ := url.Parse(plain.URL)
	su, _ := url.Parse(secure.URL)
	s, col := newSender(t, Config{Targets: []Target{{URL: pu}, {URL: su, InsecureSkipVerify: true}}, Mode: ModeMirror, Workers: 2})
	mustSend(t, s, Request{Raw: []byte("GET http://orig.example:18101/abs?q=1 HTTP/1.1\r\nHost: orig.example:18101\r\n\r\n")})
	mustClose(t, s)
	for _, r := range col.all() {
		if r.Err != nil || r.Status != 200 {
			t.Errorf("%s: %v %d", r.Target, r.Err, r.Status)
		}
	}
	want := map[string]string{
		"http":  "http://" + pu.Host + "/abs?q=1 Host " + pu.Host,
		"https": "https://" + su.Host + "/abs?q=1 Host " + su.Host,
	}
	if !maps.Equal(seen, want) {
		t.Errorf("targets saw %v, want %v", seen, want)
	}
}
