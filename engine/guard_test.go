package engine

import (
	"context"
	"net/netip"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// ownAddr returns one of this host's non-loopback interface addresses, or
// an invalid Addr when it has none.
func ownAddr() netip.Addr {
	for a := range selfAddrs() {
		if !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			return a
		}
	}
	return netip.Addr{}
}

func TestGuardAliases(t *testing.T) {
	own := ownAddr()
	ap := netip.MustParseAddrPort
	type tcase struct {
		name   string
		target string // resolved target address
		dst    string // recorded destination
		local  bool
		hit    bool
	}
	cases := []tcase{
		{"exact", "127.0.0.1:8080", "127.0.0.1:8080", true, true},
		{"exact, remote capture", "10.1.2.3:8080", "10.1.2.3:8080", false, true},
		{"0.0.0.0 target", "0.0.0.0:8080", "127.0.0.1:8080", true, true},
		{":: target", "[::]:8080", "127.0.0.1:8080", true, true},
		{"other 127/8 target", "127.0.0.2:8080", "127.0.0.1:8080", true, true},
		{"::1 target", "[::1]:8080", "127.0.0.1:8080", true, true},
		{"mapped ::1 target", "[::ffff:127.0.0.1]:8080", "[::1]:8080", true, true},
		{"0.0.0.0 recorded", "127.0.0.1:8080", "0.0.0.0:8080", true, true},
		{"127.9.9.9 recorded", "[::1]:8080", "127.9.9.9:8080", true, true},
		{"other port", "0.0.0.0:8081", "127.0.0.1:8080", true, false},
		{"remote capture of its own loopback", "127.0.0.1:8080", "127.0.0.2:8080", false, false},
		{"other host", "10.1.2.3:8080", "10.1.2.4:8080", true, false},
	}
	if own.IsValid() {
		cases = append(cases,
			tcase{"own address target", netip.AddrPortFrom(own, 8080).String(), "127.0.0.1:8080", true, true},
			tcase{"own address recorded", "0.0.0.0:8080", netip.AddrPortFrom(own, 8080).String(), true, true},
			tcase{"own address, remote capture", "127.0.0.1:8080", netip.AddrPortFrom(own, 8080).String(), false, false},
		)
	} else {
		t.Log("no non-loopback interface address: own-address cases not run")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostGuard()
			h.addTarget("app", ap(tc.target))
			if _, hit := h.hit(ap(tc.dst), tc.local); hit != tc.hit {
				t.Fatalf("hit = %v, want %v", hit, tc.hit)
			}
			// The same through a message: its capturing host says local or not.
			m := &message.Message{Kind: message.Request, Dst: ap(tc.dst), Host: hostname(), Raw: []byte("GET / HTTP/1.1\r\n\r\n")}
			if !tc.local {
				m.Host = "some-other-host"
			}
			if _, _, hit := h.messageHit(context.Background(), m); hit != tc.hit {
				t.Fatalf("message hit = %v, want %v", hit, tc.hit)
			}
		})
	}
}

func TestGuardHostHeader(t *testing.T) {
	for _, tc := range []struct {
		name   string
		target string // resolved address
		host   string // target URL host name
		req    string
		hit    bool
	}{
		{"localhost", "127.0.0.1:8080", "127.0.0.1", "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", true},
		{"loopback alias", "127.0.0.1:8080", "127.0.0.1", "GET / HTTP/1.1\r\nhost:127.0.0.7:8080\r\n\r\n", true},
		{"::1", "0.0.0.0:8080", "0.0.0.0", "GET / HTTP/1.1\r\nHOST: [::1]:8080\r\n\r\n", true},
		{"default port", "127.0.0.1:80", "localhost", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", true},
		{"absolute form", "127.0.0.1:8080", "127.0.0.1", "GET http://user@localhost:8080/x HTTP/1.1\r\nHost: other\r\n\r\n", true},
		{"same name", "10.9.9.9:8443", "api.prod.example", "GET / HTTP/1.1\r\nHost: API.prod.example.\r\n\r\n", true},
		{"same name, other port", "10.9.9.9:8443", "api.prod.example", "GET / HTTP/1.1\r\nHost: api.prod.example:9000\r\n\r\n", false},
		{"other port", "127.0.0.1:8080", "127.0.0.1", "GET / HTTP/1.1\r\nHost: localhost:9090\r\n\r\n", false},
		{"no host", "127.0.0.1:8080", "127.0.0.1", "GET / HTTP/1.1\r\n\r\n", false},
		{"unresolvable name", "127.0.0.1:8080", "127.0.0.1", "GET / HTTP/1.1\r\nHost: shop.invalid:8080\r\n\r\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHostGuard()
			a := netip.MustParseAddrPort(tc.target)
			h.addTarget("app", a)
			h.addName("app", tc.host, a.Port())
			m := &message.Message{Kind: message.Request, Raw: []byte(tc.req)}
			for range 2 { // the second answer comes from the cache
				if _, _, hit := h.messageHit(context.Background(), m); hit != tc.hit {
					t.Fatalf("hit = %v, want %v", hit, tc.hit)
				}
			}
		})
	}
}
