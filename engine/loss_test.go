package engine_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
)

// TestTooLargeRecordCounted records a .gor file in which one request is
// larger than the topic takes: that one is counted as lost (too-large), the
// rest is saved as a partial window, and the run fails unless on-loss:
// warn. Today one refused record fails the job and saves no window.
func TestTooLargeRecordCounted(t *testing.T) {
	for _, bc := range brokerCases(t) {
		for _, onLoss := range []string{"", "warn"} {
			t.Run(bc.name+"/on-loss="+onLoss, func(t *testing.T) {
				dir := t.TempDir()
				reqs := evenly(40, time.Millisecond)
				big := "POST /upload HTTP/1.1\r\nHost: shop.example\r\nContent-Length: 40000\r\n\r\n" + strings.Repeat("u", 40000)
				reqs[20].raw = big
				writeGor(t, dir, "rec.gor", reqs)
				topic, win := unique(t, "toolarge"), unique(t, "win")
				job := ""
				if onLoss != "" {
					job = "\n    on-loss: " + onLoss
				}
				tg := newTarget(t)
				yaml := fmt.Sprintf(`version: 1
name: too-large
topics:
  traffic: {name: %s, create: true, config: {max.message.bytes: "20000"}}
targets:
  app: {url: %q}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
    report: {json: out/record.json}%s
  replay:
    source: {window: %[3]s}
    speed: max
    sink: {http: {target: app}}
    report: {json: out/replay.json, html: out/replay.html}
`, topic, tg.URL(), win, job)
				r := run(t, dir, yaml, engine.Options{Brokers: bc.brokers, Jobs: []string{"record"}})
				wantLoss(t, r, onLoss)
				if !strings.Contains(r.out, "lost") || !strings.Contains(r.out, "too-large 1") || !strings.Contains(r.out, "(partial)") {
					t.Errorf("summary lacks the loss:\n%s", r.out)
				}
				rep := readReport(t, filepath.Join(dir, "out", "record.json"))
				if number(t, rep, "lost", "too-large") != 1 || number(t, rep, "lost", "total") != 1 {
					t.Errorf("report lost = %v", field(t, rep, "lost"))
				}
				if field(t, rep, "window", "partial") != true || number(t, rep, "window", "messages") != 79 {
					t.Errorf("report window = %v", field(t, rep, "window"))
				}
				if number(t, rep, "window", "lost", "too-large") != 1 {
					t.Errorf("window lost = %v", field(t, rep, "window", "lost"))
				}
				// The window counts what it holds, not what was captured.
				if number(t, rep, "window", "requests") != 39 || number(t, rep, "window", "responses") != 40 {
					t.Errorf("window requests %v responses %v, want 39 and 40 (one request was refused)", field(t, rep, "window", "requests"), field(t, rep, "window", "responses"))
				}

				// Its replay says the window is partial, and why.
				r = run(t, dir, yaml, engine.Options{Brokers: bc.brokers, Jobs: []string{"replay"}})
				if r.err != nil {
					t.Fatalf("replay: %v\n%s", r.err, r.out)
				}
				gap := "saved partial: its recording lost too-large 1 message"
				if !strings.Contains(r.out, "(PARTIAL window)") || !strings.Contains(r.out, "partial   "+gap) {
					t.Errorf("the replay's summary does not say its window is partial:\n%s", r.out)
				}
				rep = readReport(t, filepath.Join(dir, "out", "replay.json"))
				if gaps, _ := field(t, rep, "source_gaps").([]any); len(gaps) != 1 || gaps[0] != gap {
					t.Errorf("replay report source_gaps = %v, want [%q]", field(t, rep, "source_gaps"), gap)
				}
				if n := number(t, rep, "requests", "sent"); n != 39 {
					t.Errorf("replay sent %v requests, want the window's 39", n)
				}
				html, err := os.ReadFile(filepath.Join(dir, "out", "replay.html"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(html), "Partial window") || !strings.Contains(string(html), "<li>"+gap+"</li>") {
					t.Errorf("the replay's HTML report does not say its window is partial (%q)", gap)
				}
			})
		}
	}
}

// TestLargeBodyFitsCreatedTopic records a 1 MB response through the
// default max-body: the topic replayctl creates takes it (today the
// producer refuses it with MESSAGE_TOO_LARGE and no window is saved).
func TestLargeBodyFitsCreatedTopic(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			server := netip.MustParseAddrPort("127.0.0.1:8080")
			body := strings.Repeat("b", 1_000_000)
			writePcapWith(t, filepath.Join(dir, "big.pcap"), server, []req{{at: 0, raw: get("/big")}, {at: time.Millisecond, raw: get("/small")}},
				[]string{"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + body})
			topic, win := unique(t, "bigbody"), unique(t, "win")
			yaml := fmt.Sprintf(`version: 1
name: big-body
topics:
  traffic: {name: %s, create: true}
jobs:
  record:
    source: {pcap: {path: big.pcap, ports: [8080]}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
    report: {json: out/record.json}
`, topic, win)
			r := run(t, dir, yaml, engine.Options{Brokers: bc.brokers})
			if r.err != nil {
				t.Fatalf("run: %v\n%s", r.err, r.out)
			}
			rep := readReport(t, filepath.Join(dir, "out", "record.json"))
			if number(t, rep, "window", "messages") != 4 || number(t, rep, "lost", "total") != 0 {
				t.Fatalf("report: window %v lost %v", field(t, rep, "window"), field(t, rep, "lost"))
			}
		})
	}
}

