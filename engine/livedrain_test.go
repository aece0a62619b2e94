package engine_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
)

// TestLiveDrainCutIsCounted: a mirror at speed 0.1 stopped by stop.after
// holds requests whose instants come long after the stop; what its drain
// bound (liveDrain) cuts is counted, each request, and told, and the job
// ends as its scenario says (on-loss: warn here). A review found the
// first cut request counted, the others dropped uncounted, and the job
// FAILED with the capture's "context canceled".
func TestLiveDrainCutIsCounted(t *testing.T) {
	defer engine.SetLiveDrain(time.Second)()
	var mirrored atomic.Int64
	mirror := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { mirrored.Add(1); _, _ = io.WriteString(w, "ok") })}
	ml, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = mirror.Serve(ml) }()
	defer mirror.Close()
	prod := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = prod.Serve(pl) }()
	defer prod.Close()
	port := pl.Addr().(*net.TCPAddr).Port
	yaml := fmt.Sprintf(`version: 1
name: drain
jobs:
  mirror:
    source: {capture: {interface: lo, ports: [%d]}}
    sink: {http: {url: "http://%s"}}
    speed: 0.1
    stop: {after: 3s}
    on-loss: warn
`, port, ml.Addr())
	done := make(chan result, 1)
	dir := t.TempDir()
	go func() { done <- run(t, dir, yaml, engine.Options{}) }()
	time.Sleep(1200 * time.Millisecond) // the capture is up
	getAll(t, port, "/r", 20, 50*time.Millisecond)
	r := <-done
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	num := func(name string) int {
		m := regexp.MustCompile(regexp.QuoteMeta(name) + `=(\d+)`).FindStringSubmatch(r.out)
		if m == nil {
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	captured, cut := num("source.requests"), num("not-sent-at-stop")
	if captured < 10 || cut == 0 || int(mirrored.Load())+cut != captured {
		t.Errorf("captured %d, mirrored %d, not-sent-at-stop %d: want every captured request sent or counted\n%s", captured, mirrored.Load(), cut, r.out)
	}
	if !strings.Contains(r.out, fmt.Sprintf("%d captured request(s) not sent: the capture had stopped", cut)) {
		t.Errorf("the summary does not tell the cut:\n%s", r.out)
	}
}
