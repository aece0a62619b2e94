package engine_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/report"
)

// TestUndecodableInputNotSent: a replay whose input holds what does not
// decode (a window's record that is no GoReplay message, a .gor payload
// that does not parse) sends the rest, says what it skipped on its not
// sent line and in its report's not_sent (it was a counter alone), and
// fails on it unless on-loss: warn.
func TestUndecodableInputNotSent(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic := unique(t, "undecodable")
	cl := br.Client(t)
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), topic, 1, -1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("%024x", i+1), Time: time.Now().UnixNano(), Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}
		value := m.Payload()
		if i == 1 {
			value = []byte(`{"not":"a GoReplay message"}`)
		}
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("c"), Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	path := writeGor(t, dir, "in.gor", evenly(2, time.Millisecond))
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
	for _, c := range []struct{ name, source, line, loss string }{
		{"window", "{window: w}", "1 record(s) of the window not sent: they are not GoReplay messages (the first ones are in the log)", "bad-records 1 (records of the window that are not GoReplay messages)"},
		{"gor", "{gor: {path: in.gor}}", "1 payload(s) of the .gor file not sent: they do not decode (the first ones are in the log)", "bad-payloads 1 (payloads of the .gor file that do not decode)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg := newTarget(t)
			yaml := fmt.Sprintf(`version: 1
name: undecodable
topics:
  traffic: {name: %s}
windows:
  w: {topic: traffic, offsets: {"0": [0, 3]}}
targets:
  t: {url: %q}
jobs:
  replay:
    source: %s
    speed: max
    sink: {http: {target: t}}
    report: {json: out/replay.json}
`, topic, tg.URL(), c.source)
			r := run(t, dir, yaml, engine.Options{Brokers: br.Addrs})
			// What does not decode is a loss, as a request that does not
			// parse is: it exited 0 with a not sent line.
			var loss *engine.LossError
			if !errors.As(r.err, &loss) || !strings.Contains(r.err.Error(), c.loss) || !strings.Contains(r.out, "done, REQUESTS NOT SENT") {
				t.Fatalf("run = %v, want a loss naming %q\n%s", r.err, c.loss, r.out)
			}
			if tg.count() != 2 {
				t.Errorf("target received %d requests, want 2", tg.count())
			}
			if !strings.Contains(r.out, "not sent  "+c.line+"\n") {
				t.Errorf("the summary has no not sent line %q:\n%s", c.line, r.out)
			}
			rep := readReport(t, filepath.Join(dir, "out", "replay.json"))
			if ns, _ := field(t, rep, "not_sent").([]any); len(ns) != 1 || ns[0] != c.line {
				t.Errorf("report not_sent %v, want [%q]", field(t, rep, "not_sent"), c.line)
			}
		})
	}
}

// TestRequestsDroppedOnErrorsAreLoss: a replay whose rewrite fails on some
// of its requests sends the others, says how many it did not send and why
// (state, not sent line, report), and fails with exit 1 unless on-loss:
// warn; it exited 0 with a counter alone, sending nothing at all when the
// rewrite failed on every request. A record job whose filter fails on a
// message counts it lost.
func TestRequestsDroppedOnErrorsAreLoss(t *testing.T) {
	dir := t.TempDir()
	writeGor(t, dir, "in.gor", evenly(4, time.Millisecond))
	// The rewrite fails on requests without X-N: the paths /r/1 and /r/3.
	rewrite := `rewrite:
      - set-header: {name: X-Twice, value: 'string(int(req.path == "/r/1" || req.path == "/r/3" ? "x" : "2") * 2)'}`
	const line = "2 request(s) not sent: the rewrite failed on them (rewrite-errors; the first errors are in the log)"
	for _, onLoss := range []string{"", "on-loss: warn"} {
		t.Run(cmp.Or(onLoss, "default"), func(t *testing.T) {
			tg := newTarget(t)
			yaml := fmt.Sprintf(`version: 1
name: dropped
targets:
  t: {url: %q}
jobs:
  replay:
    source: {gor: {path: in.gor}}
    speed: max
    %s
    sink: {http: {target: t}}
    report: {json: out/replay.json}
    %s
`, tg.URL(), rewrite, onLoss)
			r := run(t, dir, yaml, engine.Options{})
			var loss *engine.LossError
			switch {
			case onLoss == "" && (!errors.As(r.err, &loss) || !strings.Contains(r.err.Error(), "2 request(s) not sent because of errors: rewrite-errors 2 (the rewrite failed on them); on-loss: warn accepts that")):
				t.Errorf("run = %v, want the requests not sent as a loss", r.err)
			case onLoss != "" && r.err != nil:
				t.Errorf("run with %s = %v, want no error", onLoss, r.err)
			}
			if tg.count() != 2 {
				t.Errorf("target received %d requests, want the 2 the rewrite did not fail on", tg.count())
			}
			if !strings.Contains(r.out, "done, REQUESTS NOT SENT") || !strings.Contains(r.out, "not sent  "+line+"\n") {
				t.Errorf("the summary does not say what was not sent:\n%s", r.out)
			}
			rep := readReport(t, filepath.Join(dir, "out", "replay.json"))
			if ns, _ := field(t, rep, "not_sent").([]any); len(ns) != 1 || ns[0] != line {
				t.Errorf("report not_sent %v, want [%q]", field(t, rep, "not_sent"), line)
			}
			// The replay did its work: report merge (a sharded run's
			// shards) takes it as complete, its asserts judged, not as a
			// shard that failed.
			data, err := os.ReadFile(filepath.Join(dir, "out", "replay.json"))
			if err != nil {
				t.Fatal(err)
			}
			in, err := report.ParseInput("replay.json", data)
			if err != nil {
				t.Fatal(err)
			}
			if in.Error != "" {
				t.Errorf("report error %q: report merge would take the replay for a failed shard", in.Error)
			}
			m, err := report.Merge([]*report.Input{in}, "")
			if err != nil || !m.Complete() {
				t.Fatalf("report merge: %v, complete %v", err, m != nil && m.Complete())
			}
			// It fails the merge as it failed the run: on-loss is in
			// the report.
			if m.JSON.NotSentFails != (onLoss == "") {
				t.Errorf("report merge: not_sent_fails %t with %q (report on_loss %q)", m.JSON.NotSentFails, onLoss, in.OnLoss)
			}
		})
	}

	t.Run("record", func(t *testing.T) {
		yaml := `version: 1
name: dropped-record
jobs:
  record:
    source: {gor: {path: in.gor}}
    filter: 'int(req.path == "/r/1" ? "x" : "1") == 1'
    sink: {gor: {path: out/rec.gor}}
    report: {json: out/record.json}
`
		r := run(t, dir, yaml, engine.Options{})
		var loss *engine.LossError
		if !errors.As(r.err, &loss) || loss.Lost["filter-errors"] != 1 {
			t.Fatalf("run = %v, want filter-errors 1 lost", r.err)
		}
		if !strings.Contains(r.out, "filter-errors 1 message (requests dropped: the filter failed on them; the first errors are in the log)") {
			t.Errorf("the summary's lost line does not say the filter failed:\n%s", r.out)
		}
	})
}

