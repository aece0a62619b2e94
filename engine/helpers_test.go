package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// received is one request a target received.
type received struct {
	Raw     []byte // exactly as it arrived
	Method  string
	Path    string // request target (path and query)
	Header  http.Header
	Body    []byte // decoded (de-chunked)
	Arrived time.Time
}

// target is a raw TCP loopback HTTP/1.1 server that records every request
// byte for byte and answers 200 with a small body.
type target struct {
	t    testing.TB
	ln   net.Listener
	mu   sync.Mutex
	reqs []received
	wg   sync.WaitGroup
}

func newTarget(t testing.TB) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("target listen: %v", err)
	}
	tg := &target{t: t, ln: ln}
	tg.wg.Add(1)
	go tg.accept()
	t.Cleanup(tg.close)
	return tg
}

func (tg *target) URL() string  { return "http://" + tg.ln.Addr().String() }
func (tg *target) Addr() string { return tg.ln.Addr().String() }

func (tg *target) close() {
	_ = tg.ln.Close()
	tg.wg.Wait()
}

func (tg *target) accept() {
	defer tg.wg.Done()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := tg.ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			tg.serve(c)
		}()
	}
}

func (tg *target) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10) // header lines up to 64 kB (a 30 kB one in h2c-prior.pcap)
	for {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		raw, err := readRawRequest(br)
		if err != nil {
			return
		}
		g := received{Raw: raw, Arrived: time.Now()}
		if r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw))); err == nil {
			g.Method, g.Path, g.Header = r.Method, r.RequestURI, r.Header
			g.Body, _ = io.ReadAll(r.Body)
		}
		tg.mu.Lock()
		tg.reqs = append(tg.reqs, g)
		tg.mu.Unlock()
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// readRawRequest reads one HTTP/1.x request (head, and a Content-Length or
// chunked body) and returns its bytes exactly as they were read.
func readRawRequest(br *bufio.Reader) ([]byte, error) {
	var raw []byte
	length, chunked := int64(0), false
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		l := strings.TrimRight(string(line), "\r\n")
		if l == "" {
			if first {
				return nil, fmt.Errorf("empty request line")
			}
			break
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || first {
			continue
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			length, _ = strconv.ParseInt(value, 10, 64)
		case "transfer-encoding":
			chunked = strings.Contains(strings.ToLower(value), "chunked")
		}
	}
	if !chunked {
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return nil, err
		}
		return append(raw, body...), nil
	}
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		raw = append(raw, line...)
		sz := strings.TrimRight(string(line), "\r\n")
		if i := strings.IndexByte(sz, ';'); i >= 0 {
			sz = sz[:i]
		}
		n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("chunk size %q: %w", sz, err)
		}
		if n == 0 {
			for { // trailer
				line, err := br.ReadSlice('\n')
				if err != nil {
					return nil, err
				}
				raw = append(raw, line...)
				if strings.TrimRight(string(line), "\r\n") == "" {
					return raw, nil
				}
			}
		}
		data := make([]byte, n+2)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		raw = append(raw, data...)
	}
}

// requests returns a copy of what the target received so far.
func (tg *target) requests() []received {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]received(nil), tg.reqs...)
}

func (tg *target) count() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return len(tg.reqs)
}

// bytesIn sums the raw bytes received.
func (tg *target) bytesIn() int {
	n := 0
	for _, g := range tg.requests() {
		n += len(g.Raw)
	}
	return n
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// t0 is the capture time of the first generated message.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// req is a recorded request for writeGor.
type req struct {
	at  time.Duration // after t0
	raw string
}

// get returns a plain GET request's bytes.
func get(path string, headers ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: shop.example\r\n", path)
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// evenly returns n GETs of /r/0.. spaced every `every`.
func evenly(n int, every time.Duration) []req {
	out := make([]req, n)
	for i := range out {
		out[i] = req{at: time.Duration(i) * every, raw: get(fmt.Sprintf("/r/%d", i))}
	}
	return out
}

// writeGor writes the requests, each with a response, to a .gor file in dir
// and returns its path.
func writeGor(t *testing.T, dir, name string, reqs []req) string {
	t.Helper()
	path := filepath.Join(dir, name)
	s, err := gorsink.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, r := range reqs {
		id := fmt.Sprintf("%024x", i+1)
		at := t0.Add(r.at).UnixNano()
		if err := s.Write(ctx, &message.Message{Kind: message.Request, ID: id, Time: at, Raw: []byte(r.raw)}); err != nil {
			t.Fatal(err)
		}
		resp := &message.Message{Kind: message.Response, ID: id, Time: at + int64(time.Millisecond), Latency: int64(time.Millisecond),
			Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")}
		if err := s.Write(ctx, resp); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return path
}

// writePcap writes one keep-alive TCP connection from 127.0.0.1:40000 to
// server carrying the requests (each answered 200) as an Ethernet pcap.
func writePcap(t *testing.T, path string, server netip.AddrPort, reqs []req) {
	t.Helper()
	writePcapWith(t, path, server, reqs, nil)
}

// writePcapWith is writePcap with the responses given (resps[i] answers
// reqs[i]; a missing one is a 200 "ok"). Segments are at most 60000 bytes.
func writePcapWith(t *testing.T, path string, server netip.AddrPort, reqs []req, resps []string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("127.0.0.1:40000")
	cseq, sseq := uint32(1000), uint32(5000)
	write := func(at time.Duration, fromClient bool, flags string, data []byte) {
		src, dst, seq, ack := client, server, cseq, sseq
		if !fromClient {
			src, dst, seq, ack = server, client, sseq, cseq
		}
		tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 65535}
		for _, c := range flags {
			switch c {
			case 'S':
				tcp.SYN = true
			case 'A':
				tcp.ACK = true
			case 'F':
				tcp.FIN = true
			}
		}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		_ = tcp.SetNetworkLayerForChecksum(ip)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, tcp, gopacket.Payload(data)); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(at), CaptureLength: len(b), Length: len(b)}, b); err != nil {
			t.Fatal(err)
		}
		n := uint32(len(data))
		if tcp.SYN || tcp.FIN {
			n++
		}
		if fromClient {
			cseq += n
		} else {
			sseq += n
		}
	}
	write(0, true, "S", nil)
	write(0, false, "SA", nil)
	write(0, true, "A", nil)
	segments := func(at time.Duration, fromClient bool, data []byte) {
		for len(data) > 0 {
			n := min(len(data), 60000)
			write(at, fromClient, "A", data[:n])
			data = data[n:]
		}
	}
	var last time.Duration
	for i, r := range reqs {
		resp := "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
		if i < len(resps) {
			resp = resps[i]
		}
		segments(r.at, true, []byte(r.raw))
		segments(r.at+time.Millisecond, false, []byte(resp))
		last = r.at + time.Millisecond
	}
	write(last+time.Millisecond, true, "FA", nil)
	write(last+time.Millisecond, false, "FA", nil)
	write(last+2*time.Millisecond, true, "A", nil)
}

