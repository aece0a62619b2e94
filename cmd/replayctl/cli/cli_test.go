package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var diagLine = regexp.MustCompile(`^(.+):(\d+):(\d+): (.+)$`)

func TestValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := write(t, dir, "bad.yaml", `version: 1
name: bad
targets:
  app: {url: "http://127.0.0.1:9", timeout: soon}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: fast
    filter: 'req.method =='
    sink: {http: {target: missing}}
`)
	good := write(t, dir, "good.yaml", `version: 1
name: good
targets:
  app: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: 2
    sink: {http: {target: app}}
`)

	t.Run("every problem with its position", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", bad)
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			m := diagLine.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("stderr line %q is not FILE:LINE:COL: message", l)
				continue
			}
			if m[1] != bad {
				t.Errorf("diagnostic names file %q, want %q", m[1], bad)
			}
			lines = append(lines, l)
		}
		// The timeout (line 4), the speed (8), the filter (9) and the missing target (10).
		for _, line := range []string{":4:", ":8:", ":9:", ":10:"} {
			found := false
			for _, l := range lines {
				found = found || strings.Contains(l, line)
			}
			if !found {
				t.Errorf("no diagnostic on line %s of bad.yaml in:\n%s", strings.Trim(line, ":"), r.stderr)
			}
		}
	})
	t.Run("valid file", func(t *testing.T) {
		r := mustRun(t, ExitOK, "validate", good)
		if strings.TrimSpace(r.stdout) != good+": ok" {
			t.Errorf("stdout = %q, want %q", r.stdout, good+": ok")
		}
	})
	t.Run("one bad file among good ones", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", good, bad)
		if !strings.Contains(r.stdout, good+": ok") || !strings.Contains(r.stderr, bad+":4:") {
			t.Errorf("want the good file ok and the bad one's diagnostics:\n%s", r)
		}
	})
	t.Run("examples", func(t *testing.T) {
		files, err := filepath.Glob(filepath.Join(repoRoot(), "examples", "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no examples: %v", err)
		}
		r := mustRun(t, ExitOK, append([]string{"validate"}, files...)...)
		for _, f := range files {
			if !strings.Contains(r.stdout, f+": ok") {
				t.Errorf("%s not reported ok:\n%s", f, r)
			}
		}
	})
	t.Run("--set changes the outcome", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", good, "--set", "jobs.replay.speed=fast")
		if !strings.Contains(r.stderr, "good.yaml:") {
			t.Errorf("want a diagnostic for the overridden speed:\n%s", r)
		}
		mustRun(t, ExitOK, "validate", good, "--set", "jobs.replay.speed=max")
		mustRun(t, ExitInvalid, "validate", bad, "--set", "jobs.replay.sink.http.target=app") // other problems remain
	})
	t.Run("--env-file supplies a required variable", func(t *testing.T) {
		const v = "REPLAYCTL_CLI_TEST_TARGET_UNSET"
		if os.Getenv(v) != "" {
			t.Fatalf("%s must not be set", v)
		}
		f := write(t, dir, "env.yaml", `version: 1
name: env
targets:
  app: {url: "${`+v+`:?set `+v+` to the target URL}"}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    sink: {http: {target: app}}
`)
		r := mustRun(t, ExitInvalid, "validate", f)
		if !strings.Contains(r.stderr, "set "+v+" to the target URL") || !diagLine.MatchString(strings.Split(r.stderr, "\n")[0]) {
			t.Errorf("want the ${VAR:?message} text at a position:\n%s", r)
		}
		env := write(t, dir, "test.env", v+"=http://127.0.0.1:9\n")
		mustRun(t, ExitOK, "validate", f, "--env-file", env)
	})
	t.Run("usage errors", func(t *testing.T) {
		mustRun(t, ExitInvalid, "validate", good, "--no-such-flag")
		mustRun(t, ExitInvalid, "validate")
		mustRun(t, ExitInvalid, "run")
		mustRun(t, ExitInvalid, "run", good, good)
		mustRun(t, ExitInvalid, "run", good, "--progress", "sometimes")
		mustRun(t, ExitInvalid, "windows", "list", "-o", "yaml", "--data-dir", t.TempDir())
	})
	t.Run("missing file", func(t *testing.T) {
		r := mustRun(t, ExitInvalid, "validate", filepath.Join(dir, "nope.yaml"))
		if !strings.Contains(r.stderr, "nope.yaml") {
			t.Errorf("want the missing file named:\n%s", r)
		}
	})
}