// TestFilterOverMemoryBudget: an expression that would build a string of
// terabytes (a scenario's, or a job spec's that an agent runs) is an
// error of the expression, counted as such, not an allocation that kills
// the process with everything it runs (expr-lang before v1.18 checked
// repeat's count, not the size it would allocate).
func TestFilterOverMemoryBudget(t *testing.T) {
	dir := t.TempDir()
	writeGor(t, dir, "in.gor", evenly(2, time.Millisecond))
	for _, filter := range []string{
		`len(repeat(repeat("x", 900000), 1000000)) > 0`,
		`let a = repeat("x", 900000); let b = a + a; let c = b + b; let d = c + c; let e = d + d; len(e + e + e + e) > 0`,
		`len(join(map(1..1000, repeat("x", 900)), repeat("y", 900000))) > 0`,
	} {
		t.Run(filter[:12], func(t *testing.T) {
			yaml := "version: 1\nname: budget\njobs:\n  record:\n    source: {gor: {path: in.gor}}\n    filter: '" + filter + "'\n    sink: {gor: {path: out/rec.gor}}\n"
			var logs syncBuffer
			r := run(t, dir, yaml, engine.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			var loss *engine.LossError
			if !errors.As(r.err, &loss) || loss.Lost["filter-errors"] != 2 {
				t.Fatalf("run = %v, want filter-errors 2 lost", r.err)
			}
			if !strings.Contains(logs.String(), "memory budget exceeded") {
				t.Errorf("the log does not say why the filter failed:\n%s", logs.String())
			}
		})
	}
}

// TestUnparsableNotSentWithoutFilter: a replay sends only whole HTTP/1.x
// requests, with a filter or without: what does not parse (no request
// line, a head with no end, a body short of its Content-Length) is
// counted unparsable-requests and not sent. Without a filter it was sent
// as it was, and the target's wait for the missing bytes became timeouts
// blamed on the target, with exit 0; with one, the same input failed the
// run.
func TestUnparsableNotSentWithoutFilter(t *testing.T) {
	dir := t.TempDir()
	writeGor(t, dir, "in.gor", []req{
		{0, "GET /ok/1 HTTP/1.1\r\nHost: x\r\n\r\n"},
		{time.Millisecond, "NOT HTTP AT ALL"},
		{2 * time.Millisecond, "GET /no-end HTTP/1.1\r\nHost: x\r\n"},
		{3 * time.Millisecond, "POST /short HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"},
		{4 * time.Millisecond, "GET /ok/2 HTTP/1.1\r\nHost: x\r\n\r\n"},
	})
	for _, filter := range []string{"", `filter: 'req.method != "OPTIONS"'`} {
		t.Run(cmp.Or(filter, "no filter"), func(t *testing.T) {
			tg := newTarget(t)
			yaml := fmt.Sprintf("version: 1\nname: unparsable\njobs:\n  replay:\n    source: {gor: {path: in.gor}}\n    speed: max\n    %s\n    sink: {http: {url: %q, timeout: 2s}}\n", filter, tg.URL())
			r := run(t, dir, yaml, engine.Options{})
			var loss *engine.LossError
			if !errors.As(r.err, &loss) || loss.Lost["unparsable-requests"] != 3 {
				t.Fatalf("run = %v, want unparsable-requests 3 lost\n%s", r.err, r.out)
			}
			if tg.count() != 2 || !strings.Contains(r.out, "3 request(s) not sent: they cannot be parsed as HTTP requests") {
				t.Errorf("target received %d requests, want the 2 whole ones; summary:\n%s", tg.count(), r.out)
			}
		})
	}
}
