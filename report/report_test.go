package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/replayctl/replayctl/compare"
)

// sampleData builds a realistic report: a 60-second run, a latency spike,
// some errors, and a diff section from real comparisons, one of whose
// bodies tries to inject markup.
func sampleData(t testing.TB) Data {
	d := Data{
		Job: "replay", Scenario: "checkout-peak",
		GeneratedAt: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC),
		Targets:     []string{"http://127.0.0.1:8080"},
		DurationS:   60.2,
		Window: &Window{Name: "checkout-peak", Topic: "checkout-http",
			Partitions: map[int32]Range{0: {0, 3012}, 1: {10, 2990}, 2: {0, 3105}, 3: {5, 2870}}},
		Requests: Totals{Sent: 11962, OK: 11890, Errors: 72,
			ErrorClasses: map[string]int64{"timeout": 51, "connect": 15, "reset": 6}},
		Status:   map[int]int64{200: 11020, 201: 512, 304: 201, 404: 105, 500: 40, 503: 12, 0: 72},
		Latency:  Quantiles{P50: 12.4, P90: 31.8, P99: 88.2, P999: 212.5, Max: 1480},
		Rate:     Rate{Scheduled: 200, Achieved: 199.4},
		Lateness: Lateness{P50: 0.08, P99: 1.9, Max: 14.2},
		Assertions: []Assertion{
			{Expr: `errors.rate < 0.01`, OK: true, Detail: "errors.rate = 0.006"},
			{Expr: `latency.p99 < duration("80ms")`, OK: false, Detail: "latency.p99 = 88.2ms"},
		},
	}
	for s := range 60 {
		spike := 1.0
		if s >= 30 && s < 36 {
			spike = 3.5
		}
		d.Series = append(d.Series, Second{T: s, Requests: int64(190 + (s*37)%21), Errors: int64(s % 7 / 5 * (1 + s%3)),
			P50: 11 + float64(s%5)*0.6*spike, P99: 70 + float64((s*13)%17)*spike*4})
	}
	up := 1.0
	for i := range 14 {
		d.Histogram = append(d.Histogram, Bucket{UpperMs: up, Count: int64(4000 * math.Exp(-math.Pow(float64(i)-5, 2)/6))})
		up *= 2
	}
	d.Histogram = append(d.Histogram, Bucket{UpperMs: math.Inf(1), Count: 3})

	c, err := compare.New(compare.Config{Status: true, Body: true, Headers: []string{"Content-Type"}})
	if err != nil {
		t.Fatal(err)
	}
	agg := compare.NewAggregator()
	resp := func(code int, body string) []byte {
		return fmt.Appendf(nil, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", code, len(body), body)
	}
	for i := range 40 {
		req := fmt.Appendf(nil, "GET /users/%d/cart HTTP/1.1\r\nHost: shop.local\r\n\r\n", i)
		rec := resp(200, fmt.Sprintf(`{"user":%d,"total":%d.50,"items":[{"sku":"A-1","qty":1}],"note":"<b>hi</b>"}`, i, 40+i))
		rep := resp(200, fmt.Sprintf(`{"user":%d,"total":%d.50,"items":[{"sku":"A-1","qty":2}],"note":"<script>alert('x')</script>"}`, i, 40+i))
		if i%3 == 0 {
			rep = rec
		}
		r := c.Compare(rec, rep)
		agg.Add(compare.Endpoint("GET", fmt.Sprintf("/users/%d/cart", i)), req, rec, rep, r, nil)
	}
	for i := range 25 {
		req := fmt.Appendf(nil, "POST /orders HTTP/1.1\r\nHost: shop.local\r\nContent-Length: 0\r\n\r\n")
		rec := resp(201, fmt.Sprintf(`{"id":"o-%d","at":"2026-03-14T15:09:%02d"}`, i, i))
		rep := resp(201, fmt.Sprintf(`{"id":"o-%d","at":"2026-03-14T16:10:%02d"}`, i, i))
		if i == 7 {
			rep = resp(500, `{"error":"db down"}`)
		}
		r := c.Compare(rec, rep)
		var noise []compare.Diff
		for _, df := range r.Diffs {
			if df.Path == "$.at" {
				noise = append(noise, df)
			}
		}
		agg.Add("POST /orders", req, rec, rep, r, noise)
	}
	s := agg.Summary()
	d.Diff = &s
	return d
}

func render(t *testing.T, d Data) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteHTML(&buf, d); err != nil {
		t.Fatalf("WriteHTML: %v", err)
	}
	return buf.String()
}

