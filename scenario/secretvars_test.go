package scenario

import (
	"strings"
	"testing"
)

// TestSecretThroughVarsShownAsWritten: a vars: entry that reads a ${VAR}
// with a secret's name (tok: ${API_TOKEN}) carries the secret: a target
// URL, an http sink's url: and an expression that read ${tok} are shown as
// written, as when they read ${API_TOKEN} directly. They showed the value.
func TestSecretThroughVarsShownAsWritten(t *testing.T) {
	const secret = "Zq8vT0kenValue77"
	src := `version: 1
name: s
vars:
  tok: ${API_TOKEN}
  plain: ${HOST_PART}
targets:
  app: {url: "http://127.0.0.1:9/q/${tok}"}
  other: {url: "http://127.0.0.1:9/${plain}"}
jobs:
  j:
    source: {gor: {path: rec.gor}}
    filter: 'req.path != "/${tok}"'
    rewrite:
      - set-header: {name: X-Other, value: '"${tok}"'}
    sink: {http: {targets: [app, other]}}
  k:
    source: {gor: {path: rec.gor}}
    sink: {http: {url: "http://127.0.0.1:9/p/${tok}"}}
`
	env := func(k string) (string, bool) {
		switch k {
		case "API_TOKEN":
			return secret, true
		case "HOST_PART":
			return "visible", true
		}
		return "", false
	}
	s, err := LoadBytes("s.yaml", []byte(src), Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, j := range s.Jobs {
		if j.Filter != nil {
			shown = append(shown, j.Filter.Shown())
		}
		for _, rw := range j.Rewrite {
			shown = append(shown, rw.ShownValue())
		}
		if h := j.Sink.HTTP; h != nil {
			for _, tg := range h.Targets {
				shown = append(shown, tg.Name, tg.Shown())
			}
		}
	}
	all := strings.Join(shown, "\n")
	if strings.Contains(all, secret) {
		t.Errorf("the secret read through vars: is shown:\n%s", all)
	}
	for _, want := range []string{"/q/${tok}", "/p/${tok}", `"${tok}"`, "http://127.0.0.1:9/visible"} {
		if !strings.Contains(all, want) {
			t.Errorf("%q is not shown:\n%s", want, all)
		}
	}
}

// TestAssertPublishedWithoutSecrets: an assertion a secret went into (a
// ${VAR} with a secret's name, or a vars: entry that reads one) is
// published with the parts that read it evaluated (Expr.Published), and
// its other ${VAR} values as they are; one whose secret reaches the
// summary's values as a number has no published form.
func TestAssertPublishedWithoutSecrets(t *testing.T) {
	const secret = "Zq8vT0kenValue77"
	src := `version: 1
name: s
vars:
  tok: ${API_TOKEN}
jobs:
  j:
    source: {gor: {path: rec.gor}}
    sink: {http: {url: "http://127.0.0.1:9"}}
    assert:
      - 'requests.sent >= ${MIN_SENT} && "${API_TOKEN}" != ""'
      - 'requests.sent >= ${MIN_SENT} || "${tok}" == "nope"'
      - 'latency.p99 < duration("${BUDGET}")'
      - 'requests.sent >= len("${API_TOKEN}")'
`
	env := func(k string) (string, bool) {
		switch k {
		case "API_TOKEN":
			return secret, true
		case "MIN_SENT":
			return "2", true
		case "BUDGET":
			return "250ms", true
		}
		return "", false
	}
	s, err := LoadBytes("s.yaml", []byte(src), Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`requests.sent >= 2 && true`, `requests.sent >= 2 || false`, `latency.p99 < duration("250ms")`, ""}
	for i, a := range s.Jobs["j"].Assert {
		got, err := a.Published()
		if strings.Contains(got, secret) || err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("assert %d published %q, %v: the secret", i, got, err)
		}
		if want[i] == "" {
			if err == nil {
				t.Errorf("assert %d published %q, want an error", i, got)
			}
			continue
		}
		if err != nil || got != want[i] {
			t.Errorf("assert %d published %q, %v; want %q", i, got, err, want[i])
		}
	}
}
