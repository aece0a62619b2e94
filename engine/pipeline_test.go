package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
)

// kafkaYAML records rec.gor into a fresh topic, saves window win, and
// replays the window to url (workers: 1, so the target sees the order).
func kafkaYAML(cat, topic, win, url, replaySink string) string {
	if replaySink == "" {
		replaySink = "{http: {target: app, workers: 1}}"
	}
	return fmt.Sprintf(`version: 1
name: pipeline
kafka: {brokers: [embedded], catalog-topic: %s}
topics:
  traffic: {name: %s, partitions: 2, create: true}
targets:
  app: {url: %q, timeout: 5s}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
  replay:
    needs: [record]
    source: {window: %s}
    speed: max
    sink: %s
    report: {json: report.json}
`, cat, topic, url, win, win, replaySink)
}

// openWindow reads a saved window back from the catalog, as `windows show` does.
func openWindow(t *testing.T, opts engine.Options, yaml, dir, name string) (catalog.Window, map[int32]int64) {
	t.Helper()
	s := loadScenario(t, dir, yaml)
	if len(opts.Brokers) == 0 {
		opts.DataDir = filepath.Join(dir, "data") // as run uses
	}
	opts.Jobs = nil
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := engine.OpenCatalog(ctx, s, opts)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	defer c.Close()
	w, err := c.Get(ctx, name)
	if err != nil {
		t.Fatalf("window %s: %v", name, err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := catalog.EndOffsets(ctx, kadm.NewClient(cl), w.Topic)
	if err != nil {
		t.Fatalf("end offsets: %v", err)
	}
	return w, ends
}

func TestRecordWindowReplay(t *testing.T) {
	t.Parallel()
	const n = 12
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			reqs := evenly(n, time.Millisecond)
			for i := range reqs { // distinct connections spread over both partitions
				reqs[i].raw = get(fmt.Sprintf("/seq/%02d", i))
			}
			writeGor(t, dir, "rec.gor", reqs)
			tg := newTarget(t)
			cat, topic, win := unique(t, "cat"), unique(t, "topic"), unique(t, "win")
			yaml := kafkaYAML(cat, topic, win, tg.URL(), "")
			opts := engine.Options{Brokers: bc.brokers}

			res := run(t, dir, yaml, opts)
			if res.err != nil {
				t.Fatalf("record+replay: %v\n%s", res.err, res.out)
			}
			if tg.count() != n {
				t.Fatalf("first replay: target counted %d, want %d\n%s", tg.count(), n, res.out)
			}

			// The window holds exactly what the record job wrote: the topic
			// was empty, so [0, end) on every partition, 2n records.
			w, ends := openWindow(t, opts, yaml, dir, win)
			if w.Records() != 2*n || w.Requests != n || w.Responses != n {
				t.Errorf("window %s: %d records, %d requests, %d responses; want %d, %d, %d", win, w.Records(), w.Requests, w.Responses, 2*n, n, n)
			}
			for p, end := range ends {
				r, ok := w.Partitions[p]
				if end > 0 && !ok {
					t.Errorf("partition %d holds %d records but is not in the window", p, end)
					continue
				}
				if ok && (r.Start != 0 || r.End != end) {
					t.Errorf("partition %d: window [%d,%d), topic [0,%d)", p, r.Start, r.End, end)
				}
			}

			// Replaying twice sends the same requests in the same order.
			first := paths(tg.requests())
			opts.Jobs = []string{"replay"}
			for i := range 2 {
				tg2 := newTarget(t)
				res := run(t, dir, kafkaYAML(cat, topic, win, tg2.URL(), ""), opts)
				if res.err != nil {
					t.Fatalf("replay %d: %v\n%s", i+2, res.err, res.out)
				}
				if got := paths(tg2.requests()); got != first {
					t.Errorf("replay %d sent\n%s\nwant (as the first)\n%s", i+2, got, first)
				}
			}
			if !strings.HasPrefix(first, "/seq/00\n/seq/01\n") {
				t.Errorf("replay order is not the capture order:\n%s", first)
			}

			// Saving the window again needs --overwrite.
			opts.Jobs = []string{"record"}
			res = run(t, dir, yaml, opts)
			if res.err == nil || !strings.Contains(res.err.Error(), "--overwrite") || !errors.Is(res.err, engine.ErrInvalid) {
				t.Fatalf("second save-window without Overwrite: err = %v, want ErrInvalid mentioning --overwrite", res.err)
			}
			w2, _ := openWindow(t, opts, yaml, dir, win)
			if fmt.Sprint(w2.Partitions) != fmt.Sprint(w.Partitions) {
				t.Errorf("a refused save changed the window: %v, was %v", w2.Partitions, w.Partitions)
			}
			opts.Overwrite = true
			if res := run(t, dir, yaml, opts); res.err != nil {
				t.Fatalf("second save-window with Overwrite: %v\n%s", res.err, res.out)
			}
			w3, ends := openWindow(t, opts, yaml, dir, win)
			if w3.Records() != 2*n {
				t.Errorf("overwritten window has %d records, want %d", w3.Records(), 2*n)
			}
			for p, r := range w3.Partitions {
				if r.End != ends[p] || r.Start != w.Partitions[p].End {
					t.Errorf("overwritten window partition %d = [%d,%d), want [%d,%d)", p, r.Start, r.End, w.Partitions[p].End, ends[p])
				}
			}

			// With KeepHistory the replaced window stays, renamed.
			opts.KeepHistory = true
			res = run(t, dir, yaml, opts)
			if res.err != nil {
				t.Fatalf("third save-window with KeepHistory: %v\n%s", res.err, res.out)
			}
			keptAs := win + "@" + w3.CreatedAt.UTC().Format("20060102T150405Z")
			// The summary says where the replaced window went.
			if !strings.Contains(res.out, "kept      the window it replaced, as "+keptAs) {
				t.Errorf("the summary does not name the kept window %s:\n%s", keptAs, res.out)
			}
			kept, _ := openWindow(t, opts, yaml, dir, keptAs)
			if fmt.Sprint(kept.Partitions) != fmt.Sprint(w3.Partitions) || kept.RecordingID != w3.RecordingID {
				t.Errorf("kept window %v (%s), want the replaced one %v (%s)", kept.Partitions, kept.RecordingID, w3.Partitions, w3.RecordingID)
			}
		})
	}
}

