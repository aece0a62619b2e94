package exprenv

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"
)

// TestFoldSecrets: the parts of an assertion that read a secret are
// evaluated to true or false, so the text published for a merge holds no
// secret and the verdict on any totals is the one of the expression with
// the secret in it.
func TestFoldSecrets(t *testing.T) {
	const secret = "s3cr3t-t0ken"
	p0 := SecretPlaceholder(0)
	envs := []Summary{
		{Requests: Requests{Sent: 2, OK: 2}},
		{Requests: Requests{Sent: 5, OK: 1, Errors: 4}, Errors: Errors{Count: 4, Rate: 0.8}, Latency: Latency{P99: 300 * time.Millisecond}},
	}
	for _, tc := range []struct {
		written, want string // written: $ stands for the secret
		err           bool
	}{
		{written: `"$" != "" && requests.sent > 1`, want: `true && requests.sent > 1`},
		{written: `requests.sent == 2 || "$" == "nope"`, want: `requests.sent == 2 || false`},
		{written: `"$" in ["a", "b"] ? latency.p99 < duration("1ms") : errors.rate < 0.5`, want: `false ? latency.p99 < duration("1ms") : errors.rate < 0.5`},
		{written: `len("$") > 3 and not ("Bearer $" startsWith "x") and requests.ok >= 1`, want: `len("`},
		{written: `requests.sent >= len("$")`, err: true},
		{written: `requests.sent > 0 && "$" + "" == "x" + string(requests.sent)`, err: true},
		{written: `grpc["$"].requests.sent == 0`, err: true},
	} {
		template := strings.ReplaceAll(tc.written, "$", p0)
		source := strings.ReplaceAll(tc.written, "$", secret)
		got, err := FoldSecrets(template, source)
		if tc.err {
			if !errors.Is(err, ErrNotFoldable) {
				t.Errorf("%s: got %q, %v; want ErrNotFoldable", tc.written, got, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.written, err)
			continue
		}
		if strings.Contains(got, secret) || strings.Contains(got, "s3cr3t") {
			t.Errorf("%s: folded %q holds the secret", tc.written, got)
		}
		if tc.want != "" && tc.want != `len("` && got != tc.want {
			t.Errorf("%s: folded %q, want %q", tc.written, got, tc.want)
		}
		orig, err := expr.Compile(source, append(SummaryOptions(), expr.AsBool())...)
		if err != nil {
			t.Fatal(err)
		}
		folded, err := expr.Compile(got, append(SummaryOptions(), expr.AsBool())...)
		if err != nil {
			t.Fatalf("%s: folded %q: %v", tc.written, got, err)
		}
		for _, env := range envs {
			a, _ := expr.Run(orig, env)
			b, _ := expr.Run(folded, env)
			if a != b {
				t.Errorf("%s: on %+v the expression says %v, folded %q says %v", tc.written, env.Requests, a, got, b)
			}
		}
	}
}

// TestFoldSecretValueIsAName: a secret whose value is a name of the
// summary (requests, duration) reads the results where it stands, bare:
// the part around it is not evaluated at fold time. `$.sent > 0` with the
// value requests folded to false, the verdict on an empty summary, and the
// merge failed a run that sent requests.
func TestFoldSecretValueIsAName(t *testing.T) {
	for _, tc := range []struct{ written, secret string }{
		{`$.sent > 0 || "x" == ""`, "requests"},
		{`$ > duration("1s")`, "duration"},
		{`$.p99 < duration("1s") && requests.sent > 0`, "latency"},
	} {
		template := strings.ReplaceAll(tc.written, "$", SecretPlaceholder(0))
		source := strings.ReplaceAll(tc.written, "$", tc.secret)
		got, err := FoldSecrets(template, source)
		if !errors.Is(err, ErrNotFoldable) {
			t.Errorf("%s: folded %q, %v; want ErrNotFoldable", source, got, err)
		}
	}
}
