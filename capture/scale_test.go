package capture

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// The first halves of the requests the scale test leaves open, and what
// completes them: a GET whose header block lacks its final CRLF, and a
// POST with 29 of its 64 body bytes.
const (
	scaleGET       = "GET /items?id=12345 HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: load/1.0\r\nAccept: */*\r\n"
	scaleGETRest   = "\r\n"
	scalePOST      = "POST /orders HTTP/1.1\r\nHost: shop.example\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n{\"item\":\"0123456789\",\"qty\":3,"
	scalePOSTRest  = "\"note\":\"abcdefghijklmnopqrstuvwx\"} "
	scaleResp      = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	scaleConns     = 50_000
	scaleIdle      = time.Minute
	scalePacketGap = 5 * time.Microsecond
)

// scaleTraffic drives many synthetic connections, one packet at a time,
// through an Assembler, and checks every message it emits. It builds the
// packets like flow.packet does, reusing its buffer and layers: half the
// time of the test went into building packets.
type scaleTraffic struct {
	t    *testing.T
	a    *Assembler
	ts   time.Time
	reqs map[string]string // ConnID → ID of the request awaiting its response
	got  [2]int            // requests, responses

	buf                  gopacket.SerializeBuffer
	eth                  layers.Ethernet
	ip                   layers.IPv4
	tcp                  layers.TCP
	srcIP, dstIP         [4]byte
	clientISN, serverISN uint32
}

func newScaleTraffic(t *testing.T, cfg Config) *scaleTraffic {
	s := &scaleTraffic{t: t, ts: time.Unix(1_700_000_000, 0), reqs: map[string]string{},
		buf:       gopacket.NewSerializeBuffer(),
		eth:       layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4},
		clientISN: 1000, serverISN: 5000}
	cfg.Ports, cfg.Responses, cfg.IdleTimeout = []uint16{8080}, true, scaleIdle
	s.a = NewAssembler(cfg, s.emit)
	return s
}

func (s *scaleTraffic) emit(m *message.Message) error {
	switch {
	case m.Kind == message.Request && (string(m.Raw) == scaleGET+scaleGETRest || string(m.Raw) == scalePOST+scalePOSTRest):
		if _, dup := s.reqs[m.ConnID]; dup {
			return fmt.Errorf("second request on %s", m.ConnID)
		}
		s.reqs[m.ConnID] = m.ID
		s.got[0]++
	case m.Kind == message.Response && string(m.Raw) == scaleResp:
		if id, ok := s.reqs[m.ConnID]; !ok || id != m.ID || m.Latency <= 0 {
			return fmt.Errorf("response on %s: ID %q latency %d, request ID %q", m.ConnID, m.ID, m.Latency, id)
		}
		delete(s.reqs, m.ConnID)
		s.got[1]++
	case m.Kind == message.Request:
		return fmt.Errorf("unexpected request %q", m.Raw)
	default:
		return fmt.Errorf("unexpected response %q", m.Raw)
	}
	return nil
}

// endpoint is one end of a synthetic IPv4 TCP connection.
type endpoint struct {
	ip   [4]byte
	port layers.TCPPort
}

var scaleServer = endpoint{[4]byte{10, 9, 9, 9}, 8080}

// send feeds one packet of connection i of a round: each connection has
// its own client IPv4 address, each round its own range of them. off is
// the byte offset of data in its direction's stream; flags are any of
// "SAP".
func (s *scaleTraffic) send(round, i int, fromClient bool, off uint32, flags string, data []byte) {
	client := endpoint{[4]byte{10, byte(round), byte(i >> 8), byte(i)}, 40000}
	if fromClient {
		s.decode(client, scaleServer, s.clientISN, s.serverISN+1, off, flags, data)
	} else {
		// The server acknowledges the whole request it answers.
		first, rest := halves(i)
		ack := s.clientISN + 1
		if flags == "A" {
			ack += uint32(len(first) + len(rest))
		}
		s.decode(scaleServer, client, s.serverISN, ack, off, flags, data)
	}
}

