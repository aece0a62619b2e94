package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
)

var fixedRows = []Row{
	{Fig: "a", What: "replay throughput", Ours: "41 099 req/s", Ref: "wrk 54 689 req/s", Ratio: "0.75 (goal ≥ 0.5)", Verdict: Met},
	{Fig: "b", What: "lateness p99", Ours: "21.3 ms", Ref: "0 ms", Ratio: "goal ≤ 5 ms", Verdict: NotMet},
	{Fig: "d", What: "write | read", Ours: "1", Ref: "2", Ratio: "0.50", Verdict: Info},
	{Fig: "e", What: "capture", Ours: "—", Ref: "—", Ratio: "—", Verdict: NotMeasured},
}

func TestRenderTable(t *testing.T) {
	got := renderTable(fixedRows[:2])
	want := "" +
		"fig  what               replayctl     reference         ratio / goal       verdict\n" +
		"---  -----------------  ------------  ----------------  -----------------  -------\n" +
		"a    replay throughput  41 099 req/s  wrk 54 689 req/s  0.75 (goal ≥ 0.5)  MET\n" +
		"b    lateness p99       21.3 ms       0 ms              goal ≤ 5 ms        NOT MET\n"
	if got != want {
		t.Errorf("renderTable:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderMarkdown(t *testing.T) {
	res := Results{
		Date:    "2026-01-02 03:04 UTC",
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", GoVersion: "go1.26.8", Kernel: "Linux 6.1"},
		Quick:   true,
		Rows:    fixedRows,
		Notes:   []Note{{Fig: "a", Title: "Replay throughput", Lines: []string{"wrk -t2 -c32 -d5s"}}},
		Elapsed: "3m2s",
	}
	md := renderMarkdown(res)
	for _, want := range []string{
		"# replayctl benchmarks\n",
		"Quick run (`-quick`)",
		"- date: 2026-01-02 03:04 UTC\n",
		"- machine: 2 CPUs (AMD EPYC), Linux 6.1, go1.26.8\n",
		"## How to read this\n",
		"| fig | what | replayctl | reference | ratio / goal | verdict |\n| --- | --- | --- | --- | --- | --- |\n",
		"| a | replay throughput | 41 099 req/s | wrk 54 689 req/s | 0.75 (goal ≥ 0.5) | **MET** |\n",
		"| b | lateness p99 | 21.3 ms | 0 ms | goal ≤ 5 ms | **NOT MET** |\n",
		`| d | write \| read | 1 | 2 | 0.50 | info |` + "\n",
		"| e | capture | — | — | — | **NOT MEASURED** |\n",
		"Goals: 1 met, 1 not met, 1 not measured.\n",
		"### (a) Replay throughput\n\n- wrk -t2 -c32 -d5s\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if full := renderMarkdown(Results{Rows: fixedRows}); strings.Contains(full, "Quick run") {
		t.Error("a full run is marked as quick")
	}
}

func TestRatioRow(t *testing.T) {
	tests := []struct {
		name      string
		ours, ref float64
		goal      float64
		want      Verdict
		ratio     string
	}{
		{"above the goal", 41099, 54689, 0.5, Met, "0.75 (goal ≥ 0.5)"},
		{"exactly the goal", 50, 100, 0.5, Met, "0.50 (goal ≥ 0.5)"},
		{"below the goal", 400, 54689, 0.5, NotMet, "0.01 (goal ≥ 0.5)"},
		{"no reference", 10, 0, 0.5, NotMeasured, "— (goal ≥ 0.5)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ratioRow("a", "x", tt.ours, tt.ref, "req/s", tt.goal)
			if r.Verdict != tt.want || r.Ratio != tt.ratio {
				t.Errorf("ratioRow(%v, %v) = %v %q, want %v %q", tt.ours, tt.ref, r.Verdict, r.Ratio, tt.want, tt.ratio)
			}
		})
	}
}

func TestNum(t *testing.T) {
	tests := []struct {
		in   float64
		want string
	}{
		{0, "0.00"},
		{1.234, "1.23"},
		{12.34, "12.3"},
		{999.6, "1 000"},
		{1234567, "1 234 567"},
		{-54689, "-54 689"},
	}
	for _, tt := range tests {
		if got := num(tt.in); got != tt.want {
			t.Errorf("num(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSelectFigures(t *testing.T) {
	var all string
	for _, f := range figures {
		all += f.id
	}
	tests := []struct {
		only    string
		want    string
		wantErr bool
	}{
		{"", all, false},
		{"c,a", "ac", false},
		{" b , b ", "b", false},
		{"a,z", "", true},
	}
	for _, tt := range tests {
		fs, err := selectFigures(tt.only)
		if (err != nil) != tt.wantErr {
			t.Fatalf("selectFigures(%q) error = %v, want error %v", tt.only, err, tt.wantErr)
		}
		var ids string
		for _, f := range fs {
			ids += f.id
		}
		if ids != tt.want {
			t.Errorf("selectFigures(%q) = %q, want %q", tt.only, ids, tt.want)
		}
	}
}

// BenchmarkCaptureH2 reads the HTTP/2 and HTTP/1.1 pcaps of figure f
// (profile with -cpuprofile to see where capture time goes).
func BenchmarkCaptureH2(b *testing.B) {
	for _, h2 := range []bool{false, true} {
		path := filepath.Join(b.TempDir(), "c.pcap")
		if err := writeCapturePcap(path, h2, 5000); err != nil {
			b.Fatal(err)
		}
		name := "http1"
		if h2 {
			name = "h2"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				n := 0
				if _, err := capture.ReadFile(context.Background(), path, capture.Config{Ports: []uint16{8080}, Responses: true}, func(*message.Message) error { n++; return nil }); err != nil {
					b.Fatal(err)
				}
				if n != 10000 {
					b.Fatalf("%d messages", n)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*10000), "ns/msg")
		})
	}
}

// The open-model figure's target answers each request of a keep-alive
// connection 200, its delay after reading it.
func TestSlowTarget(t *testing.T) {
	const delay = 30 * time.Millisecond
	tg, err := startSlowTarget(delay)
	if err != nil {
		t.Fatal(err)
	}
	defer tg.close()
	c, err := net.Dial("tcp", tg.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	br := bufio.NewReader(c)
	for i, req := range []string{
		"GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
	} {
		t0 := time.Now()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if took := time.Since(t0); resp.StatusCode != 200 || string(body) != "ok\n" || took < delay {
			t.Errorf("request %d: status %d body %q after %v (want 200 \"ok\\n\" after ≥ %v)", i, resp.StatusCode, body, took, delay)
		}
	}
	if n := tg.count(); n != 2 {
		t.Errorf("count %d, want 2", n)
	}
}

func TestSharesOf(t *testing.T) {
	top := `Showing nodes accounting for 4.32s, 100% of 4.32s total
      flat  flat%   sum%        cum   cum%
     0.08s  1.85%  1.85%      3.10s 71.76%  github.com/replayctl/replayctl/capture.(*Assembler).consume
     0.03s  0.69%  2.54%      0.26s  6.02%  github.com/replayctl/replayctl/redact.(*Redactor).Response
     0.01s  0.23%  2.77%      0.12s  2.78%  github.com/replayctl/replayctl/redact.(*Redactor).Request (inline)
         0     0%  2.77%      0.67s 15.51%  github.com/twmb/franz-go/pkg/kgo.(*broker).handleReqs
`
	parts := []cpuPart{
		{"capture", []string{"capture.(*Assembler).consume"}},
		{"redaction", []string{"redact.(*Redactor).Request", "redact.(*Redactor).Response"}},
		{"absent", []string{"kfake.(*Cluster).run"}},
		{"franz", []string{"kgo.(*broker).handleReqs"}},
	}
	for _, tc := range []struct {
		name, top string
		parts     []cpuPart
		want      string
	}{
		{"named frames, summed, absent ones left out", top, parts, "capture 71.8 %; redaction 8.8 %; franz 15.5 %"},
		{"no frame found", top, parts[2:3], "none of the named frames is in the profile"},
		{"empty output", "", parts, "none of the named frames is in the profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sharesOf(tc.top, tc.parts); got != tc.want {
				t.Errorf("sharesOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, stat string
		want       time.Duration
		ok         bool
	}{
		{"plain", "1234 (java) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 60 0 100 0 0", 2810 * time.Millisecond, true},
		{"name with spaces and parentheses", "77 (a (b) c) R 1 77 77 0 -1 0 0 0 0 0 7 3 0 0", 100 * time.Millisecond, true},
		{"truncated", "77 (x) R 1 2", 0, false},
		{"no name", "garbage", 0, false},
		{"not numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 u s 0 0", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseStatCPU(tc.stat)
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseStatCPU = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
	// And a live process: this one has used some CPU.
	if d, ok := procCPU(os.Getpid()); !ok || d < 0 {
		t.Errorf("procCPU(self) = %v, %v", d, ok)
	}
}
