package exprenv

import (
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

func TestExplain(t *testing.T) {
	env := Summary{
		Requests: Requests{Sent: 200, OK: 190, Errors: 10},
		Errors:   Errors{Count: 10, Rate: 0.05},
		Status:   map[int]int{200: 180, 503: 10},
		Latency:  Latency{P50: 41200 * time.Microsecond, P99: 312 * time.Millisecond},
		Rate:     Rates{Scheduled: 100, Achieved: 97.123456},
		Duration: 2*time.Second + 345*time.Millisecond,
	}
	for _, tc := range []struct{ expr, want string }{
		{`latency.p99 < duration("250ms")`, "latency.p99 = 312ms, want < 250ms"},
		{`duration("250ms") > latency.p99`, "latency.p99 = 312ms, want < 250ms"},
		{`errors.rate < 0.01`, "errors.rate = 0.05, want < 0.01"},
		{`status[503] == 0 && requests.sent >= 1000`, "status[503] = 10, want == 0; requests.sent = 200, want >= 1000"},
		{`rate.achieved >= rate.scheduled * 0.99`, "rate.achieved = 97.12, rate.scheduled * 0.99 = 99"},
		{`not (latency.p50 > duration("40ms"))`, "latency.p50 = 41.2ms, want > 40ms"},
		{`duration < duration("1s")`, "duration = 2.345s, want < 1s"},
		{`requests.ok / requests.sent > 0.99`, "requests.ok / requests.sent = 0.95, want > 0.99"},
		{`len(status) > 5`, "len(status) = 2, want > 5"},
		{`latency.p50 < duration("1us")`, "latency.p50 = 41.2ms, want < 1µs"},
		{`latency.max == duration("0s")`, "latency.max = 0s, want == 0s"},
		{`true`, ""},
	} {
		p, err := expr.Compile(tc.expr, append(SummaryOptions(), expr.AsBool())...)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		if got := Explain(p, env); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.expr, got, tc.want)
		}
	}
}