// decode builds one packet from src to dst, whose direction started at
// sequence number isn, and feeds it; the clock advances by scalePacketGap.
func (s *scaleTraffic) decode(src, dst endpoint, isn, ack, off uint32, flags string, data []byte) {
	s.srcIP, s.dstIP = src.ip, dst.ip
	s.ip = layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: s.srcIP[:], DstIP: s.dstIP[:]}
	s.tcp = layers.TCP{SrcPort: src.port, DstPort: dst.port, Seq: isn + 1 + off, Window: 65535}
	for _, c := range flags {
		switch c {
		case 'S':
			s.tcp.SYN, s.tcp.Seq = true, isn
		case 'A':
			s.tcp.ACK, s.tcp.Ack = true, ack
		case 'P':
			s.tcp.PSH = true
		}
	}
	s.tcp.SetNetworkLayerForChecksum(&s.ip)
	err := gopacket.SerializeLayers(s.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&s.eth, &s.ip, &s.tcp, gopacket.Payload(data))
	if err != nil {
		s.t.Fatal(err)
	}
	s.ts = s.ts.Add(scalePacketGap)
	pkt := s.buf.Bytes()
	ci := gopacket.CaptureInfo{Timestamp: s.ts, CaptureLength: len(pkt), Length: len(pkt)}
	if err := s.a.Decode(pkt, ci, layers.LinkTypeEthernet); err != nil {
		s.t.Fatal(err)
	}
}

// halves returns the half request connection i sends first and what
// completes it: POSTs on even connections, GETs on odd ones.
func halves(i int) (first, rest []byte) {
	if i%2 == 0 {
		return scalePOSTBytes[0], scalePOSTBytes[1]
	}
	return scaleGETBytes[0], scaleGETBytes[1]
}

var (
	scaleGETBytes  = [2][]byte{[]byte(scaleGET), []byte(scaleGETRest)}
	scalePOSTBytes = [2][]byte{[]byte(scalePOST), []byte(scalePOSTRest)}
	scaleRespBytes = []byte(scaleResp)
)

// completed says whether connection i gets the rest of its request and a
// response; the others stay open until they expire. Half of either kind.
func completed(i int) bool { return i%4 < 2 }

// open sends the handshake and the first half of the request of n
// connections.
func (s *scaleTraffic) open(round, n int) {
	for i := range n {
		s.send(round, i, true, 0, "S", nil)
		s.send(round, i, false, 0, "SA", nil)
		s.send(round, i, true, 0, "A", nil)
		first, _ := halves(i)
		s.send(round, i, true, 0, "A", first)
	}
}

// complete sends the rest of the request and the response on the
// completed connections among n; the connections stay open (keep-alive).
func (s *scaleTraffic) complete(round, n int) {
	for i := range n {
		if !completed(i) {
			continue
		}
		first, rest := halves(i)
		s.send(round, i, true, uint32(len(first)), "A", rest)
		s.send(round, i, false, 0, "A", scaleRespBytes)
	}
}

// expire flushes with a time past IdleTimeout: every connection is closed.
func (s *scaleTraffic) expire() {
	s.ts = s.ts.Add(scaleIdle + time.Second)
	if err := s.a.Flush(s.ts); err != nil {
		s.t.Fatal(err)
	}
}

// heapInUse returns the bytes of live heap objects after a full collection
// (twice, so sync.Pool's victim cache is emptied too).
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

const mib = 1 << 20