// TestMaxBodyAboveTopicLimit refuses, before reading any packet, a
// max-body that the topic cannot take: on a topic it would create with an
// explicit limit, and on an existing topic.
func TestMaxBodyAboveTopicLimit(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			writePcap(t, filepath.Join(dir, "in.pcap"), netip.MustParseAddrPort("127.0.0.1:8080"), evenly(3, time.Millisecond))
			topic := unique(t, "limit")
			yaml := func(create, maxBody, config string) string {
				return fmt.Sprintf(`version: 1
name: limit
topics:
  traffic: {name: %s, create: %s%s}
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], max-body: %s}}
    sink: {kafka: {topic: traffic}}
`, topic, create, config, maxBody)
			}
			opts := func() engine.Options {
				return engine.Options{Brokers: bc.brokers, DataDir: filepath.Join(dir, "data")}
			}
			r := run(t, dir, yaml("true", "2MiB", `, config: {max.message.bytes: "1048588"}`), opts())
			if !errors.Is(r.err, engine.ErrInvalid) || !strings.Contains(r.err.Error(), "max.message.bytes 1048588") {
				t.Fatalf("max-body 2MiB on a topic created with 1048588: %v", r.err)
			}
			if strings.Contains(r.out, "recorded") {
				t.Errorf("something was recorded:\n%s", r.out)
			}
			// The topic exists now, with its limit: a larger max-body is refused.
			r = run(t, dir, yaml("false", "4MiB", ""), opts())
			if !errors.Is(r.err, engine.ErrInvalid) || !strings.Contains(r.err.Error(), "raise the topic's max.message.bytes") {
				t.Fatalf("max-body 4MiB on an existing topic: %v", r.err)
			}
			// One that fits records.
			if r = run(t, dir, yaml("false", "512KiB", ""), opts()); r.err != nil {
				t.Fatalf("max-body 512KiB: %v\n%s", r.err, r.out)
			}
		})
	}
}

// TestMaxBodyTooLargeForKafka: a max-body no produce request can carry is
// refused before the topic is created, and a topic whose limit is above
// that (200 MiB) still records: the client's batches stay within one
// request.
func TestMaxBodyTooLargeForKafka(t *testing.T) {
	for _, bc := range brokerCases(t) {
		t.Run(bc.name, func(t *testing.T) {
			dir := t.TempDir()
			writePcap(t, filepath.Join(dir, "in.pcap"), netip.MustParseAddrPort("127.0.0.1:8080"), evenly(3, time.Millisecond))
			topic := unique(t, "huge")
			yaml := func(maxBody, config string) string {
				return fmt.Sprintf(`version: 1
name: huge
topics:
  traffic: {name: %s, create: true%s}
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], max-body: %s}}
    sink: {kafka: {topic: traffic}}
`, topic, config, maxBody)
			}
			opts := engine.Options{Brokers: bc.brokers, DataDir: filepath.Join(dir, "data")}
			r := run(t, dir, yaml("100GiB", ""), opts)
			if !errors.Is(r.err, engine.ErrInvalid) || !strings.Contains(r.err.Error(), "too large for Kafka") {
				t.Fatalf("max-body 100GiB: %v\n%s", r.err, r.out)
			}
			if strings.Contains(r.out, "recorded") {
				t.Errorf("something was recorded:\n%s", r.out)
			}
			if r = run(t, dir, yaml("1MiB", `, config: {max.message.bytes: "209715200"}`), opts); r.err != nil {
				t.Fatalf("max-body 1MiB on a topic that takes 200 MiB: %v\n%s", r.err, r.out)
			}
		})
	}
}