// checkSelfContained fails when an attribute or a style sheet refers to a
// resource: http(s) URLs, protocol-relative URLs, @import, url(), or a
// script/link/img/iframe element. URLs in text content are allowed.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(page))
	inStyle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if z.Err() != io.EOF {
				t.Fatalf("tokenize: %v", z.Err())
			}
			return
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			switch tok.Data {
			case "script", "link", "img", "iframe", "object", "embed", "use", "image":
				t.Errorf("page has a <%s> element", tok.Data)
			}
			inStyle = tok.Data == "style"
			for _, a := range tok.Attr {
				v := strings.ToLower(a.Val)
				if strings.Contains(v, "http:") || strings.Contains(v, "https:") || strings.HasPrefix(v, "//") ||
					strings.Contains(v, "url(") || a.Key == "src" || a.Key == "href" || a.Key == "xlink:href" {
					t.Errorf("<%s %s=%q> refers to a resource", tok.Data, a.Key, a.Val)
				}
			}
		case html.TextToken:
			if inStyle {
				css := strings.ToLower(string(z.Text()))
				for _, bad := range []string{"http:", "https:", "@import", "url(", "@font-face"} {
					if strings.Contains(css, bad) {
						t.Errorf("style sheet contains %q", bad)
					}
				}
			}
		case html.EndTagToken:
			inStyle = false
		}
	}
}

func TestWriteHTML(t *testing.T) {
	d := sampleData(t)
	page := render(t, d)
	checkSelfContained(t, page)
	if n := strings.Count(page, "<svg"); n != 5 {
		t.Errorf("page has %d <svg> charts, want 5", n)
	}
	for _, want := range []string{
		"<!DOCTYPE html>", "checkout-peak · replay", `class="verdict fail"`, "1 of 2 assertions failed",
		"<polyline", `class="bar"`, "<details>", "GET /users/{id}/cart", "$.items[*].qty",
		"&lt;script&gt;alert(", "Latency over time", "Status codes", "Send lateness",
		"timeout", "checkout-http", "http://127.0.0.1:8080", // target as text
		"11\u202f962", "POST /orders $.at",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>hi</b>") {
		t.Error("a body was not escaped")
	}
	// Every tag the template opens is closed (a cheap well-formedness check).
	for _, tag := range []string{"svg", "details", "table", "div", "pre", "section"} {
		if o, c := len(regexp.MustCompile(`<`+tag+`[\s>]`).FindAllString(page, -1)), strings.Count(page, "</"+tag+">"); o != c {
			t.Errorf("<%s>: %d opened, %d closed", tag, o, c)
		}
	}
}

func TestWriteHTMLEmptyAndEdgeData(t *testing.T) {
	for name, d := range map[string]Data{
		"zero": {},
		"single point": {Job: "j", Series: []Second{{T: 0, Requests: 1, P50: 3, P99: 3}},
			Histogram: []Bucket{{UpperMs: 5, Count: 1}}, Status: map[int]int64{200: 1},
			Assertions: []Assertion{{Expr: "true", OK: true}}},
		"non-finite": {Series: []Second{{T: 1, P50: math.NaN(), P99: math.Inf(1)}, {T: 2, P50: 1, P99: 2}},
			Latency: Quantiles{P50: math.NaN()}, Rate: Rate{Achieved: math.Inf(1)},
			Histogram: []Bucket{{UpperMs: math.NaN(), Count: 0}}},
		"empty diff": {Diff: &compare.DiffSummary{}},
	} {
		t.Run(name, func(t *testing.T) {
			page := render(t, d)
			checkSelfContained(t, page)
			if strings.Count(page, "<svg") != 5 || strings.Contains(page, "NaN") || strings.Contains(page, "Inf") {
				t.Fatalf("bad page:\n%s", page)
			}
		})
	}
	if page := render(t, Data{}); !strings.Contains(page, "No data") || !strings.Contains(page, "No assertions") {
		t.Error("empty data should say so")
	}
}

