package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) LookupFunc {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustLoad(t *testing.T, src string, opts Options) *Scenario {
	t.Helper()
	s, err := LoadBytes("s.yaml", []byte(src), opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return s
}

func TestExamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := Load(f, Options{Env: envOf(nil)}); err != nil {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestQuickstartModel(t *testing.T) {
	s, err := Load("../examples/quickstart.yaml", Options{Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := filepath.Abs("../examples")
	if s.Name != "quickstart" || !s.Kafka.Embedded || s.Kafka.Compression != "lz4" || s.Kafka.CatalogTopic != "replayctl.windows" {
		t.Errorf("scenario/kafka: %+v", s.Kafka)
	}
	if s.Kafka.DataDir.IsSet() {
		t.Errorf("data dir %q", s.Kafka.DataDir.Abs)
	}
	tp := s.Topics["traffic"]
	if tp.Name != "quickstart-http" || tp.Partitions != 2 || !tp.Create || tp.ReplicationFactor != 1 {
		t.Errorf("topic %+v", tp)
	}
	echo := s.Targets["echo"]
	if echo.Builtin != "echo" || echo.Timeout != 2*time.Second {
		t.Errorf("target %+v", echo)
	}
	rec, rep := s.Jobs["record"], s.Jobs["replay"]
	if rec.Source.Kind != SourcePcap || rec.Source.Pcap.Path.Raw != "quickstart.pcap" || rec.Source.Pcap.Path.Abs != filepath.Join(dir, "quickstart.pcap") || rec.Source.Pcap.Ports[0] != 8080 {
		t.Errorf("record source %+v %+v", rec.Source, rec.Source.Pcap)
	}
	if rec.Sink.Kind != SinkKafka || rec.Sink.Kafka.Topic != tp || rec.Sink.Kafka.Compression != "lz4" || rec.SaveWindow != "quickstart" {
		t.Errorf("record sink %+v", rec.Sink)
	}
	if !rec.Redact.Defaults || rec.Redact.Mode != "mask" || rec.Redact.Mask != "REDACTED" {
		t.Errorf("redact defaults %+v", rec.Redact)
	}
	if rep.Source.Kind != SourceWindow || rep.Source.Window != "quickstart" || rep.Source.WindowRef != nil {
		t.Errorf("replay source %+v", rep.Source)
	}
	if rep.Speed != (Speed{Factor: 2}) || rep.Amplify != 1 || rep.Loop != (Loop{Count: 1}) {
		t.Errorf("pacing %+v %v %+v", rep.Speed, rep.Amplify, rep.Loop)
	}
	if len(rep.Rewrite) != 1 || rep.Rewrite[0].Action != SetHeader || rep.Rewrite[0].Name != "X-Replay" || rep.Rewrite[0].Value.Program == nil {
		t.Errorf("rewrite %+v", rep.Rewrite)
	}
	if h := rep.Sink.HTTP; h == nil || len(h.Targets) != 1 || h.Targets[0] != echo || h.Workers != 8 || h.Mode != "mirror" {
		t.Errorf("http sink %+v", rep.Sink.HTTP)
	}
	if rep.Report.JSON.Abs != filepath.Join(dir, "reports/quickstart.json") || rep.Report.HTML.Abs != filepath.Join(dir, "reports/quickstart.html") {
		t.Errorf("report %+v", rep.Report)
	}
	if len(rep.Assert) != 1 || rep.Assert[0].Program == nil || rep.Assert[0].Pos.Line != 22 || rep.Assert[0].Pos.Col != 14 {
		t.Errorf("assert %+v", rep.Assert)
	}
	if rep.Pos.Line != 14 || rep.Sink.Pos.Line != 20 || rep.Source.Pos.Line != 16 {
		t.Errorf("positions job %v sink %v source %v", rep.Pos, rep.Sink.Pos, rep.Source.Pos)
	}
	order, err := JobOrder(s, nil)
	if err != nil || len(order) != 2 || order[0] != rec || order[1] != rep {
		t.Errorf("JobOrder = %v, %v", order, err)
	}
}

func TestFullModel(t *testing.T) {
	s, err := Load("../examples/replay-window.yaml", Options{Env: envOf(map[string]string{"TARGET": "https://staging.internal:8443/base"})})
	if err != nil {
		t.Fatal(err)
	}
	j := s.Jobs["replay"]
	if j.Speed.Factor != 4 || j.Rate.PerSecond != 500 || j.MaxGap != time.Second {
		t.Errorf("pacing %+v %+v %v", j.Speed, j.Rate, j.MaxGap)
	}
	if u := s.Targets["staging"].URL; u.Host != "staging.internal:8443" || u.Scheme != "https" {
		t.Errorf("target url %v", u)
	}
	if w := j.Source.WindowRef; w == nil || w.Kind != WindowRecording || w.Recording != "checkout-live" || w.Topic != s.Topics["traffic"] {
		t.Errorf("window %+v", w)
	}
	if len(j.Rewrite) != 6 || j.Rewrite[2].If == nil || j.Rewrite[4].JSONPath != "$.user.id" || j.Rewrite[5].Action != Drop {
		t.Errorf("rewrites %+v", j.Rewrite)
	}
	if j.Compare == nil || !j.Compare.Status || j.Compare.Headers[0] != "Content-Type" {
		t.Errorf("compare %+v", j.Compare)
	}
	if !s.Safety.Denies("prod.example.com") || !s.Safety.Denies("api.prod.example.com") || !s.Safety.Denies("10.1.2.3") ||
		s.Safety.Denies("127.0.0.1") || s.Safety.Denies("example.com") {
		t.Errorf("safety %+v", s.Safety)
	}

	s, err = Load("../examples/time-range.yaml", Options{Env: envOf(nil)})
	if err != nil {
		t.Fatal(err)
	}
	j = s.Jobs["inspect"]
	if j.Speed.Max || j.Speed.Factor != 1 || j.Loop.Count != 1 || j.Sample.Percent != 10 || j.Sample.By == nil || j.Filter == nil || j.Sink.Stdout.Format != "summary" {
		t.Errorf("inspect %+v", j)
	}
	if w := s.Windows["recent"]; w.Kind != WindowLast || w.Last != 10*time.Minute || !w.AllowPartial {
		t.Errorf("window %+v", w)
	}

	s, err = Load("../examples/record-live.yaml", Options{Env: envOf(map[string]string{"RECORD_FOR": "2m"})})
	if err != nil {
		t.Fatal(err)
	}
	j = s.Jobs["record"]
	if c := j.Source.Capture; c == nil || c.Interface != "lo" || c.RingSize != 64<<20 || c.MaxBody != 1<<20 || c.Snaplen != 262144 {
		t.Errorf("capture %+v", c)
	}
	if j.Stop.After != 2*time.Minute || len(j.Redact.Patterns) != 1 || s.Topics["traffic"].Config["retention.ms"] != "604800000" {
		t.Errorf("record %+v", j)
	}
}

const interpBase = `version: 1
name: t
vars:
  target: ${TARGET:-http://127.0.0.1:8080}
  greeting: hello-${WHO}
targets:
  t: {url: "${target}"}
jobs:
  j:
    description: "${greeting} costs $$5, ${A:-${B:-nested}}"
    source: {window: w}
    speed: ${SPEED:-2}
    sink: {http: {target: t}}
`

func TestInterpolation(t *testing.T) {
	s := mustLoad(t, interpBase, Options{Env: envOf(map[string]string{"WHO": "bob"})})
	if got := s.Targets["t"].URL.String(); got != "http://127.0.0.1:8080" {
		t.Errorf("url %q", got)
	}
	if got := s.Jobs["j"].Description; got != "hello-bob costs $5, nested" {
		t.Errorf("description %q", got)
	}
	if s.Jobs["j"].Speed.Factor != 2 || s.Vars["target"] != "http://127.0.0.1:8080" {
		t.Errorf("speed %+v vars %v", s.Jobs["j"].Speed, s.Vars)
	}
	// process env wins over defaults; vars win over env
	s = mustLoad(t, interpBase, Options{Env: envOf(map[string]string{"WHO": "x", "TARGET": "https://h:1", "SPEED": "0.5", "target": "ignored", "B": "b"})})
	if s.Targets["t"].URL.String() != "https://h:1" || s.Jobs["j"].Speed.Factor != 0.5 || !strings.HasSuffix(s.Jobs["j"].Description, ", b") {
		t.Errorf("with env: %v %+v %q", s.Targets["t"].URL, s.Jobs["j"].Speed, s.Jobs["j"].Description)
	}
	// a whole-reference value that is a word stays a string (and fails the schema)
	ds := loadErr(t, interpBase, Options{Env: envOf(map[string]string{"WHO": "x", "SPEED": "fast"})})
	wantDiag(t, ds, "12:12", "jobs.j.speed: must be a number")

	tests := []struct {
		name, src, at, fragment string
	}{
		{"unset", "version: 1\nname: ${NAME}\n", "2:7", "${NAME} is not set: set it where the scenario runs (environment, --env-file), or give it a default: ${NAME:-…}"},
		{"required message", "version: 1\nname: ${NAME:?set NAME to the run name}\n", "2:7", "NAME: set NAME to the run name"},
		{"required empty", "version: 1\nname: ${EMPTY:?need it}\n", "2:7", "EMPTY: need it"},
		{"required, no message", "version: 1\nname: ${NAME:?}\n", "2:7", "${NAME} is not set: set it where"},
		// a reference in the message is shown as written, never its value
		{"required, message reads a secret", "version: 1\nname: ${NAME:?not ${SECRET} but $$x}\n", "2:7", "NAME: not ${SECRET} but $x"},
		{"unterminated", "version: 1\nname: ${NAME\n", "2:7", "unterminated ${"},
		{"bad name", "version: 1\nname: ${1X}\n", "2:7", "invalid variable reference"},
		{"bad op", "version: 1\nname: ${X:=y}\n", "2:7", "invalid variable reference"},
		{"in vars", "version: 1\nname: t\nvars: {a: \"${NOPE}\"}\n", "3:11", "${NOPE} is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := loadErr(t, tt.src, Options{Env: envOf(map[string]string{"EMPTY": "", "SECRET": "hunter2-value"})})
			if strings.Contains(ds.Error(), "hunter2") {
				t.Errorf("a value is printed:\n%v", ds)
			}
			wantDiag(t, ds, tt.at, tt.fragment)
		})
	}
}

func TestInterpolateFunc(t *testing.T) {
	env := envOf(map[string]string{"A": "1", "E": ""})
	tests := []struct {
		in, want string
		whole    bool
	}{
		{"plain", "plain", false},
		{"${A}", "1", true},
		{"x${A}", "x1", false},
		{"$$A", "$A", false},
		{"$${A}", "${A}", false},
		{"cost $5", "cost $5", false},
		{"${E:-d}", "d", true},
		{"${E}", "", true},
		{"${Z:-}", "", true},
		{"${Z:-a:b}", "a:b", true},
		{"${Z:-${A}}", "1", true},
		{"${A}${A}", "11", false},
		{"$", "$", false},
		{"$.card.number", "$.card.number", false},
	}
	for _, tt := range tests {
		got, whole, err := interpolate(tt.in, env)
		if err != nil || got != tt.want || whole != tt.whole {
			t.Errorf("interpolate(%q) = %q, %v, %v; want %q, %v", tt.in, got, whole, err, tt.want, tt.whole)
		}
	}
}

const setBase = `version: 1
name: t
topics: {traffic: {name: x, config: {retention.ms: "1"}}}
jobs:
  replay:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
    speed: 2
    assert: ['errors.rate < 0.01', 'requests.sent > 0']
`

func TestSet(t *testing.T) {
	s := mustLoad(t, setBase, Options{Env: envOf(map[string]string{"N": "9"}), Set: []string{
		"jobs.replay.speed=4",
		"jobs.replay.amplify=3",
		"jobs.replay.assert.0=errors.rate == 0",
		"jobs.replay.assert.2=requests.ok > 1",
		"jobs.replay.stop.requests=${N}",
		"jobs.replay.description=\"42\"",
		"topics.traffic.config.retention.ms=86400000",
		"jobs.replay.sink.http.preserve-host=true",
		"jobs.replay.needs=[]",
	}})
	j := s.Jobs["replay"]
	if j.Speed.Factor != 4 || j.Amplify != 3 || j.Stop.Requests != 9 || j.Description != "42" || !j.Sink.HTTP.PreserveHost {
		t.Errorf("job %+v", j)
	}
	if len(j.Assert) != 3 || j.Assert[0].Source != "errors.rate == 0" || j.Assert[2].Source != "requests.ok > 1" {
		t.Errorf("asserts %+v", j.Assert)
	}
	if s.Topics["traffic"].Config["retention.ms"] != "86400000" {
		t.Errorf("config %v", s.Topics["traffic"].Config)
	}
	// A list the job does not have yet: its first item makes one.
	noAsserts := strings.Replace(setBase, "    assert: ['errors.rate < 0.01', 'requests.sent > 0']\n", "", 1)
	// A key whose name only looks like a secret's is read as YAML:
	// session is a boolean.
	s = mustLoad(t, setBase, Options{Env: envOf(nil), Set: []string{"jobs.replay.sink.http.session=true"}})
	if !s.Jobs["replay"].Sink.HTTP.Session {
		t.Error("--set jobs.replay.sink.http.session=true did not set session")
	}
	s = mustLoad(t, noAsserts, Options{Env: envOf(nil), Set: []string{"jobs.replay.assert.0=errors.rate == 0"}})
	if a := s.Jobs["replay"].Assert; len(a) != 1 || a[0].Source != "errors.rate == 0" {
		t.Errorf("assert.0 on a job without assert: %+v", a)
	}
	// A topic config that is not in the file yet is one dotted key too.
	s = mustLoad(t, setBase, Options{Env: envOf(map[string]string{"N": "9"}), Set: []string{"topics.traffic.config.segment.bytes=1048576"}})
	if s.Topics["traffic"].Config["segment.bytes"] != "1048576" {
		t.Errorf("new config key: %v", s.Topics["traffic"].Config)
	}

	tests := []struct {
		set, fragment string
	}{
		{"jobs.replay.speed", "want path.to.key=value"},
		{"=4", "empty path"},
		{"jobs..speed=4", "empty path segment"},
		{"jobs.replay.assert.7=true", `"7" is not an index of "jobs.replay.assert", a list of 2 items`},
		{"jobs.replay.assert.x=true", "is not an index"},
		{"name.sub=x", `"name" is a scalar (line 2, column 7): it has no "sub" inside`},
		{"jobs.nojob.speed=4", `the scenario has no job "nojob" (jobs: `},
		{"targets.typo.url=http://x", `the scenario has no target "typo"`},
		{"jobs.replay.speed=[1", "the value is not valid YAML"},
		{"jobs.replay.speed=&a 2", "the value holds a YAML anchor (&) or alias (*)"},
		{"jobs.new={source: {window: w}, sink: {stdout: {}}}", `the scenario has no job "new" (jobs: `},
		{"targets.new={url: http://x}", `the scenario has no target "new"`},
		{"vars.TARGET=http://x", `declares no variable "TARGET" (it has no vars:)`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			ds := loadErr(t, setBase, Options{Env: envOf(nil), Set: []string{tt.set}})
			if len(ds) != 1 || !strings.Contains(ds[0].Message, "--set") || !strings.Contains(ds[0].Message, tt.fragment) || ds[0].File != "s.yaml" {
				t.Errorf("got %v, want one --set error containing %q", ds, tt.fragment)
			}
		})
	}
	// a typo in a variable's name is an error that names the right one
	withVars := strings.Replace(setBase, "jobs:", "vars: {TARGET: http://a, SPEED: 2}\njobs:", 1)
	ds := loadErr(t, withVars, Options{Env: envOf(nil), Set: []string{"vars.TARGT=http://b"}})
	if len(ds) != 1 || !strings.Contains(ds[0].Message, `declares no variable "TARGT" (did you mean "TARGET"?) (vars: TARGET, SPEED)`) {
		t.Errorf("vars typo: got %v", ds)
	}
	if s := mustLoad(t, withVars, Options{Env: envOf(nil), Set: []string{"vars.TARGET=http://b"}}); s.Vars["TARGET"] != "http://b" {
		t.Errorf("vars.TARGET = %q, want the override", s.Vars["TARGET"])
	}
	// a name the file reads as ${NAME} without declaring it takes an override
	// (serve's API passes an agent's variables so)
	reads := strings.Replace(setBase, `url: "http://127.0.0.1:1"`, `url: "${UPSTREAM}"`, 1)
	if s := mustLoad(t, reads, Options{Env: envOf(nil), Set: []string{"vars.UPSTREAM=http://127.0.0.1:2"}}); s.Jobs["replay"].Sink.HTTP.Targets[0].URL.Host != "127.0.0.1:2" {
		t.Errorf("vars.UPSTREAM of a ${UPSTREAM} the file reads: target %+v", s.Jobs["replay"].Sink.HTTP.Targets[0].URL)
	}
	// so does one read past a ${NAME:?message} of the same scalar
	reads = strings.Replace(setBase, `url: "http://127.0.0.1:1"`, `url: "http://${HOST:?set HOST}:${PORT}"`, 1)
	if s := mustLoad(t, reads, Options{Env: envOf(map[string]string{"HOST": "127.0.0.1"}), Set: []string{"vars.PORT=3"}}); s.Jobs["replay"].Sink.HTTP.Targets[0].URL.Host != "127.0.0.1:3" {
		t.Errorf("vars.PORT of a ${PORT} after a ${HOST:?…}: target %+v", s.Jobs["replay"].Sink.HTTP.Targets[0].URL)
	}
	// a value set to something invalid is reported at the value it replaced
	ds = loadErr(t, setBase, Options{Env: envOf(nil), Set: []string{"jobs.replay.speed=fast"}})
	wantDiag(t, ds, "8:12", "jobs.replay.speed: must be a number")
	wantDiag(t, ds, "8:12", `(the value of --set "jobs.replay.speed")`)
	// a new unknown key is reported by the schema
	ds = loadErr(t, setBase, Options{Env: envOf(nil), Set: []string{"jobs.replay.sped=3"}})
	if len(ds) != 1 || ds[0].String() != `s.yaml: --set "jobs.replay.sped": unknown key "sped" (did you mean "speed"?)` {
		t.Errorf("a key --set created is told as the override's, not at a line of the file: %v", ds)
	}
}

// TestSetSecretIsText: a --set of a password takes the text given, which
// read as YAML would be an alias, an anchor or a number.
func TestSetSecretIsText(t *testing.T) {
	const doc = `version: 1
name: t
kafka:
  brokers: ["127.0.0.1:9092"]
  sasl: {mechanism: SCRAM-SHA-256, username: bob, password: "old"}
jobs:
  replay:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
`
	for _, pw := range []string{"*Hunter2secret", "&abc def", "123456", "[x", "true"} {
		s, err := LoadBytes("s.yaml", []byte(doc), Options{Env: envOf(nil), Set: []string{"kafka.sasl.password=" + pw}})
		if err != nil {
			t.Errorf("password %q: %v", pw, err)
			continue
		}
		if s.Kafka.SASL.Password != pw {
			t.Errorf("password %q read as %q", pw, s.Kafka.SASL.Password)
		}
	}
}

// TestExpressionErrorsHideValues: an expression with a ${VAR} in its code
// (not in a string) fails to compile; the error names the variable, never
// its value or a part of it (a JWT up to its first dot), and says how to
// write it.
func TestExpressionErrorsHideValues(t *testing.T) {
	src := header + `jobs:
  j:
    source: {window: w}
    sink: {http: {target: echo}}
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer " + ${STAGING_TOKEN}'}
      - set-header: {name: X-Sig, value: '${JWT_SECRET} + "x"'}
windows:
  w: {topic: traffic, last: 1h}
`
	env := map[string]string{"STAGING_TOKEN": "ghp_abcdEFGH1234secret", "JWT_SECRET": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"}
	ds := loadErr(t, src, Options{Env: envOf(env)})
	text := ds.Error()
	for _, leak := range []string{"ghp_abcd", "eyJhbGci", "eyJzdWIi"} {
		if strings.Contains(text, leak) {
			t.Errorf("the error shows a value (%s):\n%s", leak, text)
		}
	}
	wantDiag(t, ds, "10:63", "unknown name ${STAGING_TOKEN}")
	wantDiag(t, ds, "10:63", `write it inside the quotes, "…${STAGING_TOKEN}", or use env("STAGING_TOKEN")`)
	wantDiag(t, ds, "11:43", "unknown name ${JWT_SECRET}")

	// A credential written without its inner quotes: the error does not
	// quote it, and says what is missing.
	lit := strings.Replace(src, `'"Bearer " + ${STAGING_TOKEN}'`, `'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln'`, 1)
	lit = strings.Replace(lit, `{name: X-Sig, value: '${JWT_SECRET} + "x"'}`, `{name: X-Api-Key, value: 'sk_live_51HxQ2abcdef'}`, 1)
	ds = loadErr(t, lit, Options{Env: envOf(nil)})
	for _, leak := range []string{"eyJhbGci", "sk_live"} {
		if strings.Contains(ds.Error(), leak) {
			t.Errorf("the error shows a value (%s):\n%s", leak, ds)
		}
	}
	wantDiag(t, ds, "10:58", `a text value needs quotes inside the YAML ones: '"Bearer …"'`)
	wantDiag(t, ds, "11:47", "unknown name xxxxx")

	// The lexer quotes a prefix of a token: it is masked too.
	for _, cred := range []string{"Bearer 1234567890abcdef.deadbeefcafe", "Bearer 0x1fabcdef99zz"} {
		ds = loadErr(t, strings.Replace(src, `'"Bearer " + ${STAGING_TOKEN}'`, "'"+cred+"'", 1), Options{Env: envOf(env)})
		for _, leak := range []string{"1234567890", "deadbeef", "1fabcdef"} {
			if strings.Contains(ds.Error(), leak) {
				t.Errorf("%s: the error shows a part of it (%s):\n%s", cred, leak, ds)
			}
		}
	}
}

// TestHidingDoesNotOvermask: hiding the variables' values leaves the rest
// of a message alone: words that are only parts of a secret elsewhere in
// the file, and a plain variable's value on another line.
func TestHidingDoesNotOvermask(t *testing.T) {
	src := `version: 1
name: t
description: "${ENV} replay"
kafka:
  brokers: [127.0.0.1:9092]
  sasl: {mechanism: PLAIN, username: u, password: "${KAFKA_PASSWORD}"}
jobs:
  replay:
    source: {window: w}
    sink: {http: {target: staging}}
windows:
  w: {topic: traffic, last: 1h}
topics: {traffic: {name: x}}
`
	ds := loadErr(t, src, Options{Env: envOf(map[string]string{"ENV": "staging", "KAFKA_PASSWORD": "replay-target-2024"})})
	wantDiag(t, ds, "10:27", `jobs.replay.sink.http.target: unknown target "staging"`)
	if strings.Contains(ds.Error(), "${") {
		t.Errorf("a value was hidden where it was not one:\n%s", ds)
	}
}

// TestShortValueHiddenOnlyInItsOwnError: a short value read from ${VAR}
// (partitions: ${P} with P=0) is hidden in the errors about its scalar, not
// in another scalar's error on the same line, whose text it would garble
// ("a-z ${P}-9" for "a-z 0-9").
func TestShortValueHiddenOnlyInItsOwnError(t *testing.T) {
	src := `version: 1
name: t
topics: {t: {name: "${TN}", partitions: "${P}"}}
jobs:
  replay:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
windows:
  w: {topic: t, last: 1h}
`
	ds := loadErr(t, src, Options{Env: envOf(map[string]string{"TN": "bad topic!", "P": "0"})})
	wantDiag(t, ds, "3:20", "must be a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ -")
	wantDiag(t, ds, "3:41", "topics.t.partitions: must be >= 1 (got ${P})")
}

// TestSetErrorsHideValues: a --set error names the override by its path and
// a scalar in the way by its path and position: it quotes neither the
// scalar's value nor the override's value (either may be a password).
func TestSetErrorsHideValues(t *testing.T) {
	const doc = `version: 1
name: t
kafka:
  brokers: ["S3CRETHOST:9092"]
  sasl: {mechanism: SCRAM-SHA-256, username: bob, password: "S3CRETSASL"}
jobs:
  replay:
    source: {window: w}
    sink: {http: {url: "http://u:S3CRETURL@127.0.0.1:1"}}
`
	tests := []struct {
		set, want string
	}{
		{"kafka.sasl.password.x=1", `--set "kafka.sasl.password.x": "kafka.sasl.password" is a scalar (line 5, column 61): it has no "x" inside`},
		{"kafka.sasl.password.x.y=S3CRETNEW", `--set "kafka.sasl.password.x.y": "kafka.sasl.password" is a scalar (line 5, column 61): it has no "x" inside`},
		{"jobs.replay.sink.http.url.user=S3CRETNEW", `"jobs.replay.sink.http.url" is a scalar (line 9, column 24): it has no "user" inside`},
		{"kafka.brokers.0.x=1", `"kafka.brokers.0" is a scalar (line 4, column 13): it has no "x" inside`},
		{"jobs.replay.sink.http.url=[S3CRETNEW", `--set "jobs.replay.sink.http.url": the value is not valid YAML`},
		{"jobs.replay.sink.http.url=*S3CRETNEW", `--set "jobs.replay.sink.http.url": the value is not valid YAML`},
		{"kafka.brokers.9=S3CRETNEW", `--set "kafka.brokers.9": "9" is not an index of "kafka.brokers", a list of 1 item at line 4`},
		{"=S3CRETNEW", "--set with an empty path"},
		{"kafka..sasl=S3CRETNEW", `--set "kafka..sasl": empty path segment`},
		{"targets.nope.url=http://u:S3CRETNEW@h", `--set "targets.nope.url": the scenario has no target "nope"`},
	}
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			_, err := LoadBytes("s.yaml", []byte(doc), Options{Env: envOf(nil), Set: []string{tt.set}})
			if err == nil {
				t.Fatal("loaded")
			}
			text := err.Error()
			if strings.Contains(text, "S3CRET") {
				t.Errorf("the error shows a value:\n%s", text)
			}
			if !strings.Contains(text, tt.want) {
				t.Errorf("error:\n%s\nwant it to contain\n%s", text, tt.want)
			}
		})
	}
}

func TestEnvFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".env")
	content := "# comment\n\nWHO=file\nexport TARGET=\"http://127.0.0.1:7000\"\nSPEED='3'\nTRAIL=v # note\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustLoad(t, interpBase, Options{EnvFile: path, Env: envOf(map[string]string{"WHO": "process", "SPEED": "1"})})
	if s.Targets["t"].URL.Port() != "7000" || s.Jobs["j"].Speed.Factor != 3 || !strings.HasPrefix(s.Jobs["j"].Description, "hello-file") {
		t.Errorf("env file not applied: %v %+v %q", s.Targets["t"].URL, s.Jobs["j"].Speed, s.Jobs["j"].Description)
	}
	vals, _, ds := readEnvFile(path)
	if len(ds) != 0 || vals["TRAIL"] != "v" || vals["SPEED"] != "3" {
		t.Errorf("vals %v %v", vals, ds)
	}

	bad := filepath.Join(dir, "bad.env")
	if err := os.WriteFile(bad, []byte("OK=1\nnot a line\nQ=\"open\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ds = loadErr(t, interpBase, Options{EnvFile: bad, Env: envOf(map[string]string{"WHO": "x"})})
	wantDiag(t, ds, "2:1", "want KEY=VALUE")
	wantDiag(t, ds, "3:3", "unterminated quote")
	ds = loadErr(t, interpBase, Options{EnvFile: filepath.Join(dir, "missing.env"), Env: envOf(map[string]string{"WHO": "x"})})
	if len(ds) != 1 || !strings.Contains(ds[0].Message, "env file") {
		t.Errorf("missing env file: %v", ds)
	}
}

// TestUnusedEnvFileKeys: a variable of --env-file that no ${…} of the
// scenario reads is warned of at its line, by name and never by value; one
// read only in a default, past a ${NAME:?message}, in a vars: value or in
// a --set value is used, and so is one only env("NAME") reads (env() reads
// the file before the process environment). One that only a reference
// answered by a vars: entry names is told why it is not read.
func TestUnusedEnvFileKeys(t *testing.T) {
	src := `version: 1
name: t
vars:
  target: ${TARGET:-http://127.0.0.1:8080}
  greeting: hello-${WHO}
targets:
  t: {url: "${target}"}
jobs:
  j:
    description: "${greeting} ${A:-${B:-nested}} ${C:?set C}/${D}"
    source: {window: w}
    filter: 'env("TOKEN") != ""'
    sink: {http: {target: t}}
`
	dir := t.TempDir()
	path := filepath.Join(dir, "vars.env")
	lines := []string{
		"# comment",             // 1
		"WHO=file",              // 2
		"TARGET=http://h:1",     // 3
		"B=only-in-a-default",   // 4
		"C=c",                   // 5
		"D=d",                   // 6
		"UNUSED=s3cr3t-value",   // 7
		"  export  LATE='x'",    // 8
		"target=http://h:2",     // 9
		"TOKEN=t0k3n-value",     // 10
		"FROMSET=used-by-a-set", // 11
		"A=a",                   // 12
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustLoad(t, src, Options{EnvFile: path, Env: envOf(map[string]string{"TOKEN": "x"}), Set: []string{"jobs.j.rewrite.0.set-header={name: X-From, value: '\"${FROMSET}\"'}"}})
	var got []string
	for _, w := range s.Warnings {
		if w.File == path {
			got = append(got, fmt.Sprintf("%d:%d %s", w.Line, w.Col, w.Message))
		}
	}
	want := []string{
		`7:1 warning: UNUSED is not used by scenario s.yaml (no ${UNUSED} or env("UNUSED") in it)`,
		`8:11 warning: LATE is not used by scenario s.yaml (no ${LATE} or env("LATE") in it)`,
		"9:1 warning: target is not used by scenario s.yaml: its ${target} reads the vars: entry target, not the environment",
	}
	// TOKEN, read only by env("TOKEN"), is used: env() reads the file too.
	if v, ok := s.LookupEnv("TOKEN"); !ok || v != "t0k3n-value" {
		t.Errorf(`LookupEnv("TOKEN") = %q, %v; want the env file's value`, v, ok)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("env file warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if text := s.Warnings.Error(); strings.Contains(text, "s3cr3t") || strings.Contains(text, "t0k3n") || strings.Contains(text, "h:2") {
		t.Errorf("a warning shows a value of the env file:\n%s", text)
	}
	if s := mustLoad(t, src, Options{Env: envOf(map[string]string{"WHO": "w", "C": "c", "D": "d", "TOKEN": "x"})}); len(s.Warnings) != 0 {
		t.Errorf("warnings without an env file: %v", s.Warnings)
	}
}

func TestManyErrorsAtOnce(t *testing.T) {
	src := `version: 1
name: t
jobs:
  a:
    needs: [ghost]
    source: {window: w}
    sink: {kafka: {topic: nope}}
    speed: 0
    filter: 'req.nope'
    colour: red
  b:
    source: {gor: {path: x}}
    sink: {http: {}}
    rate: lots
`
	ds := loadErr(t, src, Options{Env: envOf(nil)})
	for _, w := range []struct{ at, frag string }{
		{"5:13", `unknown job "ghost"`},
		{"7:27", `unknown topic "nope"`},
		{"8:12", "jobs.a.speed"},
		{"9:18", "no field nope; there are: method, path"},
		{"10:5", `unknown key "colour"`},
		{"13:18", "needs exactly one of target, url, targets"},
		{"14:11", "jobs.b.rate"},
	} {
		wantDiag(t, ds, w.at, w.frag)
	}
	if len(ds) != 7 {
		t.Errorf("got %d diagnostics, want 7 (no duplicates):\n%v", len(ds), ds)
	}
	for i := 1; i < len(ds); i++ {
		if ds[i].Line < ds[i-1].Line {
			t.Errorf("not sorted: %v", ds)
		}
	}
	text := ds.Error()
	if !strings.HasPrefix(text, "s.yaml:5:13: jobs.a.needs: unknown job") || strings.Count(text, "\n") != 6 {
		t.Errorf("Error() =\n%s", text)
	}
}

func TestJobOrder(t *testing.T) {
	src := `version: 1
name: t
jobs:
  report: {needs: [replay], source: {window: w}, sink: {stdout: {}}}
  replay: {needs: [record], source: {window: w}, sink: {stdout: {}}}
  record: {source: {gor: {path: x}}, sink: {stdout: {}}}
  other: {source: {gor: {path: x}}, sink: {stdout: {}}}
`
	s := mustLoad(t, src, Options{Env: envOf(nil)})
	names := func(js []*Job) string {
		var out []string
		for _, j := range js {
			out = append(out, j.Name)
		}
		return strings.Join(out, ",")
	}
	order, err := JobOrder(s, nil)
	if err != nil || names(order) != "record,replay,report,other" {
		t.Errorf("order %s, %v", names(order), err)
	}
	order, err = JobOrder(s, []string{"report", "record"})
	if err != nil || names(order) != "record,report" {
		t.Errorf("only: %s, %v", names(order), err)
	}
	if _, err := JobOrder(s, []string{"nope"}); err == nil || !strings.Contains(err.Error(), `unknown job "nope"`) {
		t.Errorf("unknown: %v", err)
	}
	s.Jobs["record"].Needs = []string{"report"}
	if _, err := JobOrder(s, nil); err == nil || !strings.Contains(err.Error(), "needs cycle: report → replay → record → report") {
		t.Errorf("cycle: %v", err)
	}
}

func TestValues(t *testing.T) {
	sizes := map[string]int64{"64MiB": 64 << 20, "1MB": 1e6, "512KiB": 512 << 10, "100": 100, "1.5KiB": 1536, "2g": 2 << 30, "10 B": 10}
	for in, want := range sizes {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "1XB", "1e3"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
	rates := map[string]float64{"500/s": 500, "120/m": 2, " 1.5 / s ": 1.5}
	for in, want := range rates {
		if got, err := ParseRate(in); err != nil || got.PerSecond != want {
			t.Errorf("ParseRate(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"500", "0/s", "5/h", "x/s"} {
		if _, err := ParseRate(in); err == nil {
			t.Errorf("ParseRate(%q) succeeded", in)
		}
	}
	if _, err := ParseDuration("-1s"); err == nil {
		t.Error("negative duration accepted")
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	times := map[string]time.Time{
		"now":                  now,
		"-15m":                 now.Add(-15 * time.Minute),
		"now-2h":               now.Add(-2 * time.Hour),
		"+1h":                  now.Add(time.Hour),
		"2026-11-26T10:00:00Z": time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
	}
	for in, want := range times {
		ts, err := ParseTime(in)
		if err != nil || !ts.Resolve(now).Equal(want) {
			t.Errorf("ParseTime(%q) = %+v, %v", in, ts, err)
		}
	}
	for _, in := range []string{"yesterday", "15m", "2026-11-26", "now-"} {
		if _, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) succeeded", in)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	var ds Diagnostics
	if !errors.As(err, &ds) || len(ds) != 1 || !strings.Contains(ds[0].String(), "nope.yaml: read scenario") {
		t.Errorf("got %v", err)
	}
}

func TestYAMLFeatures(t *testing.T) {
	src := `version: 1
name: t
targets:
  base: &base {url: "http://127.0.0.1:1", timeout: 3s}
  copy: {<<: *base, url: "http://127.0.0.1:2"}
jobs:
  j:
    source: {window: w}
    sink: {http: {targets: [base, copy], mode: split}}
    filter: >-
      req.method == "GET"
`
	s := mustLoad(t, src, Options{Env: envOf(nil)})
	if c := s.Targets["copy"]; c.Timeout != 3*time.Second || c.URL.Port() != "2" {
		t.Errorf("merge key: %+v", c)
	}
	if h := s.Jobs["j"].Sink.HTTP; len(h.Targets) != 2 || h.Mode != "split" {
		t.Errorf("targets %+v", h)
	}
	// alias bomb: bounded, no hang, no panic
	bomb := "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
	ds := loadErr(t, bomb, Options{Env: envOf(nil)})
	if !strings.Contains(ds.Error(), "too large") {
		t.Errorf("alias bomb: %v", ds)
	}
	// merge-key bomb: each level merges the previous one ten times
	var b strings.Builder
	b.WriteString("m0: &m0 {a: 1, b: 2}\n")
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&b, "m%d: &m%d {<<: [", i, i)
		for k := 0; k < 10; k++ {
			if k > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*m%d", i-1)
		}
		b.WriteString("]}\n")
	}
	loadErr(t, b.String(), Options{Env: envOf(nil)}) // bounded: returns, no panic
}

func FuzzLoad(f *testing.F) {
	for _, p := range []string{"../examples/quickstart.yaml", "../examples/replay-window.yaml", "../examples/time-range.yaml", "../examples/record-live.yaml"} {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(interpBase))
	f.Add([]byte(setBase))
	f.Add([]byte("version: 1\nname: ${X:-${Y:?m}}\njobs: {a: {needs: [a]}}\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("{<<: [*x]}"))
	f.Add([]byte("version: 1\nname: x\njobs:\n  a:\n    needs: [b, c\n    sink: {}\n"))
	f.Add([]byte("version: 1\njobs:\n  a:\n  \tb: 1\n"))
	f.Add([]byte("version: 1\nname: \"abc\njobs: {}\n"))
	f.Add([]byte("a: {b: [1, 2}\n# c [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + bytes.Count(data, []byte("\r")) + 1 // YAML breaks lines at CR too
		s, err := LoadBytes("f.yaml", data, Options{Env: envOf(map[string]string{"X": "1"}), Set: []string{"jobs.a.speed=2"}})
		if err == nil && s == nil {
			t.Fatal("nil scenario without error")
		}
		if err != nil {
			var ds Diagnostics
			if !errors.As(err, &ds) || len(ds) == 0 {
				t.Fatalf("error is not Diagnostics: %v", err)
			}
			for _, d := range ds {
				if d.File != "f.yaml" || d.Message == "" || d.Line > lines || (d.Line > 0 && d.Col < 1) {
					t.Fatalf("bad diagnostic %#v", d)
				}
			}
		}
	})
}

// A scalar whose ${VAR:?message} failed is reported once, by its message,
// not again for the shape of its raw text.
func TestFailedInterpolationReportedOnce(t *testing.T) {
	src := "version: 1\nname: v\ntargets:\n  app: {url: \"${UNSET_XYZ:?set UNSET_XYZ}\", timeout: \"${UNSET_T:?need T}\"}\n" +
		"jobs:\n  r:\n    source: {gor: {path: x.gor}}\n    sink: {http: {target: app}}\n"
	_, err := LoadBytes("v.yaml", []byte(src), Options{Env: func(string) (string, bool) { return "", false }})
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("err = %v", err)
	}
	want := []string{"v.yaml:4:14: UNSET_XYZ: set UNSET_XYZ", "v.yaml:4:54: UNSET_T: need T"}
	if len(ds) != len(want) {
		t.Fatalf("diagnostics:\n%v\nwant %q", ds, want)
	}
	for i := range want {
		if ds[i].String() != want[i] {
			t.Errorf("diagnostic %d = %q, want %q", i, ds[i], want[i])
		}
	}
}

// TestEnvRefsUnsetWarn: env("NAME") calls are collected with their job and
// position, and validate warns of those whose variable is not set here.
func TestEnvRefsUnsetWarn(t *testing.T) {
	src := `version: 1
name: e
targets: {t: {url: "http://127.0.0.1:1"}}
jobs:
  replay:
    source: {window: w}
    sink: {http: {target: t}}
    filter: 'env("SET_ONE") != "x"'
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer " + env("UNSET_ONE")'}
`
	s := mustLoad(t, src, Options{Env: envOf(map[string]string{"SET_ONE": ""})})
	want := []EnvRef{{Name: "SET_ONE", Job: "replay"}, {Name: "UNSET_ONE", Job: "replay"}}
	if len(s.EnvRefs) != 2 {
		t.Fatalf("EnvRefs = %+v, want %+v", s.EnvRefs, want)
	}
	for i, r := range s.EnvRefs {
		if r.Name != want[i].Name || r.Job != want[i].Job || r.Pos.Line == 0 {
			t.Errorf("EnvRefs[%d] = %+v, want %+v at a position", i, r, want[i])
		}
	}
	if len(s.Warnings) != 1 || s.Warnings[0].Line != 10 || !strings.Contains(s.Warnings[0].Message, `env("UNSET_ONE"): UNSET_ONE is not set here`) {
		t.Errorf("warnings = %v, want one for UNSET_ONE at line 10", s.Warnings)
	}
}

// TestTopicConfigUnknownWarns: a topic config key Apache Kafka does not know
// is a warning (another broker's, or a newer one), with the likely key; a
// boolean takes any case.
func TestTopicConfigUnknownWarns(t *testing.T) {
	src := strings.Replace(setBase, `config: {retention.ms: "1"}`, `config: {retension.ms: "1", confluent.placement.constraints: "{}", preallocate: "TRUE"}`, 1)
	s := mustLoad(t, src, Options{Env: envOf(nil)})
	if len(s.Warnings) != 2 || !strings.Contains(s.Warnings.Error(), `topics.traffic.config.retension.ms: "retension.ms" is not an Apache Kafka topic config (did you mean "retention.ms"?)`) ||
		!strings.Contains(s.Warnings.Error(), `confluent.placement.constraints`) {
		t.Errorf("warnings = %v", s.Warnings)
	}
}

// TestSetErrorsDoNotQuoteTheValue: an error about a value --set gave, at a
// key the file has or one the override created, names the override and
// never quotes its value, as README's Safety promises (a value on a command
// line may be a secret).
func TestSetErrorsDoNotQuoteTheValue(t *testing.T) {
	tests := []struct {
		set, fragment string
	}{
		{"jobs.replay.sink.http.workers=7777777", `--set "jobs.replay.sink.http.workers": must be <= 100000 (got …)`},
		{"jobs.replay.sink.http.max-connections=-424242", `--set "jobs.replay.sink.http.max-connections": must be >= 1 (got …)`},
		{"topics.traffic.partitions=99999999", `must be <= 100000 (got …) (the value of --set "topics.traffic.partitions")`},
		{"jobs.replay.sink.http.url=Hunter2host", `"…"`},
		{"jobs.replay.sink.http.protocol=Hunter2proto", `protocol": value must be one of`},
		{"jobs.replay.start-at=Hunter2time", `invalid time "…"`},
		{"jobs.replay.sink.http.workers=Hunter2", "must be an integer (got string)"},
	}
	base := strings.Replace(setBase, "source: {window: w}", "source: {window: w}\n    start-at: now", 1)
	base = strings.Replace(base, "topics: {traffic: {name: x,", "topics: {traffic: {name: x, partitions: 2,", 1)
	base = strings.Replace(base, "jobs:", "windows: {w: {topic: traffic, last: 1h}}\njobs:", 1)
	for _, tt := range tests {
		t.Run(tt.set, func(t *testing.T) {
			ds := loadErr(t, base, Options{Env: envOf(nil), Set: []string{tt.set}})
			_, value, _ := strings.Cut(tt.set, "=")
			value = strings.TrimPrefix(value, "-")
			if strings.Contains(ds.Error(), value) {
				t.Errorf("the error quotes the value of --set %s:\n%v", tt.set, ds)
			}
			found := false
			for _, d := range ds {
				found = found || strings.Contains(d.Message, tt.fragment)
			}
			if !found {
				t.Errorf("no diagnostic containing %q; got:\n%v", tt.fragment, ds)
			}
		})
	}
}

// TestSetErrorsQuoteThePath: every --set error shows the override's path
// quoted, and the names and paths it speaks of too, so that a path with a
// space, a dot or an empty segment reads as what it is.
func TestSetErrorsQuoteThePath(t *testing.T) {
	tests := []struct {
		name, set, want string
	}{
		{"space in a job's name", "jobs.my job.speed=2",
			`s.yaml: --set "jobs.my job.speed": the scenario has no job "my job" (jobs: replay)`},
		{"leading space", "jobs. replay.speed=2",
			`s.yaml: --set "jobs. replay.speed": the scenario has no job " replay" (did you mean "replay"?) (jobs: replay)`},
		{"typo in a job's name", "jobs.rplay.speed=2",
			`s.yaml: --set "jobs.rplay.speed": the scenario has no job "rplay" (did you mean "replay"?) (jobs: replay)`},
		{"no target", "targets.t.url=http://x",
			`s.yaml: --set "targets.t.url": the scenario has no target "t" (it has no targets:)`},
		{"empty segment", "jobs.replay..speed=2",
			`s.yaml: --set "jobs.replay..speed": empty path segment (a dot at an end or two in a row); want path.to.key=value`},
		{"trailing dot", "jobs.replay.=2",
			`s.yaml: --set "jobs.replay.": empty path segment (a dot at an end or two in a row); want path.to.key=value`},
		{"no value", "jobs.replay.speed",
			`s.yaml: --set "jobs.replay.speed": no "="; want path.to.key=value`},
		{"index past the end", "jobs.replay.assert.5=x",
			`s.yaml: --set "jobs.replay.assert.5": "5" is not an index of "jobs.replay.assert", a list of 2 items at line 9 (0 to 1 replace an item, 2 appends one)`},
		{"index not a number", "jobs.replay.assert.first=x",
			`s.yaml: --set "jobs.replay.assert.first": "first" is not an index of "jobs.replay.assert", a list of 2 items at line 9 (0 to 1 replace an item, 2 appends one)`},
		{"inside a scalar", "jobs.replay.speed.x=2",
			`s.yaml: --set "jobs.replay.speed.x": "jobs.replay.speed" is a scalar (line 8, column 12): it has no "x" inside`},
		{"unknown key", "jobs.replay.sped=3",
			`s.yaml: --set "jobs.replay.sped": unknown key "sped" (did you mean "speed"?)`},
		{"bad value replacing one of the file", "jobs.replay.speed=fast",
			`s.yaml:8:12: jobs.replay.speed: must be a number between 0.01 and 1000 or "max" (the value of --set "jobs.replay.speed")`},
		{"bad value at a key it creates", "jobs.replay.stop.requests=-1",
			`s.yaml: --set "jobs.replay.stop.requests": must be >= 1 (got …)`},
		{"dotted topic config", "topics.traffic.config.retention.ms.x=1",
			`s.yaml: --set "topics.traffic.config.retention.ms.x": "topics.traffic.config.retention.ms" is a scalar (line 3, column 52): it has no "x" inside`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := loadErr(t, setBase, Options{Env: envOf(nil), Set: []string{tt.set}})
			if len(ds) != 1 || ds[0].String() != tt.want {
				t.Errorf("--set %s:\n got %v\nwant %s", tt.set, ds, tt.want)
			}
		})
	}
}

// TestSetWarningSaysThePathOnce: a warning about a key a --set created
// reads as a warning of that override, its path said once.
func TestSetWarningSaysThePathOnce(t *testing.T) {
	s := mustLoad(t, setBase, Options{Env: envOf(nil), Set: []string{"topics.traffic.config.retention.mss=1"}})
	want := `s.yaml: warning: --set "topics.traffic.config.retention.mss": "retention.mss" is not an Apache Kafka topic config (did you mean "retention.ms"?)`
	if len(s.Warnings) != 1 || s.Warnings[0].String() != want {
		t.Errorf("warnings:\n got %v\nwant %s", s.Warnings, want)
	}
}

// TestSetAmbiguousPath: a --set path that names two keys of one mapping
// (jobs r and r.loop: jobs.r.loop.for) is an error that names both and
// shows each reading with its key quoted; a quoted key picks one, and a
// path that reads one way works as before.
func TestSetAmbiguousPath(t *testing.T) {
	const src = `version: 1
name: t
topics: {traffic: {name: x, config: {retention: "1", retention.ms: "1"}}}
jobs:
  r:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
  r.loop:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
  replay.v2:
    source: {window: w}
    sink: {http: {url: "http://127.0.0.1:1"}}
`
	errs := []struct {
		name, set, want string
	}{
		{"two jobs", "jobs.r.loop.for=10m",
			`s.yaml: --set "jobs.r.loop.for": the path reads 2 ways: "jobs" has the keys "r" and "r.loop"; quote the key meant: --set 'jobs."r.loop".for=…' or --set 'jobs."r".loop.for=…'`},
		{"the value is not shown", "jobs.r.loop.for=hunter2",
			`s.yaml: --set "jobs.r.loop.for": the path reads 2 ways: "jobs" has the keys "r" and "r.loop"; quote the key meant: --set 'jobs."r.loop".for=…' or --set 'jobs."r".loop.for=…'`},
		{"two topic configs", "topics.traffic.config.retention.ms=5",
			`s.yaml: --set "topics.traffic.config.retention.ms": the path reads 2 ways: "topics.traffic.config" has the keys "retention" and "retention.ms"; quote the key meant: --set 'topics.traffic.config."retention.ms"=…' or --set 'topics.traffic.config."retention".ms=…'`},
		{"unterminated quote", `jobs."r.loop.for=1m`,
			`s.yaml: --set "jobs.\"r.loop.for": unterminated quote: a quoted key ends with a '"' (jobs."r.loop".for)`},
		{"text after a quote", `jobs."r"x.for=1m`,
			`s.yaml: --set "jobs.\"r\"x.for": a quoted key is a whole segment: '.' or the end must follow its closing '"' (jobs."r.loop".for)`},
		{"empty quoted key", `jobs."".for=1m`,
			`s.yaml: --set "jobs.\"\".for": empty path segment (a dot at an end or two in a row); want path.to.key=value`},
		{"a quoted job that is not there", `jobs."r.lop".loop.for=1m`,
			`s.yaml: --set "jobs.\"r.lop\".loop.for": the scenario has no job "r.lop" (did you mean "r.loop"?) (jobs: r, r.loop, replay.v2)`},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			ds := loadErr(t, src, Options{Env: envOf(nil), Set: []string{tt.set}})
			if len(ds) != 1 || ds[0].String() != tt.want {
				t.Errorf("--set %s:\n got %v\nwant %s", tt.set, ds, tt.want)
			}
		})
	}
	oks := []struct {
		name, set string
		check     func(s *Scenario) bool
	}{
		{"quoted r.loop", `jobs."r.loop".loop.for=10m`, func(s *Scenario) bool {
			return s.Jobs["r.loop"].Loop.For == 10*time.Minute && s.Jobs["r"].Loop.For == 0
		}},
		{"quoted r", `jobs."r".loop.for=10m`, func(s *Scenario) bool {
			return s.Jobs["r"].Loop.For == 10*time.Minute && s.Jobs["r.loop"].Loop.For == 0
		}},
		{"quoted topic config", `topics.traffic.config."retention.ms"=5`, func(s *Scenario) bool {
			return s.Topics["traffic"].Config["retention.ms"] == "5" && s.Topics["traffic"].Config["retention"] == "1"
		}},
		{"unambiguous dotted job", "jobs.replay.v2.speed=4", func(s *Scenario) bool { return s.Jobs["replay.v2"].Speed.Factor == 4 }},
		{"quoted dotted job", `jobs."replay.v2".speed=4`, func(s *Scenario) bool { return s.Jobs["replay.v2"].Speed.Factor == 4 }},
		{"quoted index", `jobs.r.assert."0"=requests.sent > 0`, func(s *Scenario) bool { return len(s.Jobs["r"].Assert) == 1 }},
	}
	for _, tt := range oks {
		t.Run(tt.name, func(t *testing.T) {
			s := mustLoad(t, src, Options{Env: envOf(nil), Set: []string{tt.set}})
			if !tt.check(s) {
				t.Errorf("--set %s: did not set what it names", tt.set)
			}
		})
	}
}

// TestEmptyVariableNamed: an error about a value that a ${VAR} set to ""
// (or unset with an empty default) made empty names the variable and how
// to give it a value; the --set it suggests does.
func TestEmptyVariableNamed(t *testing.T) {
	const head = "version: 1\nname: e\nvars:\n  tgt: ${TARGET}\n  blank: \"\"\n"
	const job = "jobs:\n  r:\n    source: {pcap: {path: a.pcap}}\n    sink: {http: {target: t}}\n"
	tests := []struct {
		name, targets, want string
	}{
		{"empty", `targets: {t: {url: "${URL}"}}`,
			"s.yaml:6:20: targets.t.url: must not be empty (${URL} is empty: give URL a value in the environment or an --env-file, or with --set vars.URL=…)"},
		{"empty default", `targets: {t: {url: "${NOPE:-}"}}`,
			"s.yaml:6:20: targets.t.url: must not be empty (${NOPE} is empty: give NOPE a value in the environment or an --env-file, or with --set vars.NOPE=…)"},
		{"through a vars entry", `targets: {t: {url: "${tgt}"}}`,
			"s.yaml:6:20: targets.t.url: must not be empty (${tgt} is empty: vars.tgt reads ${TARGET}, which is empty; give TARGET a value in the environment or an --env-file, or set the entry: --set vars.tgt=…)"},
		{"an empty vars entry", `targets: {t: {url: "${blank}"}}`,
			"s.yaml:6:20: targets.t.url: must not be empty (${blank} is empty: vars.blank is empty; give it a value in the file or with --set vars.blank=…)"},
		{"part of a value", `targets: {t: {url: "http://127.0.0.1:1", timeout: "${T}s"}}`,
			`s.yaml:6:51: targets.t.timeout: must be a duration greater than 0, such as 5s, 1m30s or 250ms (units ns, us, ms, s, m, h) (${T} is empty: give T a value in the environment or an --env-file, or with --set vars.T=…)`},
	}
	env := envOf(map[string]string{"URL": "", "TARGET": "", "T": ""})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := head + tt.targets + "\n" + job
			ds := loadErr(t, src, Options{Env: env})
			if len(ds) != 1 || ds[0].String() != tt.want {
				t.Errorf("got\n%v\nwant\n%s", ds, tt.want)
			}
		})
	}
	// the --set the hint gives is one that works
	src := head + `targets: {t: {url: "${URL}"}}` + "\n" + job
	mustLoad(t, src, Options{Env: env, Set: []string{"vars.URL=http://127.0.0.1:1"}})
	src = head + `targets: {t: {url: "${tgt}"}}` + "\n" + job
	mustLoad(t, src, Options{Env: env, Set: []string{"vars.tgt=http://127.0.0.1:1"}})
	// a default that applies is no error, and an empty variable elsewhere
	// does not add to an unrelated error
	src = head + `targets: {t: {url: "${URL:-http://127.0.0.1:1}", timeout: "${URL}5x"}}` + "\n" + job
	ds := loadErr(t, src, Options{Env: env})
	if len(ds) != 1 || !strings.Contains(ds[0].Message, "(${URL} is empty") || ds[0].Col != 59 {
		t.Errorf("got %v", ds)
	}
}

