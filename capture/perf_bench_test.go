package capture

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// Keep-alive traffic like wrk's against a small Go server: a GET, a
// response, a bare ACK per exchange.
const (
	kaReq  = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
	kaResp = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\nDate: Thu, 26 Nov 2026 02:23:00 GMT\r\n\r\nok\n"
)

type pkt struct {
	data []byte
	ci   gopacket.CaptureInfo
}

// keepAlivePackets returns the packets of conns keep-alive connections
// carrying perConn exchanges each, interleaved, 5 µs apart starting at t0.
func keepAlivePackets(tb testing.TB, conns, perConn int, t0 time.Time) []pkt {
	t := &testing.T{}
	flows := make([]*flow, conns)
	var out []pkt
	ts := t0
	add := func(f *flow, s seg) {
		data, ci := f.packet(s)
		ts = ts.Add(5 * time.Microsecond)
		ci.Timestamp = ts
		out = append(out, pkt{data, ci})
	}
	for i := range flows {
		flows[i] = newFlow(t, linkEthernet, fmt.Sprintf("127.0.0.1:%d", 40000+i), "127.0.0.1:8080")
		for _, s := range handshake() {
			add(flows[i], s)
		}
	}
	for n := range perConn {
		for _, f := range flows {
			add(f, seg{true, uint32(n * len(kaReq)), kaReq, "A"})
			add(f, seg{false, uint32(n * len(kaResp)), kaResp, "A"})
			add(f, seg{true, uint32((n + 1) * len(kaReq)), "", "A"})
		}
	}
	if t.Failed() {
		tb.Fatal("building packets failed")
	}
	return out
}

// BenchmarkAssemblerKeepAlive decodes 32 keep-alive connections carrying
// 16 000 request/response exchanges; the consumer drops each message.
func BenchmarkAssemblerKeepAlive(b *testing.B) {
	const conns, perConn = 32, 500
	pkts := keepAlivePackets(b, conns, perConn, time.Unix(1_700_000_000, 0))
	var bytes int64
	for _, p := range pkts {
		bytes += int64(len(p.data))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	msgs := 0
	for b.Loop() {
		a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(*message.Message) error { msgs++; return nil })
		for _, p := range pkts {
			if err := a.Decode(p.data, p.ci, layers.LinkTypeEthernet); err != nil {
				b.Fatal(err)
			}
		}
		if err := a.Close(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms1)
	if msgs != b.N*2*conns*perConn {
		b.Fatalf("%d messages, want %d", msgs, b.N*2*conns*perConn)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(msgs), "ns/msg")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(msgs), "allocs/msg")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(msgs), "B/msg")
}

// TestKeepAliveBounded runs keep-alive traffic through an Assembler whose
// order window never ends: the held bytes stay within their cap, the
// splitters' scratch buffers are all given back between messages, and
// every message comes out once, sorted by time wherever it was held.
func TestKeepAliveBounded(t *testing.T) {
	const conns, perConn, heldCap = 8, 300, 16 << 10
	pkts := keepAlivePackets(t, conns, perConn, time.Unix(1_700_000_000, 0))
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true, OrderWindow: time.Hour}, func(m *message.Message) error {
		msgs = append(msgs, m)
		return nil
	})
	a.heldCap = heldCap
	maxHeldSeen := int64(0)
	for i, p := range pkts {
		if err := a.Decode(p.data, p.ci, layers.LinkTypeEthernet); err != nil {
			t.Fatal(err)
		}
		maxHeldSeen = max(maxHeldSeen, a.heldBytes)
		if i%3 == 2 && a.total != 0 {
			t.Fatalf("packet %d: %d bytes still buffered between messages", i, a.total)
		}
	}
	if maxHeldSeen > heldCap || maxHeldSeen < heldCap-int64(len(kaResp)) {
		t.Errorf("held up to %d bytes, cap %d", maxHeldSeen, heldCap)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2*conns*perConn || a.heldBytes != 0 || a.order.len() != 0 {
		t.Fatalf("%d messages, %d bytes and %d messages still held", len(msgs), a.heldBytes, a.order.len())
	}
	for i, m := range msgs {
		if i > 0 && m.Time < msgs[i-1].Time {
			t.Fatalf("message %d out of time order", i)
		}
		want := kaReq
		if m.Kind == message.Response {
			want = kaResp
		}
		if string(m.Raw) != want || cap(m.Raw) > len(want)+16 {
			t.Fatalf("message %d: %q (cap %d)", i, m.Raw, cap(m.Raw))
		}
	}
}