// TestTruncatedMessageRecorded records a response whose body passes
// max-body: it is kept, cut, with its Set-Cookie redacted, instead of being
// dropped as unredactable.
func TestTruncatedMessageRecorded(t *testing.T) {
	dir := t.TempDir()
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	writePcapWith(t, filepath.Join(dir, "in.pcap"), server,
		[]req{{at: 0, raw: get("/page", "Cookie: sid=abc123")}, {at: time.Millisecond, raw: get("/next")}},
		[]string{"HTTP/1.1 200 OK\r\nSet-Cookie: sid=secret42; Path=/\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("p", 5000)})
	yaml := `version: 1
name: truncated
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], max-body: 1000}}
    sink: {gor: {path: out.gor}}
    report: {json: out/record.json}
`
	r := run(t, dir, yaml, engine.Options{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "record.json"))
	if number(t, rep, "requests") != 2 || number(t, rep, "responses") != 2 || number(t, rep, "lost", "total") != 0 ||
		number(t, rep, "counters", "source.truncated") != 1 {
		t.Fatalf("report: %v", rep)
	}
	f, err := os.Open(filepath.Join(dir, "out.gor"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gr, err := gorfile.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for {
		p, _, err := gr.Next()
		if err != nil {
			break
		}
		s := string(p)
		if strings.Contains(s, "secret42") || strings.Contains(s, "abc123") {
			t.Errorf("a secret was recorded: %.200q", s)
		}
		if strings.Contains(s, "Set-Cookie: sid=REDACTED; Path=/") {
			found = true
			if body := s[strings.Index(s, "\r\n\r\n")+4:]; len(body) != 1000 {
				t.Errorf("truncated body of %d bytes, want 1000", len(body))
			}
			// The .gor file says it was cut (its head promises 5000).
			if m, err := message.DecodePayload(p); err != nil || !m.Truncated {
				t.Errorf("the cut response is not marked truncated in the .gor file (%v): %.60q", err, s)
			}
		}
	}
	if !found {
		t.Error("the truncated response is not in the recording")
	}
}

// TestPcapCutShortIsLoss records a pcap file cut in the middle of its last
// packet: the packets before it are recorded, and the cut one is a loss
// (file-cut-short) that fails the job unless on-loss says warn.
func TestPcapCutShortIsLoss(t *testing.T) {
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			server := netip.MustParseAddrPort("127.0.0.1:8080")
			pcap := filepath.Join(dir, "cut.pcap")
			writePcap(t, pcap, server, evenly(10, time.Millisecond))
			b, err := os.ReadFile(pcap)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pcap, b[:len(b)-5], 0o644); err != nil {
				t.Fatal(err)
			}
			rep := recordLossy(t, dir, `{pcap: {path: cut.pcap, ports: [8080]}}`, onLoss, "file-cut-short 1 packet (the pcap file ends in the middle of it)", "the summary does not say the file is cut short")
			if number(t, rep, "lost", "file-cut-short") != 1 || number(t, rep, "requests") < 9 {
				t.Errorf("report lost %v, requests %v", field(t, rep, "lost"), field(t, rep, "requests"))
			}
		})
	}
}

// TestPcapHoleIsLoss records a pcap with a hole inside a response body
// (bytes that were on the wire and are not in the file): the response is
// kept cut, and the hole is a loss (capture-gaps) that fails the job unless
// on-loss says warn. A connection picked up in its middle is not a loss.
func TestPcapHoleIsLoss(t *testing.T) {
	src, err := filepath.Abs("../capture/testdata/synth-hole-length.pcap")
	if err != nil {
		t.Fatal(err)
	}
	mid, err := filepath.Abs("../capture/testdata/synth-midstream-binary.pcap")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pcap string
		lost       bool
	}{{"hole", src, true}, {"midstream", mid, false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data, err := os.ReadFile(tc.pcap)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "in.pcap"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			r := run(t, dir, `version: 1
name: hole
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [18180], responses: true}}
    sink: {gor: {path: out.gor}}
    report: {json: out/record.json}
`, engine.Options{})
			rep := readReport(t, filepath.Join(dir, "out", "record.json"))
			var loss *engine.LossError
			if !tc.lost {
				if r.err != nil || number(t, rep, "lost", "total") != 0 {
					t.Fatalf("run = %v, lost %v; want nothing lost\n%s", r.err, field(t, rep, "lost"), r.out)
				}
				return
			}
			if !errors.As(r.err, &loss) {
				t.Fatalf("run = %v, want a LossError\n%s", r.err, r.out)
			}
			if !strings.Contains(r.out, "capture-gaps 1 hole (bytes that were on the wire are not in the capture") {
				t.Errorf("the summary does not name the hole:\n%s", r.out)
			}
			if number(t, rep, "lost", "capture-gaps") != 1 || number(t, rep, "responses") != 3 {
				t.Errorf("report lost %v, responses %v", field(t, rep, "lost"), field(t, rep, "responses"))
			}
		})
	}
}

