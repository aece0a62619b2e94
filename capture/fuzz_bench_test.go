package capture

import (
	"context"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// FuzzAssembler feeds arbitrary packets, as each link type: nothing panics
// and buffered memory stays within the configured cap.
func FuzzAssembler(f *testing.F) {
	fl := newFlow(&testing.T{}, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	for _, s := range append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"}) {
		data, _ := fl.packet(s)
		f.Add(data, data, uint16(1))
	}
	// Packets of the synthetic fixtures: tunnels, RSTs, holes.
	for _, name := range []string{"vxlan", "geneve", "erspan2", "erspan3", "rst-cut", "hole-chunk"} {
		fh, err := os.Open("testdata/synth-" + name + ".pcap")
		if err != nil {
			f.Fatal(err)
		}
		r, err := pcapgo.NewReader(fh)
		if err != nil {
			f.Fatal(err)
		}
		var prev []byte
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			if prev != nil && len(data) > 60 {
				f.Add(prev, data, uint16(1))
			}
			prev = data
		}
		fh.Close()
	}
	// IPv4 and IPv6 fragments, the second first.
	for _, server := range []string{"10.0.0.2:8080", "[2001:db8::2]:8080"} {
		client := "10.0.0.1:40000"
		if server[0] == '[' {
			client = "[2001:db8::1]:40000"
		}
		fl := newFlow(&testing.T{}, linkEthernet, client, server)
		data, _ := fl.packet(seg{true, 0, req1, "A"})
		frames := fragment(&testing.T{}, data, 24)
		if server[0] == '[' {
			frames = fragment6(&testing.T{}, data, 1, 24)
		}
		f.Add(frames[1], frames[0], uint16(1))
	}
	// IPv6 routing headers with a segment left (the final destination in
	// the header).
	for _, rtype := range []byte{0, 2, 4} {
		via := netip.MustParseAddr("2001:db8:5::1")
		syn := withRoutingHeader(testIP6Conn.ip6ExtFrame(&testing.T{}, "", true, 100, 0, "S", ""), rtype, via)
		data := withRoutingHeader(testIP6Conn.ip6ExtFrame(&testing.T{}, "", true, 101, 501, "A", req1), rtype, via)
		f.Add(syn, data, uint16(1))
	}
	home := withHomeAddress(testIP6Conn.ip6ExtFrame(&testing.T{}, "", true, 101, 501, "A", req1), netip.MustParseAddr("2001:db8:5::2"))
	f.Add(home, fragmentAfterExt(home, 9)[1], uint16(1))
	f.Add([]byte{0, 0, 0, 2, 0x45}, []byte{}, uint16(0))
	f.Add([]byte{0x60, 0, 0, 0}, []byte{0x45, 0}, uint16(101))
	f.Fuzz(func(t *testing.T, p1, p2 []byte, lt uint16) {
		a := NewAssembler(Config{Responses: true, MaxBufferedBytes: 1 << 20, OrderWindow: -1}, func(*message.Message) error { return nil })
		ts := time.Unix(1, 0)
		for i, p := range [][]byte{p1, p2, p1} {
			for _, l := range []layers.LinkType{layers.LinkType(lt), layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL2} {
				a.Decode(p, gopacket.CaptureInfo{Timestamp: ts.Add(time.Duration(i) * time.Millisecond)}, l)
			}
		}
		if a.total > 1<<20+maxHeader {
			t.Fatalf("buffered %d bytes", a.total)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// BenchmarkSplitter splits a stream of keep-alive requests.
func BenchmarkSplitter(b *testing.B) {
	msg := []byte("POST /api/orders?id=42 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/1.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n" +
		`{"item":"0123456789","qty":3,"note":"abcdefghijklmnopqrstuvw"}  `)
	var stream []byte
	for range 100 {
		stream = append(stream, msg...)
	}
	c := &collector{}
	s := newSplitter(c, false, 1<<20)
	b.SetBytes(int64(len(stream)))
	b.ResetTimer()
	for range b.N {
		for off := 0; off < len(stream); off += 1448 {
			s.feed(stream[off:min(off+1448, len(stream))], zeroTime{})
		}
		c.msgs = c.msgs[:0]
		c.methods = c.methods[:0]
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "messages/s")
}

// BenchmarkReadPcap reads the quickstart capture.
func BenchmarkReadPcap(b *testing.B) {
	path := "../examples/quickstart.pcap"
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	var n int
	for range b.N {
		if _, err := ReadFile(context.Background(), path, Config{Ports: []uint16{8080}, Responses: true}, func(*message.Message) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "messages/s")
}