func paths(rs []received) string {
	var b strings.Builder
	for _, r := range rs {
		b.WriteString(r.Path + "\n")
	}
	return b.String()
}

// fidelityRequest has odd header case, duplicate headers, a chunked body
// with an extension and a trailer.
const fidelityRequest = "POST /upload?x=1&x=2 HTTP/1.1\r\n" +
	"hOsT: orig.example:8080\r\n" +
	"X-Dup: a\r\n" +
	"x-dup: b\r\n" +
	"user-AGENT:  spaced  \r\n" +
	"Transfer-Encoding: chunked\r\n" +
	"\r\n" +
	"5\r\nhello\r\n" +
	"6;ext=1\r\n world\r\n" +
	"0\r\nX-Trailer: t\r\n\r\n"

func TestByteFidelityThroughKafka(t *testing.T) {
	t.Parallel()
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			t.Parallel()
			for _, preserve := range []bool{true, false} {
				t.Run(fmt.Sprintf("preserve-host=%t", preserve), func(t *testing.T) {
					dir := t.TempDir()
					writeGor(t, dir, "rec.gor", []req{{0, fidelityRequest}, {time.Millisecond, get("/after")}})
					tg := newTarget(t)
					sink := fmt.Sprintf("{http: {target: app, workers: 1, preserve-host: %t}}", preserve)
					yaml := kafkaYAML(unique(t, "cat"), unique(t, "topic"), unique(t, "win"), tg.URL(), sink)
					if res := run(t, dir, yaml, engine.Options{Brokers: bc.brokers}); res.err != nil {
						t.Fatalf("run: %v\n%s", res.err, res.out)
					}
					got := tg.requests()
					if len(got) != 2 {
						t.Fatalf("target counted %d requests, want 2", len(got))
					}
					want := []byte(fidelityRequest)
					if !preserve {
						want = bytes.Replace(want, []byte("hOsT: orig.example:8080\r\n"), []byte("hOsT: "+tg.Addr()+"\r\n"), 1)
					}
					if !bytes.Equal(got[0].Raw, want) {
						t.Errorf("target received\n%q\nwant\n%q", got[0].Raw, want)
					}
				})
			}
		})
	}
}

// TestByteFidelityFromGor replays the .gor file directly (no Kafka).
func TestByteFidelityFromGor(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, "rec.gor", []req{{0, fidelityRequest}})
	tg := newTarget(t)
	res := run(t, dir, replayYAML(tg.URL(), "speed: max\nsink: {http: {target: app, preserve-host: true}}"), engine.Options{})
	if res.err != nil {
		t.Fatalf("run: %v\n%s", res.err, res.out)
	}
	if got := tg.requests(); len(got) != 1 || string(got[0].Raw) != fidelityRequest {
		t.Fatalf("target received %d requests, first %q; want exactly %q", len(got), firstRaw(got), fidelityRequest)
	}
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if out := number(t, rep, "bytes", "out"); int(out) != tg.bytesIn() {
		t.Errorf("report bytes.out = %v, the target received %d bytes", out, tg.bytesIn())
	}
}

func firstRaw(rs []received) string {
	if len(rs) == 0 {
		return ""
	}
	return string(rs[0].Raw)
}