// TestFiftyThousandConnections opens 50 000 TCP connections to the server
// port, each with half a request buffered (a GET without the CRLF that ends
// its headers, a POST with part of its body), completes half of them with
// their responses and lets the others expire, then does it again with new
// connections. Counters are exact. The heap stays under a bound per open
// connection while they are open; after expiry what remains is gopacket's
// StreamPool, which keeps its connection structs and its map to reuse them:
// the second round costs nothing more, and once the Assembler is dropped
// the heap is back where it started. With MaxStreams 10 000, 40 000
// connections are counted as streams-dropped and the heap is far lower.
//
// Measured (amd64, Go 1.26.8), heap growth from the start:
//
//	                   open                          after expiry
//	50 000 tracked     171 MiB (3.4 MiB per 1000)    38 MiB
//	MaxStreams 10 000   44 MiB (4.4 MiB per 1000)    17 MiB
//
// Per open connection: the splitter's 2 KiB scratch buffer for the message
// in progress (counted against MaxBufferedBytes, default 256 MiB: about
// 128 000 open messages), ~610 bytes of conn, ~600 bytes of gopacket
// connection (its pool grows by doubling: 64 512 for 50 000) and ~140
// bytes of map. With MaxStreams the set of dropped connections (40 000
// keys) adds ~6 MiB. The bounds below have ~20% headroom. The test takes
// ~1.1 s (250 000 packets per round), ~12 s under -race.
func TestFiftyThousandConnections(t *testing.T) {
	tests := []struct {
		name       string
		maxStreams int
		tracked    int
		rounds     int
		// Bounds of the heap growth from the start: while open, per 1000
		// connections tracked; after expiry, in total.
		openPer1000, after int64
	}{
		{name: "50000 tracked", tracked: scaleConns, rounds: 2, openPer1000: 4 * mib, after: 48 * mib},
		{name: "MaxStreams 10000", maxStreams: 10_000, tracked: 10_000, rounds: 1, openPer1000: 11 * mib / 2, after: 24 * mib},
	}
	var openAll int64 // heap with 50 000 connections open, for the second case
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			goroutines := runtime.NumGoroutine()
			base := heapInUse()
			s := newScaleTraffic(t, Config{MaxStreams: tt.maxStreams})
			var afterFirst int64
			for round := 1; round <= tt.rounds; round++ {
				s.open(round, scaleConns)
				st := s.a.Stats()
				open := heapInUse() - base
				t.Logf("round %d: %d connections open: heap +%.1f MiB (%.2f MiB per 1000 tracked), %d bytes buffered",
					round, st["streams-active"], float64(open)/mib, float64(open)/mib*1000/float64(tt.tracked), s.a.total)
				if st["streams-active"] != int64(tt.tracked) || s.a.total != int64(tt.tracked*scratchSize) {
					t.Fatalf("round %d: %d streams active, %d bytes buffered; want %d, %d",
						round, st["streams-active"], s.a.total, tt.tracked, tt.tracked*scratchSize)
				}
				if limit := int64(tt.tracked/1000) * tt.openPer1000; open > limit {
					t.Errorf("round %d: heap grew by %d MiB with %d connections open, want < %d MiB",
						round, open/mib, tt.tracked, limit/mib)
				}
				if tt.tracked == scaleConns {
					openAll = open
				} else if openAll > 0 && open > openAll/3 {
					t.Errorf("heap +%d MiB with %d tracked, +%d MiB with all %d: MaxStreams saves too little",
						open/mib, tt.tracked, openAll/mib, scaleConns)
				}

				s.complete(round, scaleConns)
				s.expire()
				s.reqs = map[string]string{} // empty; drop the old map's buckets
				after := heapInUse() - base
				t.Logf("round %d: all expired: heap +%.1f MiB", round, float64(after)/mib)
				if after > tt.after {
					t.Errorf("round %d: heap +%d MiB after expiry, want < %d MiB", round, after/mib, tt.after/mib)
				}
				if round == 1 {
					afterFirst = after
				} else if after > afterFirst+4*mib {
					t.Errorf("heap +%d MiB after the second round, %d after the first: not reused", after/mib, afterFirst/mib)
				}

				done := round * tt.tracked / 2 // completed(i) holds for half of any multiple of 4
				want := map[string]int64{
					"streams": int64(round * tt.tracked), "streams-active": 0,
					"streams-dropped": int64(round * (scaleConns - tt.tracked)),
					"requests":        int64(done), "responses": int64(done), "incomplete": int64(done),
					"unpaired-responses": 0, "unparsable": 0, "gaps": 0, "buffer-overflow": 0,
					"decode-errors": 0, "packets-ignored": 0, "truncated": 0,
				}
				st = s.a.Stats()
				for k, v := range want {
					if st[k] != v {
						t.Errorf("round %d: stats[%s] = %d, want %d", round, k, st[k], v)
					}
				}
				if s.got != [2]int{done, done} || len(s.reqs) != 0 || s.a.total != 0 {
					t.Errorf("round %d: got %v messages, %d requests unanswered, %d bytes buffered", round, s.got, len(s.reqs), s.a.total)
				}
			}
			if err := s.a.Close(); err != nil {
				t.Fatal(err)
			}
			s = nil
			if end := heapInUse() - base; end > 2*mib {
				t.Errorf("heap +%.1f MiB once the Assembler is dropped", float64(end)/mib)
			}
			if n := runtime.NumGoroutine(); n > goroutines {
				t.Errorf("%d goroutines, %d before", n, goroutines)
			}
		})
	}
}

