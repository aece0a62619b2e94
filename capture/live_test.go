//go:build linux

package capture

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"

	"github.com/replayctl/replayctl/message"
)

// TestLiveLoopback captures on lo while a loopback server answers requests
// from curl, a keep-alive Go client and a pipelining client: exactly as
// many requests and responses come out, paired by ID.
func TestLiveLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "answer to %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var msgs []*message.Message
	type result struct {
		st  Stats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Live(ctx, "lo", LiveConfig{Config: Config{Ports: []uint16{port}, Responses: true, OrderWindow: 50 * time.Millisecond}}, func(m *message.Message) error {
			mu.Lock()
			msgs = append(msgs, m)
			mu.Unlock()
			return nil
		})
		done <- result{st, err}
	}()
	count := func(pred func(*message.Message) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, m := range msgs {
			if pred(m) {
				n++
			}
		}
		return n
	}
	isProbe := func(m *message.Message) bool { return bytes.Contains(m.Raw, []byte("/probe")) }
	// Wait until the capture runs: probe until a probe request is seen.
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for count(isProbe) == 0 {
		if ctx.Err() != nil {
			t.Fatal("capture never saw a probe request")
		}
		if resp, err := noKeepAlive.Get(base + "/probe"); err == nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Let the probes' responses come out, then remember what to ignore.
	time.Sleep(300 * time.Millisecond)
	mu.Lock()
	skip := len(msgs)
	mu.Unlock()

	const curlN, goN, pipeN = 4, 5, 3
	args := []string{"-s", "-o", "/dev/null"}
	for i := range curlN {
		args = append(args, fmt.Sprintf("%s/curl/%d", base, i))
	}
	if out, err := exec.CommandContext(ctx, "curl", args...).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	cl := &http.Client{Timeout: 2 * time.Second}
	for i := range goN {
		resp, err := cl.Post(fmt.Sprintf("%s/go/%d", base, i), "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i := range pipeN {
		fmt.Fprintf(&b, "GET /pipe/%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
	}
	io.WriteString(c, b.String())
	br := bufio.NewReader(c)
	for range pipeN {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c.Close()

	const want = curlN + goN + pipeN
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(msgs) - skip
		mu.Unlock()
		if n >= 2*want || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // anything extra would show up now
	cancel()
	res := <-done
	if res.err != nil {
		t.Fatalf("Live: %v", res.err)
	}
	mu.Lock()
	defer mu.Unlock()
	reqs := map[string]*message.Message{}
	var resps []*message.Message
	for _, m := range msgs[skip:] {
		if isProbe(m) {
			continue
		}
		if m.Kind == message.Request {
			reqs[m.ID] = m
		} else {
			resps = append(resps, m)
		}
	}
	if len(reqs) != want || len(resps) != want {
		t.Fatalf("got %d requests and %d responses, want %d each; stats %v", len(reqs), len(resps), want, res.st)
	}
	for _, r := range resps {
		q := reqs[r.ID]
		if q == nil || !bytes.HasSuffix(r.Raw, []byte("answer to "+strings.Fields(string(q.Raw))[1])) {
			t.Errorf("response %q not paired with its request", r.Raw)
		}
	}
	if res.st["unparsable"] != 0 || res.st["incomplete"] != 0 || res.st["gaps"] != 0 {
		t.Errorf("stats %v", res.st)
	}
	if v, ok := res.st["queue-overflow"]; !ok || v != 0 || res.st["kernel-drops"] != 0 {
		t.Errorf("queue-overflow / kernel-drops in stats %v", res.st)
	}
}

// TestLiveBurstNothingLost captures a burst of requests sent as fast as 8
// keep-alive connections go: every request and response comes out, paired,
// with no packet dropped by the kernel or by the reader's queue.
func TestLiveBurstNothingLost(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	defer srv.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var reqs, resps atomic.Int64
	var lc LiveCounters
	a := NewAssembler(Config{Ports: []uint16{port}, Responses: true, OrderWindow: 50 * time.Millisecond}, func(m *message.Message) error {
		if m.Kind == message.Request {
			reqs.Add(1)
		} else {
			resps.Add(1)
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- a.LiveCounted(ctx, "lo", LiveConfig{Config: Config{Ports: []uint16{port}}}, &lc) }()
	// Wait for the capture: probe until one request is seen.
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for reqs.Load() == 0 {
		if ctx.Err() != nil {
			t.Fatal("capture never saw a probe request")
		}
		if resp, err := noKeepAlive.Get(url + "probe"); err == nil {
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	base := reqs.Load()
	const conns, per = 8, 500
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			for range per {
				resp, err := cl.Get(url + "burst")
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	want := base + sent.Load()
	for end := time.Now().Add(10 * time.Second); (reqs.Load() < want || resps.Load() < want) && time.Now().Before(end); {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	if sent.Load() != conns*per {
		t.Fatalf("only %d requests answered", sent.Load())
	}
	if reqs.Load() != want || resps.Load() != want {
		t.Fatalf("captured %d requests and %d responses, want %d; stats %v", reqs.Load(), resps.Load(), want, st)
	}
	if lc.QueueOverflow.Load() != 0 || st["kernel-drops"] != 0 || lc.Batches.Load() == 0 {
		t.Fatalf("queue-overflow %d, batches %d, stats %v", lc.QueueOverflow.Load(), lc.Batches.Load(), st)
	}
}

// BenchmarkLiveLoopback captures on lo while 32 keep-alive clients send
// b.N requests (for at most 30 s) to a loopback server. With -cpuprofile,
// focus on capture.(*Assembler).Live to see the capture's share.
func BenchmarkLiveLoopback(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ok := []byte("ok\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", "3")
		w.Write(ok)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var seen atomic.Int64 // requests captured
	done := make(chan error, 1)
	go func() {
		_, err := Live(ctx, "lo", LiveConfig{Config: Config{Ports: []uint16{port}, Responses: true, OrderWindow: 10 * time.Millisecond}}, func(m *message.Message) error {
			if m.Kind == message.Request {
				seen.Add(1)
			}
			return nil
		})
		done <- err
	}()
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}, Timeout: 2 * time.Second}
	get := func() {
		if resp, err := cl.Get(url); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	// Wait until the capture runs.
	for seen.Load() == 0 {
		if ctx.Err() != nil {
			b.Fatal("capture never saw a request")
		}
		get()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	want := seen.Load() + int64(b.N)
	loadCtx, loadCancel := context.WithTimeout(ctx, 30*time.Second)
	defer loadCancel()
	b.ResetTimer()
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) && loadCtx.Err() == nil {
				get()
			}
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(5 * time.Second); seen.Load() < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got := seen.Load(); got < want {
		b.Fatalf("captured %d of %d requests", got-want+int64(b.N), b.N)
	}
}

// TestIgnoreOutgoing checks that PACKET_IGNORE_OUTGOING can be set on an
// afpacket socket (the descriptor is found by reflection).
func TestIgnoreOutgoing(t *testing.T) {
	tp, err := afpacket.NewTPacket(afpacket.OptInterface("lo"), afpacket.OptTPacketVersion(afpacket.TPacketVersion3))
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Close()
	if err := ignoreOutgoing(tp); err != nil {
		t.Fatal(err)
	}
	v, err := syscall.GetsockoptInt(int(reflect.ValueOf(tp).Elem().FieldByName("fd").Int()), syscall.SOL_PACKET, packetIgnoreOutgoing)
	if err != nil || v != 1 {
		t.Fatalf("PACKET_IGNORE_OUTGOING = %d, %v", v, err)
	}
}