// brokers are the Kafka brokers engine tests run against: the embedded one
// (Options.DataDir) and the real Kafka when REPLAYCTL_TEST_KAFKA is set.
type brokerCase struct {
	name    string
	brokers []string // nil: embedded
}

func brokerCases(t *testing.T) []brokerCase {
	t.Helper()
	cases := []brokerCase{{name: "embedded"}}
	if os.Getenv(kafkatest.EnvKafka) != "" {
		for _, b := range kafkatest.Brokers(t) {
			if b.Name != "embedded" {
				cases = append(cases, brokerCase{name: b.Name, brokers: b.Addrs})
			}
		}
	}
	return cases
}

// result is what run returns.
type result struct {
	out string // the summaries (Options.Out)
	err error
}

// run loads the scenario text as dir/scenario.yaml, compiles it with opts
// (a temporary data dir unless set) and runs it.
func run(t *testing.T, dir, yaml string, opts engine.Options) result {
	t.Helper()
	return runCtx(t, context.Background(), dir, yaml, opts)
}

func runCtx(t *testing.T, ctx context.Context, dir, yaml string, opts engine.Options) result {
	t.Helper()
	plan := compile(t, dir, yaml, &opts)
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	err := plan.Run(ctx)
	return result{out: opts.Out.(*syncBuffer).String(), err: err}
}

// compile loads and compiles; it fails the test on error.
func compile(t *testing.T, dir, yaml string, opts *engine.Options) *engine.Plan {
	t.Helper()
	s := loadScenario(t, dir, yaml)
	if opts.DataDir == "" && len(opts.Brokers) == 0 {
		opts.DataDir = filepath.Join(dir, "data")
	}
	if opts.Out == nil {
		opts.Out = &syncBuffer{}
	}
	if opts.Err == nil {
		opts.Err = &testWriter{t: t}
	}
	plan, err := engine.Compile(s, *opts)
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	return plan
}

// loadScenario loads the scenario text as dir/scenario.yaml.
func loadScenario(t *testing.T, dir, yaml string) *scenario.Scenario {
	t.Helper()
	s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: noEnv})
	if err != nil {
		t.Fatalf("load scenario: %v\n%s", err, yaml)
	}
	return s
}

func noEnv(string) (string, bool) { return "", false }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer = testutil.SyncBuffer

// testWriter sends logs to t.Log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// unique returns a name for Kafka topics and windows no other test uses.
func unique(t *testing.T, prefix string) string {
	name := strings.ToLower(strings.TrimPrefix(kafkatest.UniqueTopic(t), "replayctl-test-"))
	return prefix + "-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// readReport decodes a JSON report file.
func readReport(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("report %s: %v\n%s", path, err, data)
	}
	return m
}

// field walks a decoded JSON report: field(m, "rate", "scheduled").
func field(t *testing.T, m map[string]any, path ...string) any {
	t.Helper()
	var v any = m
	for _, k := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("report: %s is not an object (at %q)", strings.Join(path, "."), k)
		}
		if v, ok = mm[k]; !ok {
			t.Fatalf("report: no field %s (at %q); have %v", strings.Join(path, "."), k, keys(mm))
		}
	}
	return v
}

func number(t *testing.T, m map[string]any, path ...string) float64 {
	t.Helper()
	f, ok := field(t, m, path...).(float64)
	if !ok {
		t.Fatalf("report: %s = %v is not a number", strings.Join(path, "."), field(t, m, path...))
	}
	return f
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// getAll sends n GETs of prefix/0, prefix/1, … to a loopback port, one
// after the other, reading each answer, with pause after each.
func getAll(t *testing.T, port int, prefix string, n int, pause time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	for i := range n {
		resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d%s/%d", port, prefix, i))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(pause)
	}
}
