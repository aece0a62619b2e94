//go:build linux

package capture

import (
	"net/netip"
	"testing"
)

// TestLiveIPv6ExtensionHeaders writes an HTTP exchange whose IPv6 packets
// carry destination options, the request in fragments after them, onto lo
// while a live capture runs: the kernel filter lets them through and the
// exchange is recorded. The filter rejected every one of them.
func TestLiveIPv6ExtensionHeaders(t *testing.T) {
	const req = "GET /ext HTTP/1.1\r\nHost: x\r\n\r\n"
	const resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	c := ip6Conn{netip.MustParseAddrPort("[fd00:79::1]:40000"), netip.MustParseAddrPort("[fd00:79::2]:18183")}
	got := liveExchange(t, "fd00:79::1", "fd00:79::2", 18183, func(in *injector) {
		frames := [][]byte{
			c.ip6ExtFrame(t, "dst", true, 100, 0, "S", ""),
			c.ip6ExtFrame(t, "dst", false, 500, 101, "SA", ""),
			c.ip6ExtFrame(t, "dst", true, 101, 501, "A", ""),
		}
		frames = append(frames, fragmentAfterDst(c.ip6ExtFrame(t, "dst", true, 101, 501, "A", req), 9)...)
		frames = append(frames, c.ip6ExtFrame(t, "dst", false, 501, 101+uint32(len(req)), "A", resp))
		for _, fr := range frames {
			in.write(t, fr)
		}
	})
	if len(got) != 2 || string(got[0].Raw) != req || string(got[1].Raw) != resp || got[0].ID != got[1].ID {
		var raws []string
		for _, m := range got {
			raws = append(raws, string(m.Raw))
		}
		t.Errorf("live capture: %q, want the request and its response", raws)
	}
}