func TestDataJSON(t *testing.T) {
	b, err := json.Marshal(sampleData(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"job":"replay"`, `"requests":{"sent":11962`, `"status":{"0":72`, `"latency":{"p50":12.4`,
		`"rate":{"scheduled":200`, `"lateness":{"p50":0.08`, `"partitions":{"0":{"start":0,"end":3012}`, `"diff":{"compared":65`, `{"upper_ms":null,"count":3}`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("JSON lacks %s", key)
		}
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   string
	}{
		{0, 100, "[0 20 40 60 80 100]"},
		{0, 88.2, "[0 20 40 60 80 100]"},
		{0, 0, "[0 0.2 0.4 0.6 0.8 1]"},
		{0, 1480, "[0 500 1000 1500]"},
		{0, 0.37, "[0 0.1 0.2 0.3 0.4]"},
		{5, 5, "[2 3 4 5 6 7 8]"},
		{0, 59, "[0 20 40 60]"},
		{math.NaN(), 3, "[0 0.2 0.4 0.6 0.8 1]"},
	} {
		ticks, _ := niceTicks(tc.lo, tc.hi, 5)
		if got := fmt.Sprint(ticks); got != tc.want {
			t.Errorf("niceTicks(%v, %v) = %s, want %s", tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for got, want := range map[string]string{
		fmtMs(0.42): "420 µs", fmtMs(3.14159): "3.14 ms", fmtMs(88.25): "88.2 ms", fmtMs(1480): "1.48 s",
		fmtPct(0.0061): "0.61%", fmtPct(0.5): "50.0%", fmtPct(0.00001): "<0.1%",
		fmtCount(1234567): "1\u202f234\u202f567", fmtCount(-12): "-12", fmtRate(199.4): "199.4/s", fmtRate(2500.2): "2\u202f500/s",
		tickLabel(25000, 5000): "25k", tickLabel(0.30000000000000004, 0.1): "0.3", tickLabel(1.5e6, 5e5): "1.5M",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// TestChromiumRender opens a real report in headless Chromium: the DOM must
// hold the charts and the console no errors; the screenshot stays in the
// test's temporary directory (and is copied to $REPLAYCTL_ARTIFACTS when
// set).
func TestChromiumRender(t *testing.T) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		t.Fatal("chromium is required to check the rendered report (bash .ci/run installs it, or apt-get install -y chromium)")
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "report.html")
	if err := os.WriteFile(file, []byte(render(t, sampleData(t))), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
			"--disable-background-networking", "--disable-component-update", "--disable-sync",
			"--disable-dev-shm-usage", "--enable-logging=stderr", "--v=0",
			"--user-data-dir=" + t.TempDir()}
		cmd := exec.Command(bin, append(append(base, args...), "file://"+file)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		cmd.Dir = dir
		if err := cmd.Start(); err != nil {
			t.Fatalf("start chromium: %v", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("chromium: %v\n%s", err, errb.String())
			}
		case <-time.After(90 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Fatalf("chromium did not finish in 90s\n%s", errb.String())
		}
		return out.String(), errb.String()
	}

	dom, logs := run("--dump-dom")
	if n := strings.Count(dom, "<svg"); n != 5 {
		t.Errorf("rendered DOM has %d <svg> elements, want 5", n)
	}
	for _, want := range []string{"<polyline", "<details>", "Response comparison"} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered DOM lacks %q", want)
		}
	}
	shot := filepath.Join(dir, "report.png")
	_, logs2 := run("--screenshot="+shot, "--window-size=1280,2400", "--hide-scrollbars")
	for _, l := range strings.Split(logs+logs2, "\n") {
		if strings.Contains(l, "Uncaught") || strings.Contains(l, ":CONSOLE") ||
			strings.Contains(l, "ERR_FILE_NOT_FOUND") || strings.Contains(l, "net::ERR") {
			t.Errorf("console: %s", l)
		}
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot missing or tiny: %v", err)
	}
	t.Logf("screenshot %s (%d bytes)", shot, st.Size())
	if out := os.Getenv("REPLAYCTL_ARTIFACTS"); out != "" {
		png, _ := os.ReadFile(shot)
		if err := os.MkdirAll(out, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"report.png": png, "report.html": []byte(render(t, sampleData(t)))} {
			if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestWriteHTMLInterrupted: a job stopped by a signal says so in the
// verdict, before its assertions' results.
func TestWriteHTMLInterrupted(t *testing.T) {
	d := sampleData(t)
	d.Interrupted = true
	page := render(t, d)
	for _, want := range []string{`class="verdict interrupted"`, "Interrupted", "stopped by a signal before its end", "1 of 2 assertions failed"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `class="verdict fail"`) {
		t.Error("an interrupted job's verdict is not Interrupted")
	}
	data, err := json.Marshal(d)
	if err != nil || !strings.Contains(string(data), `"interrupted":true`) {
		t.Errorf("JSON = %s, %v; want interrupted true", data, err)
	}
}