// TestCutRequestsNotReplayed records a POST whose body max-body cuts: the
// record job says a replay will not send it, and the replay does not (sent
// as recorded, its Content-Length promises bytes that never come and the
// target waits for them until the timeout); it says so on a not sent line
// and in its report's not_sent, and the other requests are sent. With a
// filter (which cannot parse a cut body) it is told the same way.
func TestCutRequestsNotReplayed(t *testing.T) {
	for _, filter := range []string{"", "\n    filter: 'req.method != \"DELETE\"'"} {
		t.Run(fmt.Sprintf("filter=%t", filter != ""), func(t *testing.T) { cutRequestsNotReplayed(t, filter) })
	}
}

func cutRequestsNotReplayed(t *testing.T, filter string) {
	dir := t.TempDir()
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	writePcapWith(t, filepath.Join(dir, "in.pcap"), server,
		[]req{{at: 0, raw: post("/upload", strings.Repeat("u", 5000))}, {at: time.Millisecond, raw: get("/after")}}, nil)
	tg := newTarget(t)
	topic, win := unique(t, "cut"), unique(t, "win")
	yaml := fmt.Sprintf(`version: 1
name: cut
topics:
  traffic: {name: %s, create: true}
targets:
  app: {url: %q, timeout: 30s}
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], max-body: 1000}}
    sink: {kafka: {topic: traffic}}
    save-window: %s
  replay:
    needs: [record]
    source: {window: %[3]s}
    speed: max
    sink: {http: {target: app}}
    report: {json: out/replay.json}%[4]s
`, topic, tg.URL(), win, filter)
	r := run(t, dir, yaml, engine.Options{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(r.out, "1 request(s) recorded with their body cut (max-body, or bytes the capture lost): a replay does not send them") {
		t.Errorf("the record summary does not say the request is cut:\n%s", r.out)
	}
	got := tg.requests()
	if len(got) != 1 || got[0].Path != "/after" {
		t.Fatalf("target got %d requests (%v), want /after only", len(got), got)
	}
	if strings.Contains(r.out, "PARTIAL") || !strings.Contains(r.out, "not sent  1 request(s) not sent: their bodies were cut when recorded") {
		t.Errorf("the replay summary does not say a request was not sent (or calls the window partial):\n%s", r.out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "replay.json"))
	if ns, _ := field(t, rep, "not_sent").([]any); len(ns) != 1 || number(t, rep, "counters", "not-sent-body-cut") != 1 {
		t.Errorf("report not_sent %v, counters %v", field(t, rep, "not_sent"), field(t, rep, "counters"))
	}
}

// TestStopRequestsKeepsTheirResponses: stop.requests ends a record job at
// its N requests with their responses: a pipelined request seen before the
// Nth's response is counted (not recorded), and the source stops once the
// response came, instead of dropping it.
func TestStopRequestsKeepsTheirResponses(t *testing.T) {
	dir := t.TempDir()
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	two := "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none" + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ntwo"
	writePcapWith(t, filepath.Join(dir, "in.pcap"), server, []req{{at: 0, raw: get("/1") + get("/2")}}, []string{two})
	r := run(t, dir, `version: 1
name: stop
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], responses: true}}
    sink: {gor: {path: out.gor}}
    stop: {requests: 1}
    report: {json: out/record.json}
`, engine.Options{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "record.json"))
	if number(t, rep, "requests") != 1 || number(t, rep, "responses") != 1 || number(t, rep, "counters", "requests-after-stop") != 1 {
		t.Errorf("report: requests %v responses %v counters %v", field(t, rep, "requests"), field(t, rep, "responses"), field(t, rep, "counters"))
	}
	if !strings.Contains(r.out, "stopped   at stop.requests 1; 1 request(s) seen after it not recorded") {
		t.Errorf("the summary does not say where it stopped:\n%s", r.out)
	}
}

// TestH2UnrenderableIsLoss records an HTTP/2 capture one of whose
// responses carries a field name that is not a token (x/y): the stored
// form cannot hold it, so that response is not recorded, and that is a
// loss (h2-unrenderable) told in the summary and the report, failing the
// job unless on-loss says warn. The other messages are recorded.
func TestH2UnrenderableIsLoss(t *testing.T) {
	src, err := filepath.Abs("../capture/testdata/synth-h2-unrenderable.pcap")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "in.pcap"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			rep := recordLossy(t, dir, `{pcap: {path: in.pcap, ports: [18180], responses: true}}`, onLoss, "h2-unrenderable 1 message (HTTP/2 messages whose fields cannot be written as header lines", "the summary does not name the message lost")
			if number(t, rep, "lost", "h2-unrenderable") != 1 || number(t, rep, "requests") != 2 || number(t, rep, "responses") != 1 {
				t.Errorf("report lost %v, requests %v, responses %v", field(t, rep, "lost"), field(t, rep, "requests"), field(t, rep, "responses"))
			}
		})
	}
}