// TestGarbageFloodBounded floods Assemblers with garbage: nothing panics,
// nothing is emitted, every packet is counted where it belongs, and the
// memory held stays bounded.
func TestGarbageFloodBounded(t *testing.T) {
	t.Run("MaxStreams 10", func(t *testing.T) {
		// Garbage on 100 connections: 10 streams are tracked, the others
		// are counted as dropped, the garbage is counted.
		var msgs int
		a := NewAssembler(Config{Ports: []uint16{8080}, MaxStreams: 10, MaxBufferedBytes: 1 << 20}, func(*message.Message) error { msgs++; return nil })
		garbage := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 300)
		for i := range 100 {
			f := newFlow(t, linkEthernet, fmt.Sprintf("10.0.%d.%d:%d", i/200, i%200+1, 30000+i), "10.9.9.9:8080")
			for j := range 20 {
				data, ci := f.packet(seg{true, uint32(j * len(garbage)), string(garbage), "A"})
				if err := a.Decode(data, ci, layers.LinkTypeEthernet); err != nil {
					t.Fatal(err)
				}
			}
			if a.total > 1<<20 {
				t.Fatalf("buffered %d bytes", a.total)
			}
		}
		st := a.Stats()
		// The connections have no handshake: the garbage is taken for the
		// rest of a message whose start was not captured (incomplete).
		if st["streams"] != 10 || st["streams-dropped"] != 90 || st["streams-active"] != 10 || st["incomplete"] != 10 {
			t.Errorf("stats %v", st)
		}
		// Garbage decoded as packets of unknown link type, and truncated packets.
		a.Decode([]byte{1, 2, 3}, gopacket.CaptureInfo{}, layers.LinkTypeEthernet)
		a.Decode([]byte{1, 2, 3}, gopacket.CaptureInfo{}, 9999)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if st := a.Stats(); st["decode-errors"] != 2 || st["streams-active"] != 0 || msgs != 0 {
			t.Errorf("after close: stats %v, %d messages", st, msgs)
		}
	})

	const n = 100_000 // packets per flood; 200 000 in all
	t.Run("random bytes", func(t *testing.T) {
		// Random bytes as packets of each link type: each is a decode
		// error or ignored (not TCP to port 8080); no stream is opened.
		rng := rand.New(rand.NewPCG(1, 2))
		random := rand.NewChaCha8([32]byte{1})
		goroutines := runtime.NumGoroutine()
		base := heapInUse()
		s := newScaleTraffic(t, Config{})
		links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL2, layers.LinkTypeNull, layers.LinkTypeIPv4, layers.LinkTypeIPv6}
		pkt := make([]byte, 1514)
		var size int64
		for i := range n {
			p := pkt[:rng.IntN(len(pkt)+1)]
			_, _ = random.Read(p)
			size += int64(len(p))
			s.ts = s.ts.Add(scalePacketGap)
			if err := s.a.Decode(p, gopacket.CaptureInfo{Timestamp: s.ts, CaptureLength: len(p), Length: len(p)}, links[i%len(links)]); err != nil {
				t.Fatal(err)
			}
		}
		st := s.a.Stats()
		if grew := heapInUse() - base; grew > 2*mib {
			t.Errorf("heap +%.1f MiB after %d random packets", float64(grew)/mib, n)
		}
		if st["packets"] != n || st["bytes"] != size || st["decode-errors"]+st["packets-ignored"]+st["ip-fragments"] != n ||
			st["streams"] != 0 || st["requests"] != 0 || st["unparsable"] != 0 {
			t.Errorf("stats %v", st)
		}
		if err := s.a.Close(); err != nil {
			t.Fatal(err)
		}
		if g := runtime.NumGoroutine(); g > goroutines {
			t.Errorf("%d goroutines, %d before", g, goroutines)
		}
	})

	t.Run("random TCP payloads", func(t *testing.T) {
		// Valid TCP packets carrying 1 to 1400 random bytes, no handshake:
		// half of them each on a new 4-tuple to the server port (random
		// client port), a quarter to random other ports (ignored), a
		// quarter with random sequence numbers on the first 100 tracked
		// connections (out-of-order data gopacket buffers, within
		// MaxBufferedBytes). With MaxStreams 10 000, 10 000 streams are
		// tracked and 40 000 dropped; each tracked stream is garbage from
		// its first byte, counted as unparsable or, for a last line left
		// without its end, as incomplete when closed.
		const maxStreams, maxBuffered = 10_000, 8 << 20
		rng := rand.New(rand.NewPCG(3, 4))
		random := rand.NewChaCha8([32]byte{2})
		goroutines := runtime.NumGoroutine()
		base := heapInUse()
		s := newScaleTraffic(t, Config{MaxStreams: maxStreams, MaxBufferedBytes: maxBuffered})
		payload := make([]byte, 1400)
		var clients []endpoint // the first 100 tracked connections
		for i := range n {
			client := endpoint{[4]byte{10, byte(64 + i>>16), byte(i >> 8), byte(i)}, layers.TCPPort(1024 + rng.IntN(60000))}
			server := scaleServer
			switch i % 4 {
			case 0, 2:
				if len(clients) < 100 {
					clients = append(clients, client)
				}
			case 1:
				server.port = layers.TCPPort(9000 + rng.IntN(50000)) // never 8080
			case 3:
				client = clients[rng.IntN(len(clients))]
			}
			p := payload[:1+rng.IntN(len(payload))]
			_, _ = random.Read(p)
			s.decode(client, server, rng.Uint32(), rng.Uint32(), 0, "AP", p)
			if s.a.total > maxBuffered {
				t.Fatalf("packet %d: %d bytes buffered", i, s.a.total)
			}
		}
		st := s.a.Stats()
		grew := heapInUse() - base
		t.Logf("%d streams tracked: heap +%.1f MiB, %d bytes buffered by the splitters, %d gaps",
			st["streams-active"], float64(grew)/mib, s.a.total, st["gaps"])
		// Measured: +34 MiB: the 10 000 conns, gopacket's pool of 15 360
		// connections, its ~8 MiB of out-of-order pages (bounded by
		// MaxBufferedBytes), the set of 40 000 dropped 4-tuples, and the
		// 2 MiB the splitters buffer.
		if grew > 44*mib {
			t.Errorf("heap +%.1f MiB with %d garbage streams, want < 44 MiB", float64(grew)/mib, maxStreams)
		}
		want := map[string]int64{
			"packets": n, "packets-ignored": n / 4, "decode-errors": 0,
			"streams": maxStreams, "streams-active": maxStreams, "streams-dropped": n/2 - maxStreams,
			"requests": 0, "responses": 0,
		}
		for k, v := range want {
			if st[k] != v {
				t.Errorf("stats[%s] = %d, want %d", k, st[k], v)
			}
		}
		if err := s.a.Close(); err != nil {
			t.Fatal(err)
		}
		st = s.a.Stats()
		if st["streams-active"] != 0 || st["unparsable"] > maxStreams || st["unparsable"]+st["incomplete"] < maxStreams || s.a.total != 0 {
			t.Errorf("after close: %d bytes buffered, stats %v", s.a.total, st)
		}
		t.Logf("after close: stats %v", st)
		if g := runtime.NumGoroutine(); g > goroutines {
			t.Errorf("%d goroutines, %d before", g, goroutines)
		}
	})
}
