package httpsink

import (
	"fmt"
	"strings"
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
