package report

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/stats"
)

// breakdownShard is a shard's result for breakdownInput: its requests by
// protocol and by gRPC method, each a latency in ms and a status
// (a gRPC method's grpc-status: method and code).
type breakdownShard []struct {
	proto, method string
	code          int
	ms            int
}

// breakdownInput makes shard i of 2's report of results rs, with its
// breakdowns, through its JSON form; mutate changes the breakdowns first.
func breakdownInput(t *testing.T, i int, rs breakdownShard, whole map[string]*stats.Recorder, mutate func(protocols, grpc map[string]Breakdown)) *Input {
	t.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := catalog.Window{Topic: "t", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 100}, 1: {Start: 0, End: 50}}}
	rec := stats.New(stats.Config{Origin: start})
	parts := map[string]*stats.Recorder{}
	codes := map[string]map[int]int64{}
	for k, r := range rs {
		at := start.Add(time.Duration(k) * time.Millisecond)
		res := stats.Result{Scheduled: at, Start: at, Latency: time.Duration(r.ms) * time.Millisecond, Status: 200}
		rec.Record(res)
		for _, key := range []string{"p:" + r.proto, "g:" + r.method} {
			if key == "g:" {
				continue
			}
			for _, m := range []map[string]*stats.Recorder{parts, whole} {
				if m[key] == nil {
					m[key] = stats.New(stats.Config{MaxSeries: 2})
				}
				m[key].Record(res)
			}
		}
		if r.method != "" {
			if codes[r.method] == nil {
				codes[r.method] = map[int]int64{}
			}
			codes[r.method][r.code]++
		}
	}
	protocols, grpc := map[string]Breakdown{}, map[string]Breakdown{}
	for key, r := range parts {
		st := r.State()
		if name, ok := strings.CutPrefix(key, "p:"); ok {
			protocols[name] = BreakdownOf(r.Summary(), &st, nil)
		} else {
			grpc[key[2:]] = BreakdownOf(r.Summary(), &st, codes[key[2:]])
		}
	}
	if mutate != nil {
		mutate(protocols, grpc)
	}
	rep := rec.Summary().Report("replay")
	st := rec.State()
	rep.State = &st
	rep.Assertions = []stats.ReportAssertion{{Expr: "requests.sent > 0", OK: true}}
	rep.Shard = &shard.Info{RunID: "r", Index: i, Count: 2, Parts: shard.Plan(w, 2)[i].Parts, Window: &w, Fingerprint: shard.Fingerprint(w)}
	data, err := json.Marshal(struct {
		stats.Report
		Protocols map[string]Breakdown `json:"protocols,omitempty"`
		GRPC      map[string]Breakdown `json:"grpc,omitempty"`
	}{rep, protocols, grpc})
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInput(fmt.Sprintf("shard %d's report", i), data)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestMergeBreakdowns: report merge adds the shards' breakdowns by
// protocol and by gRPC method up exactly, and assertions reading
// protocols[…] and grpc[…] are evaluated on them (they read zero: a
// "grpc[…].grpc_status[14] == 0" held whatever the shards answered). A
// breakdown the merge cannot add up exactly (a report without one, or
// without its state, of an older replayctl; gRPC methods lumped under
// "(other)") fails the assertions that read it, saying why, and leaves the
// others evaluated.
func TestMergeBreakdowns(t *testing.T) {
	shard0 := breakdownShard{{"HTTP/1.x", "", 0, 1}, {"HTTP/2.0", "/p.S/Check", 0, 2}, {"HTTP/2.0", "/p.S/Fail", 14, 7}}
	shard1 := breakdownShard{{"HTTP/1.x", "", 0, 3}, {"HTTP/1.x", "", 0, 30}, {"HTTP/2.0", "/p.S/Check", 0, 5}, {"HTTP/2.0", "/p.S/Fail", 14, 9}}
	asserts := []stats.ReportAssertion{
		{Expr: "requests.sent == 7"},
		{Expr: `protocols["HTTP/1.x"].requests.sent == 3 && protocols["HTTP/2.0"].requests.sent == 4`},
		{Expr: `grpc["/p.S/Fail"].grpc_status[14] == 0`},
		{Expr: `grpc["/p.S/Check"].requests.ok == 2 && grpc["/p.S/Check"].latency.max == duration("5ms")`},
	}
	const oldReport = "no breakdown by protocol of all the requests they sent (a replayctl older than this one?): shard 1 (0 of its 4 requests broken down)"
	for _, tc := range []struct {
		name    string
		mutate  func(protocols, grpc map[string]Breakdown)
		verdict []string // of each assertion: "ok", "FAIL" or the start of its detail
	}{
		{"exact", nil, []string{"ok", "ok", `grpc["/p.S/Fail"].grpc_status[14] = 2, want == 0`, "ok"}},
		{"a report without breakdowns", func(p, g map[string]Breakdown) { clear(p); clear(g) },
			[]string{"ok", "not evaluated: it reads protocols[…], which the merge cannot add up exactly: these reports have " + oldReport,
				"not evaluated: it reads grpc[…], which the merge cannot add up exactly: these reports have " + oldReport, "not evaluated: it reads grpc[…]"}},
		{"breakdowns without state", func(p, g map[string]Breakdown) {
			x := p["HTTP/2.0"]
			x.State = nil
			p["HTTP/2.0"] = x
		}, []string{"ok", "not evaluated: it reads protocols[…], which the merge cannot add up exactly: these reports' breakdowns have no lossless state (a replayctl older than this one?): shard 1",
			"not evaluated: it reads grpc[…]", "not evaluated: it reads grpc[…]"}},
		{"gRPC methods lumped", func(p, g map[string]Breakdown) {
			g["(other)"], g["/p.S/Check"] = g["/p.S/Check"], Breakdown{}
			delete(g, "/p.S/Check")
		},
			[]string{"ok", "ok", `not evaluated: it reads grpc[…], which the merge cannot add up exactly: these reports lumped the gRPC methods past their first 1000 under "(other)", so a method's calls on them are not all known: shard 1`,
				"not evaluated: it reads grpc[…]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			whole := map[string]*stats.Recorder{}
			ins := []*Input{breakdownInput(t, 0, shard0, whole, nil), breakdownInput(t, 1, shard1, whole, tc.mutate)}
			ins[0].Assertions = asserts
			m, err := Merge(ins, "")
			if err != nil {
				t.Fatal(err)
			}
			var failed int
			for i, a := range m.JSON.Assertions {
				want := tc.verdict[i]
				switch {
				case want == "ok" && !a.OK, want != "ok" && (a.OK || !strings.HasPrefix(a.Detail, want)):
					t.Errorf("assert %s: ok %v (%s), want %s", a.Expr, a.OK, a.Detail, want)
				}
				if !a.OK {
					failed++
				}
			}
			if len(m.Failed) != failed {
				t.Errorf("failed %q, want %d", m.Failed, failed)
			}
			if tc.mutate != nil {
				return
			}
			for key, rec := range whole {
				b, ok := m.JSON.Protocols[key[2:]]
				if key[0] == 'g' {
					b, ok = m.JSON.GRPC[key[2:]]
				}
				want := BreakdownOf(rec.Summary(), nil, b.GRPCStatus)
				got := b
				got.State = nil
				if !ok || !reflect.DeepEqual(got, want) || b.State == nil || b.State.Sent != rec.State().Sent {
					t.Errorf("merged breakdown %s: %+v, want %+v (one run's)", key, b, want)
				}
			}
			if c := m.JSON.GRPC["/p.S/Fail"].GRPCStatus[14]; c != 2 {
				t.Errorf("merged grpc-status 14 of /p.S/Fail: %d, want 2", c)
			}
			// The merged HTML report and text show them, as a run's do:
			// they showed none.
			var rows []string
			for _, r := range m.HTMLData().Breakdown {
				rows = append(rows, fmt.Sprintf("%s %s %d %d %s", r.Kind, r.Name, r.Sent, r.OK, r.GRPCStatus))
			}
			wantRows := []string{"protocol HTTP/1.x 3 3 ", "protocol HTTP/2.0 4 4 ", "grpc /p.S/Check 2 2 0: 2", "grpc /p.S/Fail 2 2 14: 2"}
			if !reflect.DeepEqual(rows, wantRows) {
				t.Errorf("merged HTML report's breakdown rows %q, want %q", rows, wantRows)
			}
			var html, text strings.Builder
			if err := WriteHTML(&html, m.HTMLData()); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(html.String(), "By protocol and gRPC method") || !strings.Contains(html.String(), "/p.S/Fail") {
				t.Error("the merged HTML report has no breakdown table")
			}
			m.WriteText(&text)
			for _, want := range []string{"\n  protocol  HTTP/1.x: sent 3  errors 0  p99 ", "\n  grpc      /p.S/Fail: sent 2  errors 0  p99 9.0ms  grpc-status 14: 2\n"} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("merged text lacks %q:\n%s", want, text.String())
				}
			}
		})
	}
}
