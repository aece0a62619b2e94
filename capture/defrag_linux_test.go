//go:build linux

package capture

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/replayctl/replayctl/message"
)

// TestLiveFragments writes a request sent in three IPv4 fragments, and its
// response, onto lo while a live capture runs: the kernel filter lets the
// fragments after the first through (they have no port to test) and the
// request is recorded whole, answered. The filter rejected them: the
// request was never whole.
func TestLiveFragments(t *testing.T) { liveFragments(t, false) }

// TestLiveFragments6 is TestLiveFragments in IPv6 fragments (a Fragment
// header): the kernel filter looked for TCP right after the IPv6 header
// and rejected every fragment, and the Assembler did not reassemble them.
func TestLiveFragments6(t *testing.T) { liveFragments(t, true) }

func liveFragments(t *testing.T, v6 bool) {
	client, server := "10.78.0.1", "10.78.0.2"
	frag := func(data []byte) [][]byte { return fragment(t, data, 24, 48) }
	if v6 {
		client, server = "fd00:78::1", "fd00:78::2"
		frag = func(data []byte) [][]byte { return fragment6(t, data, 0x6006, 24, 48) }
	}
	got := liveExchange(t, client, server, 18181, func(in *injector) {
		f := newFlow(t, linkEthernet, hostPort(client, 40000), hostPort(server, 18181))
		for i, s := range append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"}) {
			data, _ := f.packet(s)
			frames := [][]byte{data}
			if i == 3 {
				frames = frag(data)
			}
			for _, fr := range frames {
				in.write(t, fr)
			}
		}
	})
	if len(got) != 2 || string(got[0].Raw) != req1 || string(got[1].Raw) != resp1 || got[0].ID != got[1].ID {
		var raws []string
		for _, m := range got {
			raws = append(raws, string(m.Raw))
		}
		t.Errorf("live capture: %q, want the request and its response", raws)
	}
}

func hostPort(host string, port int) string {
	return netip.AddrPortFrom(netip.MustParseAddr(host), uint16(port)).String()
}

// liveExchange runs a live capture on lo of port on server, writes probe
// connections from client until it sees one (the capture is up), then
// calls exchange to write the packets under test, and returns the
// messages captured other than the probes' (up to two, or after 10 s).
func liveExchange(t *testing.T, client, server string, port uint16, exchange func(in *injector)) []*message.Message {
	t.Helper()
	in := newInjector(t, "lo")
	cfg := LiveConfig{Config: Config{Ports: []uint16{port}, Hosts: []netip.Addr{netip.MustParseAddr(server)}, Responses: true}}
	cfg.OrderWindow = 20 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []*message.Message
	probes := 0
	done := make(chan error, 1)
	go func() {
		_, err := Live(ctx, "lo", cfg, func(m *message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if m.Src.Port() >= 20000 && m.Src.Port() < 30000 {
				probes++
				return nil
			}
			got = append(got, m)
			return nil
		})
		done <- err
	}()
	for i := 0; ; i++ {
		mu.Lock()
		n := probes
		mu.Unlock()
		if n > 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the live capture never saw a probe")
		}
		f := newFlow(t, linkEthernet, hostPort(client, 20000+i), hostPort(server, int(port)))
		for _, s := range append(handshake(), seg{true, 0, "GET /probe HTTP/1.1\r\n\r\n", "A"}) {
			data, _ := f.packet(s)
			in.write(t, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	exchange(in)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 2 {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got
}