// TestGorBadPayloadIsLoss records a .gor file with a payload that does not
// decode (a damaged file, another tool's bytes): the others are recorded,
// and the one skipped is a loss (bad-payloads) that fails the job unless
// on-loss says warn; it was a counter alone, the window saved complete.
func TestGorBadPayloadIsLoss(t *testing.T) {
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			path := writeGor(t, dir, "in.gor", evenly(10, time.Millisecond))
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString("not a payload header\nGET / HTTP/1.1\r\n\r\n" + gorfile.Separator); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			rep := recordLossy(t, dir, `{gor: {path: in.gor}}`, onLoss, "bad-payloads 1 message (payloads of the .gor file that do not decode)", "the summary does not say a payload was skipped")
			if number(t, rep, "lost", "bad-payloads") != 1 || number(t, rep, "lost", "total") != 1 || number(t, rep, "requests") != 10 {
				t.Errorf("report lost %v, requests %v", field(t, rep, "lost"), field(t, rep, "requests"))
			}
		})
	}
}

// recordLossy runs a record job of source (a scenario's source: value)
// into a gor file, with on-loss when not "", in dir; it checks that the
// job ended as wantLoss says and that its summary says summary (else
// fails with complaint), and returns its JSON report.
func recordLossy(t *testing.T, dir, source, onLoss, summary, complaint string) map[string]any {
	t.Helper()
	job := ""
	if onLoss != "" {
		job = "\n    on-loss: " + onLoss
	}
	r := run(t, dir, `version: 1
name: lossy
jobs:
  record:
    source: `+source+`
    sink: {gor: {path: out.gor}}
    report: {json: out/record.json}`+job+"\n", engine.Options{})
	wantLoss(t, r, onLoss)
	if !strings.Contains(r.out, summary) {
		t.Errorf(complaint+":\n%s", r.out)
	}
	return readReport(t, filepath.Join(dir, "out", "record.json"))
}

// wantLoss checks how a record job that lost messages ended: with a
// LossError (exit 1) without on-loss, without an error under on-loss: warn.
func wantLoss(t *testing.T, r result, onLoss string) {
	t.Helper()
	var loss *engine.LossError
	switch {
	case onLoss == "" && !errors.As(r.err, &loss):
		t.Fatalf("run = %v, want a LossError\n%s", r.err, r.out)
	case onLoss == "warn" && r.err != nil:
		t.Fatalf("run with on-loss: warn = %v\n%s", r.err, r.out)
	}
}

// TestPcapSnaplenCutIsLoss records a pcap whose last data packet, the last
// response, was cut short by the capture's snaplen: that response is not
// recorded, and the cut packet is a loss (snaplen-cut) that fails the job
// unless on-loss says warn: nothing said why the response was missing.
func TestPcapSnaplenCutIsLoss(t *testing.T) {
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			server := netip.MustParseAddrPort("127.0.0.1:8080")
			whole := filepath.Join(dir, "whole.pcap")
			writePcap(t, whole, server, evenly(10, time.Millisecond))
			cutLastData(t, whole, filepath.Join(dir, "cut.pcap"), 60)
			rep := recordLossy(t, dir, `{pcap: {path: cut.pcap, ports: [8080], responses: true}}`, onLoss, "snaplen-cut 1 packet (cut short by the capture's snaplen", "the summary does not say a packet was cut by the snaplen")
			if number(t, rep, "lost", "snaplen-cut") != 1 || number(t, rep, "requests") != 10 || number(t, rep, "responses") != 9 {
				t.Errorf("report lost %v, requests %v, responses %v", field(t, rep, "lost"), field(t, rep, "requests"), field(t, rep, "responses"))
			}
		})
	}
}

