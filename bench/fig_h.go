package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// figH: HTTP/2. Replay throughput over h2c next to h2load on the same Go
// h2c server, and capture CPU per message of HTTP/2 next to HTTP/1.x for
// the same requests and responses read from pcap files.
func figH(ctx context.Context, e *env) ([]Row, Note, error) {
	var note Note
	n := e.scale(100_000, 10_000)
	const conns, streams = 4, 16 // h2load -c 4 -m 16; replay workers 64, max-streams 16

	var served atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, note, err
	}
	srv := &http.Server{Handler: h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "3")
		_, _ = w.Write(okBody)
	}), &http2.Server{MaxConcurrentStreams: 250})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String()

	h2l, cmdline, err := e.h2load(ctx, url+"/", n, conns, streams)
	if err != nil {
		return nil, note, err
	}

	gor := filepath.Join(e.tmp, "f-requests.gor")
	if err := writeH2Gor(gor, n); err != nil {
		return nil, note, err
	}
	report := filepath.Join(e.tmp, "f-replay.json")
	scn, err := e.writeScenario("f-replay", fmt.Sprintf(`version: 1
name: bench-h2
targets:
  local: {url: "%s", timeout: 5s}
jobs:
  replay:
    source: {gor: {path: %q}}
    speed: max
    sink: {http: {target: local, workers: %d, protocol: h2, max-streams: %d}}
    report: {json: %q}
`, url, gor, conns*streams, streams, report))
	if err != nil {
		return nil, note, err
	}
	before := served.Load()
	profile := filepath.Join(e.tmp, "h-cpu.prof")
	run, err := e.replayctl(ctx, e.dur(3*time.Minute, time.Minute), "run", scn, "--progress", "never", "--cpuprofile", profile)
	if err != nil {
		return nil, note, err
	}
	var rep replayReport
	if err := readJSON(report, &rep); err != nil {
		return nil, note, err
	}
	row := ratioRow("h", fmt.Sprintf("replay %s HTTP/2 GETs over h2c, speed max, %d streams on %d connections (req/s)", num(float64(n)), conns*streams, conns),
		rep.Rate.Achieved, h2l, "req/s", 0.5)
	row.Ref = "h2load " + row.Ref
	if rep.Requests.Errors > 0 || rep.Requests.Sent != int64(n) {
		row.Verdict = NotMet
	}
	rows := []Row{row}
	note.Lines = []string{
		fmt.Sprintf("Target: a Go h2c server (net/http + x/net/http2/h2c) in the harness process on %s answering `200 ok`.", url),
		fmt.Sprintf("Reference: `%s` → %s req/s.", cmdline, num(h2l)),
		fmt.Sprintf("replayctl: `sink: {http: {target: local, workers: %d, protocol: h2, max-streams: %d}}`, a .gor file of %s requests in h2text's form "+
			"(`GET /api/… HTTP/2.0` + 8 header fields); report: sent %d, ok %d, errors %d, achieved %s req/s, p50 %.3f ms, p99 %.3f ms; server counted %d; connections opened %d; wall %s, CPU %s.",
			conns*streams, streams, num(float64(n)), rep.Requests.Sent, rep.Requests.OK, rep.Requests.Errors, num(rep.Rate.Achieved), rep.Latency.P50, rep.Latency.P99,
			served.Load()-before, rep.Counters["sink.h2.connections"]+rep.Counters["sink.connections"], run.Elapsed.Round(10*time.Millisecond), run.CPU.Round(10*time.Millisecond)),
		"Flame graph of the replay (CPU profile, `go tool pprof -top`): " + e.flameSummary(ctx, profile, 8),
	}

	// Capture CPU per message: the same requests and responses as HTTP/1.1
	// and as HTTP/2 streams, in pcap files read by `replayctl run`.
	pairs := e.scale(50_000, 5_000)
	var perMsg [2]float64
	for i, proto := range []string{"h1", "h2"} {
		pcap := filepath.Join(e.tmp, "f-"+proto+".pcap")
		if err := writeCapturePcap(pcap, proto == "h2", pairs); err != nil {
			return rows, note, err
		}
		rrep := filepath.Join(e.tmp, "f-capture-"+proto+".json")
		scn, err := e.writeScenario("f-capture-"+proto, fmt.Sprintf(`version: 1
name: bench-capture-%s
jobs:
  record:
    source: {pcap: {path: %q, ports: [8080], responses: true}}
    redact: {defaults: false}
    sink: {gor: {path: /dev/null}}
    report: {json: %q}
`, proto, pcap, rrep))
		if err != nil {
			return rows, note, err
		}
		best := time.Duration(0)
		var rr recordReport
		for range 3 { // the best of three: the machine is shared
			run, err := e.replayctl(ctx, e.dur(3*time.Minute, time.Minute), "run", scn, "--progress", "never")
			if err != nil {
				return rows, note, err
			}
			if best == 0 || run.CPU < best {
				best = run.CPU
			}
			if err := readJSON(rrep, &rr); err != nil {
				return rows, note, err
			}
		}
		if rr.Requests != int64(pairs) || rr.Responses != int64(pairs) {
			return rows, note, fmt.Errorf("capture %s: %d requests, %d responses, want %d each", proto, rr.Requests, rr.Responses, pairs)
		}
		perMsg[i] = float64(best.Microseconds()) / float64(2*pairs)
		note.Lines = append(note.Lines, fmt.Sprintf("capture %s: %s request/response pairs on %d connections from a pcap file, process CPU (best of 3, start-up included) %s → %.2f µs per message.",
			proto, num(float64(pairs)), pairs/100, best.Round(time.Millisecond), perMsg[i]))
	}
	crow := Row{Fig: "h", What: "capture CPU per message from pcap, HTTP/2 (h2c) vs the same traffic as HTTP/1.1 (µs)",
		Ours: fmt.Sprintf("%.2f µs", perMsg[1]), Ref: fmt.Sprintf("HTTP/1.1 %.2f µs", perMsg[0])}
	if perMsg[0] > 0 {
		crow.Ratio = fmt.Sprintf("%.2f× (goal ≤ 3×)", perMsg[1]/perMsg[0])
		crow.Verdict = verdict(perMsg[1] <= 3*perMsg[0])
	}
	rows = append(rows, crow)
	note.Lines = append(note.Lines, "Both pcaps carry the same 100 request/response exchanges per connection (GET with 8 header fields; `200` with 2 fields and a 3-byte body); the HTTP/2 one as h2c streams with HPACK (x/net's encoder, dynamic table on), one stream after the other.")
	return rows, note, nil
}