// pipelineYAML records rec.gor into a window and replays it to url.
const pipelineYAML = `version: 1
name: pipeline
topics:
  traffic: {name: pipeline-http, partitions: 2, create: true}
targets:
  app: {url: "%s"}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: recent
  replay:
    needs: [record]
    source: {window: recent}
    speed: 4
    sink: {http: {target: app, workers: 3}}
    report: {json: out/report.json}
    assert: ['%s']
`

func TestRunDryRunSendsNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 5, time.Millisecond)
	tg := newTarget(t)
	f := write(t, dir, "s.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "errors.rate == 0"))
	data := filepath.Join(dir, "data")
	r := mustRun(t, ExitOK, "run", f, "--dry-run", "--data-dir", data)
	for _, want := range []string{
		"job 1: record (record)", "job 2: replay (replay), needs record",
		"speed 4x", "3 workers", `window "recent"`, `save as "recent"`,
		"kafka topic pipeline-http (2 partitions)", "data dir " + data, "assert    errors.rate == 0",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the plan lacks %q:\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, ExitOK, "run", f, "--dry-run", "--data-dir", data, "--set", "jobs.replay.speed=max", "--job", "replay")
	if !strings.Contains(r.stdout, "speed max") || strings.Contains(r.stdout, "(record)") {
		t.Errorf("--set and --job do not show in the plan:\n%s", r.stdout)
	}
	if n := tg.count.Load(); n != 0 {
		t.Errorf("a dry run sent %d requests", n)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a dry run touched the data dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Errorf("a dry run wrote a report: %v", err)
	}
}

