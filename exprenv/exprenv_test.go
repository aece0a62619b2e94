package exprenv

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

func TestRequestExpressions(t *testing.T) {
	t.Setenv("EXPRENV_TEST", "yes")
	req := NewRequest("POST", "/v1/cart?id=7&debug=1&id=8", "HTTP/1.1",
		map[string]string{"host": "shop.local", "x-user-id": "u-42", "Content-Type": "application/json"},
		[]byte(`{"card":{"number":"4111"},"items":[1,2,3]}`), true)
	req.Time = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	req.Conn, req.Src, req.ID = "c1", "10.0.0.1:5555", "abc"
	env := NewRequestEnv(req)

	tests := []struct {
		src  string
		want any
	}{
		{`req.method`, "POST"},
		{`req.path`, "/v1/cart"},
		{`req.query`, "id=7&debug=1&id=8"},
		{`req.url`, "/v1/cart?id=7&debug=1&id=8"},
		{`req.proto`, "HTTP/1.1"},
		{`req.host`, "shop.local"},
		{`req.headers["X-User-Id"]`, "u-42"},
		{`req.header("X-USER-ID")`, "u-42"},
		{`req.header("x-user-id")`, "u-42"},
		{`req.header("Missing")`, ""},
		{`req.param("id")`, "7"},
		{`req.param("nope")`, ""},
		{`req.json.card.number`, "4111"},
		{`len(req.json.items)`, 3},
		{`req.body contains "4111"`, true},
		{`req.time.Year()`, 2026},
		{`req.conn + req.src + req.id`, "c110.0.0.1:5555abc"},
		{`env("EXPRENV_TEST")`, "yes"},
		{`req.path startsWith "/v1" && req.method != "OPTIONS"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := expr.Compile(tt.src, RequestOptions()...)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			got, err := expr.Run(p, env)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRequestCompileErrors(t *testing.T) {
	for _, src := range []string{`req.nope`, `req.method + 1`, `req.header(1)`, `nope`} {
		if _, err := expr.Compile(src, RequestOptions()...); err == nil {
			t.Errorf("%s: compiled, want error", src)
		}
	}
	if _, err := expr.Compile(`req.method`, append(RequestOptions(), expr.AsBool())...); err == nil {
		t.Error("req.method as bool compiled")
	}
	if _, err := expr.Compile(`req.path`, append(RequestOptions(), expr.AsKind(reflect.String))...); err != nil {
		t.Errorf("req.path as string: %v", err)
	}
}

func TestNewRequestForms(t *testing.T) {
	tests := []struct {
		uri, path, query, host string
	}{
		{"/a", "/a", "", ""},
		{"/a?x=1", "/a", "x=1", ""},
		{"http://h.example:81/p?q", "/p", "q", "h.example:81"},
		{"http://h.example", "/", "", "h.example"},
		{"*", "*", "", ""},
	}
	for _, tt := range tests {
		r := NewRequest("GET", tt.uri, "HTTP/1.1", nil, nil, true)
		if r.Path != tt.path || r.Query != tt.query || r.Host != tt.host || r.JSON != nil {
			t.Errorf("%s: got path %q query %q host %q json %v", tt.uri, r.Path, r.Query, r.Host, r.JSON)
		}
	}
	r := NewRequest("GET", "/?%zz=1;a", "HTTP/1.1", nil, []byte("not json"), true)
	if r.Header("x") != "" || r.Param("zz") != "" || r.JSON != nil {
		t.Errorf("bad query/body handling: %+v", r)
	}
}

func TestUsesJSON(t *testing.T) {
	tests := []struct {
		src  string
		want bool
	}{
		{`req.json.a == 1`, true},
		{`req["json"] != nil`, true},
		{`req.body contains "json"`, false},
		{`req.method == "GET"`, false},
	}
	for _, tt := range tests {
		p, err := expr.Compile(tt.src, RequestOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		if got := UsesJSON(p); got != tt.want {
			t.Errorf("%s: UsesJSON = %v, want %v", tt.src, got, tt.want)
		}
	}
	if UsesJSON(nil) {
		t.Error("UsesJSON(nil) = true")
	}
}

func TestSummaryExpressions(t *testing.T) {
	s := Summary{
		Requests: Requests{Sent: 100, OK: 99, Errors: 1},
		Errors:   Errors{Count: 1, Rate: 0.01},
		Status:   map[int]int{200: 99, 503: 1},
		Latency:  Latency{P50: 10 * time.Millisecond, P90: 50 * time.Millisecond, P99: 200 * time.Millisecond, P999: 300 * time.Millisecond, Max: time.Second, Mean: 20 * time.Millisecond},
		Rate:     Rates{Scheduled: 100, Achieved: 98.5},
		Lateness: Lateness{P50: time.Millisecond, P99: 5 * time.Millisecond, Max: 9 * time.Millisecond},
		Diff:     Diff{Compared: 100, Mismatches: 2, Rate: 0.02},
		Duration: 90 * time.Second,
	}
	tests := []struct {
		src  string
		want bool
	}{
		{`errors.rate < 0.01`, false},
		{`errors.rate <= 0.01`, true},
		{`latency.p99 < duration("250ms")`, true},
		{`latency.max < duration("250ms")`, false},
		{`requests.sent == 100 && requests.ok == 99 && requests.errors == 1`, true},
		{`status[200] == 99 && status[503] == 1 && status[404] == 0`, true},
		{`rate.achieved >= rate.scheduled * 0.95`, true},
		{`lateness.p99 < duration("10ms") && lateness.max < duration("10ms") && lateness.p50 > duration("0s")`, true},
		{`diff.rate < 0.05 && diff.mismatches == 2 && diff.compared == 100`, true},
		{`duration > duration("1m") && duration < duration("2m")`, true},
		{`latency.p50 + latency.p90 == duration("60ms") && latency.mean > duration("0s") && latency.p999 > latency.p99`, true},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			p, err := expr.Compile(tt.src, append(SummaryOptions(), expr.AsBool())...)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if err := CheckLiterals(p); err != nil {
				t.Fatalf("CheckLiterals: %v", err)
			}
			got, err := expr.Run(p, s)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSummaryCompileErrors(t *testing.T) {
	for _, src := range []string{`status["200"] > 0`, `latency.p42 > 0`, `errors.rate`, `requests.sent +`} {
		if _, err := expr.Compile(src, append(SummaryOptions(), expr.AsBool())...); err == nil {
			t.Errorf("%s: compiled, want error", src)
		}
	}
}

func TestCheckLiterals(t *testing.T) {
	p, err := expr.Compile(`latency.p99 < duration("250 parsecs")`, append(SummaryOptions(), expr.AsBool())...)
	if err != nil {
		if !strings.Contains(err.Error(), "parsecs") {
			t.Fatalf("compile error does not name the literal: %v", err)
		}
		return
	}
	if err := CheckLiterals(p); err == nil || !strings.Contains(err.Error(), "parsecs") {
		t.Fatalf("CheckLiterals = %v, want an error naming the literal", err)
	}
}

func TestReads(t *testing.T) {
	for _, tc := range []struct {
		src       string
		protocols bool
		grpc      bool
	}{
		{`requests.sent > 0`, false, false},
		{`protocols["HTTP/2.0"].requests.sent == 3`, true, false},
		{`grpc["/p.S/M"].grpc_status[14] == 0`, false, true},
		{`all(keys(grpc), {grpc[#].errors.count == 0}) || len(protocols) > 1`, true, true},
		{`let p = protocols["HTTP/1.x"]; p.latency.p99 < duration("1s")`, true, false},
		{`"grpc" != "protocols"`, false, false},
	} {
		p, err := expr.Compile(tc.src, append(SummaryOptions(), expr.AsBool())...)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := Reads(p, "protocols"); got != tc.protocols {
			t.Errorf("%s: reads protocols %v, want %v", tc.src, got, tc.protocols)
		}
		if got := Reads(p, "grpc"); got != tc.grpc {
			t.Errorf("%s: reads grpc %v, want %v", tc.src, got, tc.grpc)
		}
	}
}