var h2loadRate = regexp.MustCompile(`finished in [0-9.]+m?s, ([0-9.]+) req/s`)

// h2load runs nghttp2's load generator over h2c (prior knowledge).
func (e *env) h2load(ctx context.Context, url string, n, conns, streams int) (float64, string, error) {
	args := []string{"-n", strconv.Itoa(n), "-c", strconv.Itoa(conns), "-m", strconv.Itoa(streams), url}
	cmdline := "h2load " + strings.Join(args, " ")
	cmd := exec.Command("h2load", args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := e.procs.start(cmd); err != nil {
		return 0, cmdline, err
	}
	done := make(chan error, 1)
	go func() { done <- e.procs.wait(cmd) }()
	select {
	case err := <-done:
		if err != nil {
			return 0, cmdline, fmt.Errorf("%s: %w\n%s", cmdline, err, tail(out.String(), 10))
		}
	case <-ctx.Done():
		_ = e.procs.stop(cmd, syscall.SIGKILL, time.Second)
		return 0, cmdline, fmt.Errorf("%s: %w", cmdline, ctx.Err())
	}
	m := h2loadRate.FindStringSubmatch(out.String())
	if m == nil {
		return 0, cmdline, fmt.Errorf("%s: no req/s in its output:\n%s", cmdline, tail(out.String(), 10))
	}
	rate, _ := strconv.ParseFloat(m[1], 64)
	return rate, cmdline, nil
}

// h2Request is request i in h2text's form.
func h2Request(i int) []byte {
	b := make([]byte, 0, 400)
	b = append(b, "GET "...)
	p := paths[i%len(paths)]
	b = append(b, p...)
	b = strconv.AppendInt(b, int64(i%10007), 10)
	b = append(b, " HTTP/2.0\r\nHost: shop.example.com\r\n"...)
	for _, f := range benchFields {
		b = append(b, f.Name...)
		b = append(b, ": "...)
		b = append(b, f.Value...)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

var benchFields = []hpack.HeaderField{
	{Name: "user-agent", Value: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"},
	{Name: "accept", Value: "application/json, text/plain, */*"},
	{Name: "accept-language", Value: "en-US,en;q=0.9,fr;q=0.8"},
	{Name: "accept-encoding", Value: "gzip, deflate, br"},
	{Name: "referer", Value: "https://shop.example.com/catalog?category=running"},
	{Name: "x-request-id", Value: "5f1c9a0e7b3d4c2a9e8f7a6b"},
	{Name: "cookie", Value: "session=5f1c9a0e7b3d4c2a"},
	{Name: "cookie", Value: "theme=dark"},
}

func writeH2Gor(path string, n int) error {
	s, err := gorsink.Create(path)
	if err != nil {
		return err
	}
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UnixNano()
	for i := range n {
		m := &message.Message{Kind: message.Request, ID: message.NewID(), ConnID: "c" + strconv.Itoa(i%100), Time: t0 + int64(i)*int64(100*time.Microsecond), Raw: h2Request(i)}
		if err := s.Write(ctx, m); err != nil {
			_ = s.Close(ctx)
			return err
		}
	}
	return s.Close(ctx)
}

// pcapConn writes the packets of one TCP connection.
type pcapConn struct {
	w          *pcapgo.Writer
	cport      uint16
	cseq, sseq uint32
	ts         time.Time
}

func (c *pcapConn) packet(fromClient bool, flags string, payload []byte) error {
	src, dst := net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)
	sp, dp := c.cport, uint16(8080)
	seq, ack := c.cseq, c.sseq
	if !fromClient {
		src, dst, sp, dp, seq, ack = dst, src, dp, sp, c.sseq, c.cseq
	}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(sp), DstPort: layers.TCPPort(dp), Seq: seq, Ack: ack, ACK: flags != "S", SYN: strings.Contains(flags, "S"), FIN: strings.Contains(flags, "F"), Window: 65535}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	_ = tcp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(payload)); err != nil {
		return err
	}
	c.ts = c.ts.Add(20 * time.Microsecond)
	adv := uint32(len(payload))
	if tcp.SYN || tcp.FIN {
		adv++
	}
	if fromClient {
		c.cseq += adv
	} else {
		c.sseq += adv
	}
	return c.w.WritePacket(gopacket.CaptureInfo{Timestamp: c.ts, CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}, buf.Bytes())
}

// writeCapturePcap writes pairs request/response exchanges, 100 per
// connection, as HTTP/1.1 or as HTTP/2 streams.
func writeCapturePcap(path string, h2 bool, pairs int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		return err
	}
	ts := time.Unix(1_700_000_000, 0)
	for c := 0; c*100 < pairs; c++ {
		pc := &pcapConn{w: w, cport: uint16(20000 + c%40000), cseq: 1000, sseq: 5000, ts: ts}
		if err := pc.packet(true, "S", nil); err != nil {
			return err
		}
		pc.sseq--
		if err := pc.packet(false, "S", nil); err != nil { // SYN-ACK
			return err
		}
		var cb, sb bytes.Buffer
		cfr, sfr := http2.NewFramer(&cb, nil), http2.NewFramer(&sb, nil)
		var chb, shb bytes.Buffer
		cenc, senc := hpack.NewEncoder(&chb), hpack.NewEncoder(&shb)
		if h2 {
			cb.WriteString(http2.ClientPreface)
			_ = cfr.WriteSettings()
			_ = sfr.WriteSettings()
			if err := pc.packet(true, "A", cb.Bytes()); err != nil {
				return err
			}
			if err := pc.packet(false, "A", sb.Bytes()); err != nil {
				return err
			}
		}
		for k := 0; k < 100 && c*100+k < pairs; k++ {
			i := c*100 + k
			cb.Reset()
			sb.Reset()
			if h2 {
				chb.Reset()
				path := string(bytes.Fields(h2Request(i))[1])
				for _, hf := range append([]hpack.HeaderField{{Name: ":method", Value: "GET"}, {Name: ":scheme", Value: "http"}, {Name: ":path", Value: path}, {Name: ":authority", Value: "shop.example.com"}}, benchFields...) {
					_ = cenc.WriteField(hf)
				}
				id := uint32(2*k + 1)
				_ = cfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chb.Bytes(), EndStream: true, EndHeaders: true})
				shb.Reset()
				for _, hf := range []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "text/plain"}, {Name: "content-length", Value: "3"}} {
					_ = senc.WriteField(hf)
				}
				_ = sfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: shb.Bytes(), EndHeaders: true})
				_ = sfr.WriteData(id, true, okBody)
			} else {
				cb.Write(request(i, "5f1c9a0e7b3d4c2a9e8f7a6b"))
				sb.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n")
			}
			if err := pc.packet(true, "A", cb.Bytes()); err != nil {
				return err
			}
			if err := pc.packet(false, "A", sb.Bytes()); err != nil {
				return err
			}
		}
		if err := pc.packet(true, "FA", nil); err != nil {
			return err
		}
		if err := pc.packet(false, "FA", nil); err != nil {
			return err
		}
		ts = pc.ts
	}
	return nil
}
