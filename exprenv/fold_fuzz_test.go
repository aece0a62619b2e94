package exprenv

import (
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

// FuzzFoldSecrets writes an assertion with $ and @ where two secrets'
// values stand (as a scenario interpolates them): when FoldSecrets folds
// it, the text it returns holds no placeholder and no secret's value,
// compiles as an assertion, and gives the verdict the expression with the
// secrets in it gives, on summaries made of the fuzzed numbers..
func FuzzFoldSecrets(f *testing.F) {
	for _, s := range []struct{ written, a, b string }{
		{`"$" != "" && requests.sent > 1`, "s3cr3t-t0ken", "x"},
		{`requests.sent == 2 || "$" == "nope"`, "s3cr3t-t0ken", "x"},
		{`"$" in ["a", "b"] ? latency.p99 < duration("1ms") : errors.rate < 0.5`, "b", "x"},
		{`len("$") > 3 and not ("Bearer $" startsWith "x") and requests.ok >= 1`, "s3cr3t", "x"},
		{`requests.sent >= len("$")`, "s3cr3t", "x"},
		{`grpc["$"].requests.sent == 0`, "s3cr3t", "x"},
		{`"$" == "@" || status[200] > 0 && !("@" matches "^a")`, "abc", "abd"},
		{`let t = "$"; t != "" && requests.sent > 0`, "tok", "x"},
		{`all(["$", "@"], # != "") && diff.mismatches == 0`, "k1", "k2"},
		{`duration("$") < latency.p50 || int("@") > 3`, "10ms", "7"},
		{`("$" + "@") contains "x" == (requests.errors > 0)`, "ax", "b"},
		{`$ > 2 and "@" != ""`, "5", "pw"},
		{`"$" endsWith "n" ? true : requests.sent > 0`, "token", "pw"},
	} {
		f.Add(s.written, s.a, s.b, uint16(5), uint16(3), uint16(2), int64(250))
	}
	f.Fuzz(func(t *testing.T, written, a, b string, sent, ok, errs uint16, p99 int64) {
		if len(written) > 400 || a == "" || b == "" || a == b {
			return
		}
		template := strings.NewReplacer("$", SecretPlaceholder(0), "@", SecretPlaceholder(1)).Replace(written)
		source := strings.NewReplacer("$", a, "@", b).Replace(written)
		folded, err := FoldSecrets(template, source)
		if err != nil {
			return
		}
		if strings.Contains(folded, secretMark) {
			t.Fatalf("FoldSecrets(%q, %q) = %q: a placeholder is left", template, source, folded)
		}
		plain := strings.NewReplacer("$", "", "@", "").Replace(written)
		for _, s := range []string{a, b} {
			if len(s) >= 3 && strings.Contains(folded, s) && !strings.Contains(plain, s) && !strings.Contains("true false", s) {
				t.Fatalf("FoldSecrets(%q, %q) = %q holds the secret %q", template, source, folded, s)
			}
		}
		fp, err := expr.Compile(folded, append(SummaryOptions(), expr.AsBool())...)
		if err != nil {
			t.Fatalf("FoldSecrets(%q, %q) = %q, which does not compile: %v", template, source, folded, err)
		}
		op, err := expr.Compile(source, append(SummaryOptions(), expr.AsBool())...)
		if err == nil {
			err = CheckLiterals(op)
		}
		if err != nil {
			return // refused by the scenario anyway
		}
		sum := func(s, o, e int, p time.Duration) Summary {
			rate := 0.0
			if s > 0 {
				rate = float64(e) / float64(s)
			}
			return Summary{
				Requests: Requests{Sent: s, OK: o, Errors: e}, Errors: Errors{Count: e, Rate: rate},
				Status:  map[int]int{200: o, 500: e},
				Latency: Latency{P50: p / 2, P90: p, P99: p, P999: p, Max: 2 * p, Mean: p / 2},
				Rate:    Rates{Scheduled: float64(s), Achieved: float64(o)}, Lateness: Lateness{P50: p, P99: p, Max: p},
				Diff:      Diff{Compared: s, Mismatches: e, Rate: rate},
				Duration:  time.Duration(s) * time.Second,
				Protocols: map[string]Breakdown{"HTTP/1.x": {Requests: Requests{Sent: s, OK: o, Errors: e}}},
				GRPC:      map[string]Breakdown{a: {Requests: Requests{Sent: o}}, "/s/M": {Requests: Requests{Sent: e}}},
			}
		}
		for _, env := range []Summary{{}, sum(int(sent), int(ok), int(errs), time.Duration(p99)*time.Millisecond), sum(int(ok), int(errs), int(sent), time.Duration(p99))} {
			want, werr := expr.Run(op, env)
			got, gerr := expr.Run(fp, env)
			if (werr == nil) != (gerr == nil) || werr == nil && want != got {
				t.Fatalf("%q folded %q: on %+v the expression says %v (%v), the folded one %v (%v)", source, folded, env.Requests, want, werr, got, gerr)
			}
		}
	})
}