// TestTargetURLPathWarned: a target URL's path and query are not where a
// replay sends requests (each keeps its own): validate says so, and how to
// send them elsewhere. A bare "/" says nothing.
func TestTargetURLPathWarned(t *testing.T) {
	for _, tt := range []struct {
		url  string
		warn bool
	}{
		{"http://staging:8080", false},
		{"http://staging:8080/", false},
		{"http://staging:8080/shadow", true},
		{"https://staging/?a=1", true},
	} {
		src := "version: 1\nname: t\ntargets:\n  app: {url: \"" + tt.url + "\"}\njobs:\n  r:\n    source: {window: w}\n    sink: {http: {target: app}}\nwindows:\n  w: {topic: x, from: 2026-01-01T00:00:00Z, to: 2026-01-01T00:01:00Z}\ntopics:\n  x: {name: x}\nkafka: {brokers: [embedded]}\n"
		s := mustLoad(t, src, Options{Env: envOf(nil)})
		got := strings.Contains(s.Warnings.Error(), "targets.app.url: its path and query are not used")
		if got != tt.warn {
			t.Errorf("%s: warned %v, want %v (%v)", tt.url, got, tt.warn, s.Warnings)
		}
	}
}

// TestInterpolateShellFormsHint: the shell's ${X-d}, ${X?msg} and ${X+alt}
// (without the colon) say what to write instead.
func TestInterpolateShellFormsHint(t *testing.T) {
	env := envOf(map[string]string{"A": "1"})
	for _, tc := range []struct{ in, want string }{
		{"${X-d}", "${X-d} is not set: set it where the scenario runs (environment, --env-file); for a default, write ${X:-d}"},
		{"${X?msg}", "invalid variable reference ${X?msg} (want ${X}, ${X:-default} or ${X:?message})"},
		{"${X+alt}", "invalid variable reference ${X+alt} (want ${X}, ${X:-default} or ${X:?message})"},
		{"${Y}", "${Y} is not set: set it where the scenario runs (environment, --env-file), or give it a default: ${Y:-…}"},
		{"${-x}", "invalid variable reference ${-x}"},
	} {
		_, _, err := interpolate(tc.in, env)
		if err == nil || err.Error() != tc.want {
			t.Errorf("interpolate(%q): got %v, want %q", tc.in, err, tc.want)
		}
	}
}