// TestSecretsNotEchoed runs the binary: validate, --set and --dry-run never
// print a password, token or secret query value the scenario or the
// environment holds; a value from ${VAR} is shown as ${VAR}.
func TestSecretsNotEchoed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 1, time.Millisecond)
	sec := write(t, dir, "sec.yaml", `version: 1
name: sec
kafka:
  brokers: ["127.0.0.1:1"]
  sasl: {mechanism: SCRAM-SHA-256, username: bob, password: "S3CRETSASL"}
targets:
  t: {url: "http://admin:S3CRETPW@127.0.0.1:9001/?api_key=S3CRETQ", timeout: 1s}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    speed: max
    rewrite:
      - set-header: {name: Authorization, value: '"Bearer S3CRETTOKEN"'}
    sink: {http: {target: t}}
`)
	pw := write(t, dir, "pw.yaml", `version: 1
name: pw
targets:
  t: {url: "http://admin:S3CRETPW@127.0.0.1:99999", timeout: 2s}
  u: {url: "http://admin:S3CRETPW@127.0.0.1:x1", timeout: 2s}
  v: {url: "http://admin:S3CRETPW@127.0.0.1 :80", timeout: 2s}
  w: {url: "${UNSET_URL}", timeout: 2s}
jobs:
  replay:
    source: {gor: {path: rec.gor}}
    sink: {http: {target: t}}
`)
	tests := []struct {
		name string
		args []string
		env  []string
		code int
		want []string
	}{
		{"validate bad URLs", []string{"validate", pw}, []string{"UNSET_URL=ftp://tok:S3CRET@x"}, ExitInvalid, []string{
			`pw.yaml:5:12: targets.u.url: invalid URL "http://admin:xxxxx@127.0.0.1:x1": invalid port ":x1" after host`,
			`pw.yaml:6:12: targets.v.url: invalid URL "http://admin:xxxxx@127.0.0.1 :80"`,
			`pw.yaml:4:12: targets.t.url: URL "http://admin:xxxxx@127.0.0.1:99999" has an invalid port`,
			`pw.yaml:7:12: targets.w.url: URL "${UNSET_URL}": scheme "ftp" is not supported`,
		}},
		{"--set into a secret scalar", []string{"validate", sec, "--set", "kafka.sasl.password.x=1"}, nil, ExitInvalid, []string{
			`--set "kafka.sasl.password.x": "kafka.sasl.password" is a scalar (line 5, column`,
		}},
		{"--set with a bad value", []string{"validate", sec, "--set", "kafka.brokers.0=[S3CRETNEW"}, nil, ExitInvalid, []string{
			`--set "kafka.brokers.0": the value is not valid YAML`,
		}},
		{"dry run", []string{"run", sec, "--dry-run"}, nil, ExitOK, []string{
			`rewrite   set-header Authorization = "Bearer xxxxx"`,
			"sink      http t http://admin:xxxxx@127.0.0.1:9001/?api_key=xxxxx,",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(binary, tt.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), tt.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d:\n%s", code, tt.code, out)
			}
			if strings.Contains(string(out), "S3CRET") {
				t.Errorf("the output shows a secret:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("the output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeGor(t, dir, 5, time.Millisecond)
	tg := newTarget(t)
	t.Run("assertion failed", func(t *testing.T) {
		f := write(t, dir, "assert.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "requests.sent > 1000"))
		r := mustRun(t, ExitAssertion, "run", f, "--data-dir", filepath.Join(dir, "assert-data"))
		if !strings.Contains(r.stdout, "FAIL requests.sent > 1000") || !strings.Contains(r.stderr, "assertion") {
			t.Errorf("want the failed assertion in the summary and on stderr:\n%s", r)
		}
		if n := tg.count.Load(); n != 5 {
			t.Errorf("target counted %d requests, want 5", n)
		}
		if _, err := os.Stat(filepath.Join(dir, "out", "report.json")); err != nil {
			t.Errorf("no report after a failed assertion: %v", err)
		}
	})
	t.Run("input missing at run time", func(t *testing.T) {
		f := copyExample(t, dir, "quickstart.yaml")
		r := mustRun(t, ExitRuntime, "run", f, "--data-dir", filepath.Join(dir, "qs-data"), "--set", "jobs.record.source.pcap.path=missing.pcap")
		if !strings.Contains(r.stderr, "missing.pcap") || !strings.Contains(r.stderr, "no such file") {
			t.Errorf("want a message naming the missing file:\n%s", r)
		}
	})
	t.Run("unreachable brokers", func(t *testing.T) {
		f := write(t, dir, "unreachable.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "errors.rate == 0"))
		r := mustRun(t, ExitRuntime, "run", f, "--brokers", "127.0.0.1:1")
		if !strings.Contains(r.stderr, "127.0.0.1:1") || !strings.Contains(r.stderr, "do not answer") {
			t.Errorf("want a message naming the unreachable brokers:\n%s", r)
		}
	})
	t.Run("window not saved", func(t *testing.T) {
		f := write(t, dir, "nowindow.yaml", fmt.Sprintf(pipelineYAML, tg.URL(), "errors.rate == 0"))
		r := mustRun(t, ExitInvalid, "run", f, "--job", "replay", "--data-dir", filepath.Join(dir, "empty-data"))
		if !strings.Contains(r.stderr, `"recent"`) || !strings.Contains(r.stderr, "empty-data") || !strings.Contains(r.stderr, "no saved windows") {
			t.Errorf("replaying a window never saved: want a usage error naming it and where it was looked for:\n%s", r)
		}
	})
	t.Run("windows of a data dir that is not there", func(t *testing.T) {
		typo := filepath.Join(dir, "no-such-data")
		for _, args := range [][]string{{"windows", "list"}, {"windows", "show", "x"}, {"windows", "rm", "x"}} {
			r := mustRun(t, ExitInvalid, append(args, "--data-dir", typo)...)
			if !strings.Contains(r.stderr, "no data dir "+typo) {
				t.Errorf("%v: want an error naming the missing data dir:\n%s", args, r)
			}
		}
		if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the windows commands created the data dir they were pointed at: %v", err)
		}
	})
}

func TestSchemaVersionCompletion(t *testing.T) {
	t.Parallel()
	r := mustRun(t, ExitOK, "schema")
	var schema map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &schema); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	if s, _ := schema["$schema"].(string); !strings.Contains(s, "2020-12") {
		t.Errorf("$schema = %q, want draft 2020-12", s)
	}
	// The editors' form: a whole ${VAR} reference is a value.
	if defs, _ := schema["$defs"].(map[string]any); defs == nil || defs["reference"] == nil {
		t.Errorf("the schema printed has no $defs/reference")
	}
	r = mustRun(t, ExitOK, "version")
	if !strings.HasPrefix(r.stdout, "replayctl ") || len(strings.TrimSpace(r.stdout)) <= len("replayctl ") {
		t.Errorf("version printed %q", r.stdout)
	}
	r = mustRun(t, ExitOK, "completion", "bash")
	if !strings.Contains(r.stdout, "bash completion") || !strings.Contains(r.stdout, "replayctl") {
		t.Errorf("completion bash printed %.200q", r.stdout)
	}
	mustRun(t, ExitOK, "--help")
	mustRun(t, ExitInvalid, "version", "extra")
}

// TestQuickstart runs the quickstart as a new user would, then replays its
// window again and manages the windows; against the embedded broker and,
// when REPLAYCTL_TEST_KAFKA is set, the real one.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	type setup struct {
		name   string
		conn   []string // --data-dir or --brokers (+ --set for unique names)
		window string
		topic  string
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	cases := []setup{{name: "embedded", conn: []string{"--data-dir", dataDir}, window: "quickstart", topic: "quickstart-http"}}
	if brokers := realKafka(t); brokers != nil {
		win, topic, cat := unique(t, "qs-win"), unique(t, "qs-topic"), unique(t, "qs-cat")
		cases = append(cases, setup{name: "kafka", window: win, topic: topic, conn: []string{
			"--brokers", strings.Join(brokers, ","),
			"--set", "kafka.catalog-topic=" + cat,
			"--set", "topics.traffic.name=" + topic,
			"--set", "jobs.record.save-window=" + win,
			"--set", "jobs.replay.source.window=" + win,
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := copyExample(t, dir, "quickstart.yaml")
			copyExample(t, dir, "quickstart.pcap")
			// The windows commands read the kafka settings from the scenario (-f).
			win := append([]string{"-f", f}, c.conn...)

			r := mustRun(t, ExitOK, append([]string{"run", f}, c.conn...)...)
			for _, want := range []string{"job record: done", "200 requests", "job replay: done", "sent 200", "ok 200", "errors 0", "ok   errors.rate == 0"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("the summary lacks %q:\n%s", want, r)
				}
			}
			rep := readJSON(t, filepath.Join(dir, "reports", "quickstart.json"))
			if sent := rep["requests"].(map[string]any)["sent"]; sent != 200.0 {
				t.Errorf("report requests.sent = %v, want 200", sent)
			}
			// Speed 2 over the recording's ~40 req/s: a scheduled ~80 req/s.
			if s := rep["rate"].(map[string]any)["scheduled"].(float64); s < 70 || s > 90 {
				t.Errorf("report rate.scheduled = %.1f/s, want about 80/s", s)
			}

			r = mustRun(t, ExitOK, append([]string{"run", f, "--job", "replay", "--set", "jobs.replay.speed=max"}, c.conn...)...)
			if !strings.Contains(r.stdout, "sent 200") || strings.Contains(r.stdout, "job record") {
				t.Errorf("the second replay did not send the same 200 requests (alone):\n%s", r)
			}

			r = mustRun(t, ExitOK, append([]string{"windows", "list"}, win...)...)
			if !strings.Contains(r.stdout, c.window) || !strings.Contains(r.stdout, c.topic) || !strings.Contains(r.stdout, "NAME") {
				t.Errorf("windows list:\n%s", r)
			}
			r = mustRun(t, ExitOK, append([]string{"windows", "list", "-o", "json"}, win...)...)
			var ws []map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &ws); err != nil {
				t.Fatalf("windows list -o json: %v\n%s", err, r.stdout)
			}
			found := false
			for _, w := range ws {
				if w["name"] == c.window {
					found = true
					if w["requests"] != 200.0 || w["topic"] != c.topic {
						t.Errorf("window in JSON: %v", w)
					}
				}
			}
			if !found {
				t.Errorf("windows list -o json lacks %s:\n%s", c.window, r.stdout)
			}
			r = mustRun(t, ExitOK, append([]string{"windows", "show", c.window}, win...)...)
			for _, want := range []string{"name", c.window, "offsets", "0:[0,", "requests", "200", "destinations", "127.0.0.1:8080"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("windows show lacks %q:\n%s", want, r.stdout)
				}
			}
			r = mustRun(t, ExitOK, append([]string{"windows", "rm", c.window}, win...)...)
			if !strings.Contains(r.stdout, "removed window "+c.window) {
				t.Errorf("windows rm:\n%s", r)
			}
			r = replayctl(append([]string{"windows", "show", c.window}, win...)...)
			if r.code == ExitOK || !strings.Contains(r.stderr, c.window) {
				t.Errorf("windows show after rm: want a failure naming the window:\n%s", r)
			}
		})
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("report %s: %v", path, err)
	}
	return m
}