// TestPcapFragmentsIncompleteIsLoss records a pcap whose last data packet,
// the last response, was sent in IPv4 fragments of which only the first
// is in the file: that response is not recorded, and its packet is a loss
// (fragments-incomplete) that fails the job unless on-loss says warn.
func TestPcapFragmentsIncompleteIsLoss(t *testing.T) {
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			server := netip.MustParseAddrPort("127.0.0.1:8080")
			whole := filepath.Join(dir, "whole.pcap")
			writePcap(t, whole, server, evenly(10, time.Millisecond))
			editLastData(t, whole, filepath.Join(dir, "frag.pcap"), func(data []byte, ci *gopacket.CaptureInfo) []byte {
				// Its first fragment: 24 bytes of the IPv4 payload, more
				// fragments to come.
				ip := data[14:]
				ihl := int(ip[0]&0x0f) * 4
				ip = ip[:ihl+24]
				binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)))
				binary.BigEndian.PutUint16(ip[6:], 0x2000)
				ci.CaptureLength, ci.Length = 14+len(ip), 14+len(ip)
				return data[:14+len(ip)]
			})
			rep := recordLossy(t, dir, `{pcap: {path: frag.pcap, ports: [8080], responses: true}}`, onLoss, "fragments-incomplete 1 packet (sent in IP fragments", "the summary does not say a packet's fragments never all came")
			if number(t, rep, "lost", "fragments-incomplete") != 1 || number(t, rep, "requests") != 10 || number(t, rep, "responses") != 9 {
				t.Errorf("report lost %v, requests %v, responses %v", field(t, rep, "lost"), field(t, rep, "requests"), field(t, rep, "responses"))
			}
		})
	}
}

// TestSnaplenCutCountedOnce records a pcap whose first request's packet
// was cut short by the capture's snaplen, inside its connection: the cut
// packet (snaplen-cut) and the hole it leaves (capture-gaps) are listed,
// each in its unit, and the total counts that loss once; it added them, 2.
func TestSnaplenCutCountedOnce(t *testing.T) {
	dir := t.TempDir()
	server := netip.MustParseAddrPort("127.0.0.1:8080")
	whole := filepath.Join(dir, "whole.pcap")
	writePcap(t, whole, server, evenly(10, time.Millisecond))
	editData(t, whole, filepath.Join(dir, "cut.pcap"), 0, func(data []byte, ci *gopacket.CaptureInfo) []byte {
		ci.CaptureLength = 60
		return data[:60]
	})
	r := run(t, dir, `version: 1
name: snaplen
jobs:
  record:
    source: {pcap: {path: cut.pcap, ports: [8080], responses: true}}
    sink: {gor: {path: out.gor}}
    report: {json: out/record.json}
    on-loss: warn
`, engine.Options{})
	wantLoss(t, r, "warn")
	if !strings.Contains(r.out, "capture-gaps 1 hole (") || !strings.Contains(r.out, "snaplen-cut 1 packet (") {
		t.Errorf("the summary does not list both causes:\n%s", r.out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "record.json"))
	if number(t, rep, "lost", "snaplen-cut") != 1 || number(t, rep, "lost", "capture-gaps") != 1 || number(t, rep, "lost", "total") != 1 {
		t.Errorf("report lost %v: want snaplen-cut 1, capture-gaps 1, total 1", field(t, rep, "lost"))
	}
}

// cutLastData copies the pcap src to dst with its last packet that carries
// TCP payload cut to keep bytes, as a capture with that snaplen leaves it.
func cutLastData(t *testing.T, src, dst string, keep int) {
	t.Helper()
	editLastData(t, src, dst, func(data []byte, ci *gopacket.CaptureInfo) []byte {
		ci.CaptureLength = keep
		return data[:keep]
	})
}

// editLastData copies the pcap src to dst with its last packet that
// carries TCP payload replaced by what edit makes of it (and of its
// capture info).
func editLastData(t *testing.T, src, dst string, edit func([]byte, *gopacket.CaptureInfo) []byte) {
	t.Helper()
	editData(t, src, dst, -1, edit)
}

