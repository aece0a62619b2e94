//go:build linux

package capture

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replayctl/replayctl/message"
)

// injector writes Ethernet frames onto an interface with an AF_PACKET
// socket: the kernel hands them to packet sockets as received frames. The
// fixtures' addresses are not local, so the IP stack drops them (no RST).
type injector struct{ fd int }

func newInjector(t *testing.T, iface string) *injector {
	t.Helper()
	ni, err := net.InterfaceByName(iface)
	if err != nil {
		t.Fatal(err)
	}
	proto := int(htons(syscall.ETH_P_ALL))
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto)
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v (the live capture tests need CAP_NET_RAW: run them as root, as make test and CI do)", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ni.Index}); err != nil {
		syscall.Close(fd)
		t.Fatal(err)
	}
	in := &injector{fd}
	t.Cleanup(func() { syscall.Close(in.fd) })
	return in
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (in *injector) write(t *testing.T, frame []byte) {
	t.Helper()
	if _, err := syscall.Write(in.fd, frame); err != nil {
		t.Fatalf("writing a frame: %v", err)
	}
}

// msgKey describes a message without what differs between a file and a
// live capture (capture times, random IDs).
func msgKey(m *message.Message) string {
	return fmt.Sprintf("%v %v→%v trunc=%v %q", m.Kind, m.Src, m.Dst, m.Truncated, m.Raw)
}

// pairing lists, for each response, the key of the request with its ID.
func pairing(msgs []*message.Message) []string {
	reqs := map[string]string{}
	for _, m := range msgs {
		if m.Kind == message.Request {
			reqs[m.ID] = msgKey(m)
		}
	}
	var out []string
	for _, m := range msgs {
		if m.Kind == message.Response {
			out = append(out, msgKey(m)+" answers "+reqs[m.ID])
		}
	}
	slices.Sort(out)
	return out
}

// TestLiveSameAsFile writes the frames of the synthetic fixtures onto lo
// with an AF_PACKET socket while a live capture runs: it gives the same
// messages, paired the same way, with the same counters, as reading the
// files (holes, mid-stream starts, lost responses, reordering, RST, late
// retransmissions, lenient framing, and tunnels through the kernel filter).
func TestLiveSameAsFile(t *testing.T) {
	names := []string{"hole-length", "hole-chunk", "midstream-binary", "lost-response", "reorder", "rst-cut", "fin-retrans", "lenient",
		"vxlan", "geneve", "gre", "erspan1", "erspan2", "erspan3"}
	// The fixtures' server port is not a common one and Hosts keeps out
	// other traffic on it; the frames injected go to addresses no one
	// else captures.
	cfg := Config{Ports: []uint16{18180}, Hosts: []netip.Addr{netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.77.0.2")}, Responses: true}
	var want []*message.Message
	wantSt := Stats{}
	var frames [][]byte
	for _, n := range names {
		path := filepath.Join("testdata", "synth-"+n+".pcap")
		st, err := ReadFile(context.Background(), path, cfg, func(m *message.Message) error { want = append(want, m); return nil })
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range st {
			wantSt[k] += v
		}
		frames = append(frames, readFrames(t, path)...)
	}
	in := newInjector(t, "lo")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []*message.Message
	probes := 0
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		lcfg := LiveConfig{Config: cfg}
		lcfg.OrderWindow = 20 * time.Millisecond
		st, err := Live(ctx, "lo", lcfg, func(m *message.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if m.Dst.Addr().String() == "10.77.0.2" || m.Src.Addr().String() == "10.77.0.2" {
				probes++
				return nil
			}
			got = append(got, m)
			return nil
		})
		done <- result{st, err}
	}()
	// Wait for the capture: inject probe requests (to another server
	// address) until one is seen.
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
		f := newFlow(t, linkEthernet, fmt.Sprintf("10.77.0.1:%d", 20000+i), "10.77.0.2:18180")
		for _, s := range append(handshake(), seg{true, 0, "GET /probe HTTP/1.1\r\n\r\n", "A"}) {
			data, _ := f.packet(s)
			in.write(t, data)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, fr := range frames {
		in.write(t, fr)
		if i%64 == 63 {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		// Some responses only come out when the capture ends (streams
		// never closed): wait for the others, then stop.
		if n >= len(want)-4 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	mu.Lock()
	defer mu.Unlock()
	keys := func(ms []*message.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, msgKey(m))
		}
		slices.Sort(out)
		return out
	}
	if g, w := keys(got), keys(want); !slices.Equal(g, w) {
		t.Errorf("live capture: %d messages, file: %d\n got %s\nwant %s", len(g), len(w), strings.Join(g, "\n    "), strings.Join(w, "\n    "))
	}
	if g, w := pairing(got), pairing(want); !slices.Equal(g, w) {
		t.Errorf("pairing differs:\n got %s\nwant %s", strings.Join(g, "\n    "), strings.Join(w, "\n    "))
	}
	// Each probe connection adds a stream and a request without a
	// response.
	for _, k := range slices.Sorted(maps.Keys(wantSt)) {
		switch k {
		case "packets", "bytes", "streams", "requests", "unanswered-requests", "packets-ignored", "kernel-drops", "streams-active":
			continue
		}
		if res.st[k] != wantSt[k] {
			t.Errorf("stats[%s] = %d live, %d from the files", k, res.st[k], wantSt[k])
		}
	}
	if res.st["requests"]-int64(probes) != wantSt["requests"] || res.st["unanswered-requests"]-int64(probes) != wantSt["unanswered-requests"] || res.st["kernel-drops"] != 0 {
		t.Errorf("live stats %v, file stats %v, %d probes", res.st, wantSt, probes)
	}
}