// TestUsageErrors: a command line replayctl does not understand exits 2 and
// says what was wrong; a group command without a subcommand shows its help.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"bogus"}, ExitInvalid, `unknown command "bogus"`},
		{[]string{"windows", "bogus"}, ExitInvalid, `unknown command "bogus" for "replayctl windows"`},
		{[]string{"import", "bogus"}, ExitInvalid, `unknown command "bogus" for "replayctl import"`},
		{[]string{"--bogus"}, ExitInvalid, "unknown flag: --bogus"},
		{[]string{"import", "gor"}, ExitInvalid, "give gor's arguments after --"},
		{[]string{"import", "gor", "--", "--exit-after", "soon"}, ExitInvalid, "import gor"},
		{[]string{"windows"}, ExitOK, "replayctl windows [command]"},
		{[]string{"import"}, ExitOK, "replayctl import [command]"},
	} {
		r := mustRun(t, tc.code, tc.args...)
		if !strings.Contains(r.stdout+r.stderr, tc.want) {
			t.Errorf("%v: output lacks %q:\n%s", tc.args, tc.want, r)
		}
	}
}

// TestUnknownFlagSuggests: a misspelled flag is a usage error that names
// the command's flag it likely meant, as a misspelled command does: a
// letter swapped, missing or extra, a long flag given one dash, and a
// subcommand's own flags; a word like none of them gets no guess.
func TestUnknownFlagSuggests(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := write(t, dir, "s.yaml", "version: 1\nname: s\njobs: {}\n")
	for _, tc := range []struct {
		args []string
		want string // the whole stderr
	}{
		{[]string{"run", "--jbo", "x", s}, "replayctl: unknown flag: --jbo (did you mean --job?)\n"},
		{[]string{"run", "--dry-rn", s}, "replayctl: unknown flag: --dry-rn (did you mean --dry-run?)\n"},
		{[]string{"run", "--job=x", "--sett", "a=b", s}, "replayctl: unknown flag: --sett (did you mean --set?)\n"},
		{[]string{"run", "-job", "x", s}, "replayctl: unknown shorthand flag: 'j' in -job (did you mean --job?)\n"},
		{[]string{"jobs", "show", "--trsut", "t.pem", "x"}, "replayctl: unknown flag: --trsut (did you mean --trust?)\n"},
		{[]string{"broker", "--lsiten", "127.0.0.1:0"}, "replayctl: unknown flag: --lsiten (did you mean --listen?)\n"},
		{[]string{"run", "--zzzzzz", s}, "replayctl: unknown flag: --zzzzzz\n"},
		{[]string{"run", "-x", s}, "replayctl: unknown shorthand flag: 'x' in -x\n"},
	} {
		r := mustRun(t, ExitInvalid, tc.args...)
		if r.stderr != tc.want {
			t.Errorf("replayctl %s:\n got %q\nwant %q", strings.Join(tc.args, " "), r.stderr, tc.want)
		}
	}
}