// editData is editLastData for the nth packet that carries TCP payload
// (from 0; the last when nth < 0).
func editData(t *testing.T, src, dst string, nth int, edit func([]byte, *gopacket.CaptureInfo) []byte) {
	t.Helper()
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	type pkt struct {
		ci   gopacket.CaptureInfo
		data []byte
	}
	var pkts []pkt
	last, seen := -1, 0
	for {
		data, ci, err := rd.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if tl := p.TransportLayer(); tl != nil && len(tl.LayerPayload()) > 0 {
			if nth < 0 || seen == nth {
				last = len(pkts)
			}
			seen++
		}
		pkts = append(pkts, pkt{ci, data})
	}
	if last < 0 {
		t.Fatal("no packet with payload")
	}
	pkts[last].data = edit(pkts[last].data, &pkts[last].ci)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		if err := w.WritePacket(p.ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRefusedMessagesSaid records a capture with a request carrying two
// different Content-Lengths, which capture refuses (framing it would
// desync the stream): the summary's unparsable line says so, by cause; it
// said only that runs of bytes that are not HTTP (TLS, another protocol)
// were skipped.
func TestRefusedMessagesSaid(t *testing.T) {
	src, err := filepath.Abs("../capture/testdata/synth-lenient.pcap")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "in.pcap"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, `version: 1
name: refused
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [18180], responses: true}}
    sink: {gor: {path: out.gor}}
    redact: {defaults: false}
    on-loss: warn
`, engine.Options{})
	if r.err != nil {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(r.out, "refused because framing them would desync the stream (not recorded): refused-content-length 1 (two different or malformed Content-Lengths)") {
		t.Errorf("the summary does not say a message was refused, and why:\n%s", r.out)
	}
}

// TestPcapReplayCutShortIsLoss replays a pcap file cut in the middle of
// its last packet straight to a target: the requests before it are sent,
// and the summary, the report and the exit say the capture lost a packet
// whose request was never sent (it said "done" and exited 0, the loss only
// in a counter), unless on-loss says warn.
func TestPcapReplayCutShortIsLoss(t *testing.T) {
	for _, tc := range []struct{ onLoss, loop string }{{"", ""}, {"warn", ""}, {"", "3"}} {
		onLoss := tc.onLoss
		t.Run("on-loss="+onLoss+"/loop="+tc.loop, func(t *testing.T) {
			dir := t.TempDir()
			target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
			defer target.Close()
			pcap := filepath.Join(dir, "cut.pcap")
			writePcap(t, pcap, netip.MustParseAddrPort("127.0.0.1:8080"), evenly(10, time.Millisecond))
			b, err := os.ReadFile(pcap)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(pcap, b[:len(b)-5], 0o644); err != nil {
				t.Fatal(err)
			}
			job, each := "", ""
			if onLoss != "" {
				job = "\n    on-loss: " + onLoss
			}
			if tc.loop != "" {
				// A looped pcap loses the same packet each pass: 1, not 3.
				job += "\n    loop: " + tc.loop
				each = " (on each pass of the loop)"
			}
			r := run(t, dir, `version: 1
name: cut-replay
jobs:
  replay:
    source: {pcap: {path: cut.pcap, ports: [8080]}}
    sink: {http: {url: "`+target.URL+`"}}
    speed: max
    report: {json: out/replay.json}`+job+"\n", engine.Options{})
			var loss *engine.LossError
			switch {
			case onLoss == "" && (!errors.As(r.err, &loss) || loss.CaptureLost["file-cut-short"] != 1):
				t.Fatalf("run = %v, want a LossError with file-cut-short 1\n%s", r.err, r.out)
			case onLoss == "warn" && r.err != nil:
				t.Fatalf("run with on-loss: warn = %v\n%s", r.err, r.out)
			}
			said := "not sent  the capture lost file-cut-short 1 packet (the pcap file ends in the middle of it)" + each + ": what it lost was never sent"
			if !strings.Contains(r.out, "job replay: done, REQUESTS NOT SENT") || !strings.Contains(r.out, said) {
				t.Errorf("the summary does not say the capture lost a packet:\n%s", r.out)
			}
			rep := readReport(t, filepath.Join(dir, "out", "replay.json"))
			if ns, _ := field(t, rep, "not_sent").([]any); len(ns) != 1 || !strings.Contains(fmt.Sprint(ns[0]), "file-cut-short 1 packet") {
				t.Errorf("report not_sent %v", field(t, rep, "not_sent"))
			}
			if want := map[string]float64{"": 9, "3": 27}[tc.loop]; number(t, rep, "requests", "sent") < want {
				t.Errorf("report requests %v", field(t, rep, "requests"))
			}
		})
	}
}

// TestStageErrorsHideRequestValues: a filter, a sample key or a rewrite
// that fails on a request logs why without the request's values: expr's
// errors quote them (int(Bearer …)), and a record job logs before it
// redacts, so a production credential reached the log.
func TestStageErrorsHideRequestValues(t *testing.T) {
	raw := "GET /x?access_token=QTOKEN7 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer PRODSECRET7\r\n\r\n"
	for name, stage := range map[string]string{
		"filter":  `filter: 'int(req.header("Authorization")) > 0'`,
		"sample":  `sample: {percent: 50, by: 'string(int(req.param("access_token")))'}`,
		"rewrite": `rewrite: [{set-header: {name: X-N, value: 'string(float(req.header("Authorization")[7:]))'}}]`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeGor(t, dir, "in.gor", []req{{raw: raw}, {at: time.Millisecond, raw: raw}})
			var logs syncBuffer
			r := run(t, dir, `version: 1
name: leak
jobs:
  rec:
    source: {gor: {path: in.gor}}
    `+stage+`
    sink: {gor: {path: out.gor}}
    on-loss: warn
`, engine.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if r.err != nil {
				t.Fatalf("run: %v\n%s", r.err, r.out)
			}
			log := logs.String()
			if !strings.Contains(log, "failed; request dropped") || !strings.Contains(log, "xxxxx") {
				t.Errorf("no error logged, or nothing masked:\n%s", log)
			}
			for _, secret := range []string{"PRODSECRET7", "QTOKEN7"} {
				if strings.Contains(log, secret) || strings.Contains(r.out, secret) {
					t.Errorf("%s is in the log or the summary:\n%s\n%s", secret, log, r.out)
				}
			}
		})
	}
}

// TestRecordReportSaysWhyItFailed records a pcap file whose packet header
// in the middle is damaged (a capture length past the snap length): the job
// fails with the reason, and its JSON report says so in "error" too. It used
// to read as a whole recording that lost nothing ("lost": {"total": 0}, no
// error): a tool reading the report could not tell the rest of the file was
// never read.
func TestRecordReportSaysWhyItFailed(t *testing.T) {
	dir := t.TempDir()
	writeDamagedPcap(t, filepath.Join(dir, "bad.pcap"), 4)
	r := run(t, dir, `version: 1
name: damaged
jobs:
  record:
    source: {pcap: {path: bad.pcap, ports: [8080]}}
    sink: {gor: {path: out.gor}}
    report: {json: out/record.json}
`, engine.Options{})
	if r.err == nil || !strings.Contains(r.out, "FAILED") {
		t.Fatalf("run = %v, want the job FAILED\n%s", r.err, r.out)
	}
	rep := readReport(t, filepath.Join(dir, "out", "record.json"))
	msg, _ := rep["error"].(string)
	if !strings.Contains(msg, "packet 4") || !strings.Contains(msg, "snap length") {
		t.Fatalf("report error = %q, want why the job failed (run error: %v)", msg, r.err)
	}
}

// TestFailedRecordSaysWhereItsRecordsLie: a record job into Kafka that
// fails midway (a pcap whose seventh packet's header is damaged) saves no
// window, and its error says where the records it wrote lie and the
// windows: entry that replays them; they were in the topic, named nowhere.
func TestFailedRecordSaysWhereItsRecordsLie(t *testing.T) {
	dir := t.TempDir()
	writeDamagedPcap(t, filepath.Join(dir, "bad.pcap"), 7)
	r := run(t, dir, `version: 1
name: damaged
topics:
  traffic: {name: damaged-traffic, create: true}
jobs:
  record:
    source: {pcap: {path: bad.pcap, ports: [8080]}}
    sink: {kafka: {topic: traffic}}
    save-window: damaged
`, engine.Options{})
	if r.err == nil || !strings.Contains(r.err.Error(), "packet 7") || !strings.Contains(r.err.Error(), "record(s) written are in topic damaged-traffic; this windows: entry replays them: {topic: traffic, offsets: {\"0\": [0, ") {
		t.Fatalf("run = %v, want the failure and where the records written lie\n%s", r.err, r.out)
	}
}

// writeDamagedPcap writes a pcap of 10 requests to 127.0.0.1:8080 whose
// packet number packet (from 1) has a damaged header: a capture length
// (its third field) past the snap length.
func writeDamagedPcap(t *testing.T, path string, packet int) {
	t.Helper()
	writePcap(t, path, netip.MustParseAddrPort("127.0.0.1:8080"), evenly(10, time.Millisecond))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := 24
	for range packet - 1 {
		off += 16 + int(binary.LittleEndian.Uint32(b[off+8:]))
	}
	binary.LittleEndian.PutUint32(b[off+8:], 1<<30)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
