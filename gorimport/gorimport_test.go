package gorimport

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/scenario"
)

// load converts args and loads the scenario as `replayctl run` would.
func load(t *testing.T, args ...string) (*Result, *scenario.Scenario) {
	t.Helper()
	res, err := convertHere(args)
	if err != nil {
		t.Fatalf("Convert(%q): %v", args, err)
	}
	s, err := scenario.LoadBytes("imported.yaml", res.YAML, scenario.Options{Env: noEnv})
	if err == nil {
		// What `replayctl validate` checks beyond the loader.
		_, err = engine.Compile(s, engine.Options{})
	}
	if err != nil {
		t.Fatalf("produced scenario does not validate: %v\n%s", err, res.YAML)
	}
	return res, s
}

func noEnv(string) (string, bool) { return "", false }

// onlyJob returns the scenario's single job.
func onlyJob(t *testing.T, s *scenario.Scenario) *scenario.Job {
	t.Helper()
	if len(s.JobNames) != 1 {
		t.Fatalf("want 1 job, got %v", s.JobNames)
	}
	return s.Jobs[s.JobNames[0]]
}

func hasWarning(ws []string, sub string) bool {
	for _, w := range ws {
		if strings.Contains(w, sub) {
			return true
		}
	}
	return false
}

// TestIssueExample converts the command line from the feature request.
func TestIssueExample(t *testing.T) {
	res, s := load(t, "--input-kafka-host", "k1:9092", "--input-kafka-topic", "traffic",
		"--input-kafka-start-offset", "1200", "--input-kafka-end-offset", "9800",
		"--output-http", "http://staging:8080", "--exit-after", "300s", "--http-set-header", "X-Replay: 1")
	j := onlyJob(t, s)
	if j.Name != "replay" || j.Source.Kind != scenario.SourceWindow || j.Sink.Kind != scenario.SinkHTTP {
		t.Fatalf("job %s: %s -> %s", j.Name, j.Source.Kind, j.Sink.Kind)
	}
	w := j.Source.WindowRef
	if w == nil || w.Kind != scenario.WindowOffsets || w.Topic.Name != "traffic" || w.Offsets[scenario.AllPartitions] != [2]int64{1200, 9800} {
		t.Fatalf("window: %+v", w)
	}
	if !reflect.DeepEqual(s.Kafka.Brokers, []string{"k1:9092"}) || j.Stop.After != 300*time.Second {
		t.Errorf("brokers %v, stop %v", s.Kafka.Brokers, j.Stop.After)
	}
	if len(j.Rewrite) != 1 || j.Rewrite[0].Action != scenario.SetHeader || j.Rewrite[0].Name != "X-Replay" || j.Rewrite[0].Value.Source != `"1"` {
		t.Errorf("rewrite: %+v", j.Rewrite)
	}
	tg := j.Sink.HTTP.Targets[0]
	if tg.URL.String() != "http://staging:8080" || tg.Timeout != 5*time.Second {
		t.Errorf("target: %s %v", tg.URL, tg.Timeout)
	}
	if len(res.Warnings) != 0 || !strings.Contains(string(res.YAML), `'*': [1200, 9800]`) {
		t.Errorf("want the range on every partition and no warning: %q\n%s", res.Warnings, res.YAML)
	}
	if !strings.Contains(s.Description, "--exit-after 300s --http-set-header 'X-Replay: 1'") {
		t.Errorf("description: %q", s.Description)
	}
}

// TestFlags checks each documented flag: YAML fragments, warnings, and the
// loaded model.
func TestFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		yaml  []string // fragments of the YAML
		warn  []string // fragments of some warning
		check func(t *testing.T, s *scenario.Scenario, j *scenario.Job)
	}{
		{
			name: "input-raw all interfaces",
			args: []string{"--input-raw", ":8080", "--output-stdout"},
			yaml: []string{"interface: any", "ports: [8080]", "responses: false", "stdout: {format: payload}"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				c := j.Source.Capture
				if c.Interface != "any" || !reflect.DeepEqual(c.Ports, []int{8080}) || c.Responses || len(c.Hosts) != 0 {
					t.Errorf("capture: %+v", c)
				}
				if j.Name != "print" || j.Sink.Stdout.Format != "payload" {
					t.Errorf("job %s sink %+v", j.Name, j.Sink.Stdout)
				}
			},
		},
		{
			name: "input-raw host and ports, capture options",
			args: []string{"-input-raw", "10.1.2.3:80,8080", "-input-raw-track-response", "--input-raw-override-snaplen",
				"--input-raw-buffer-size=4mb", "--input-raw-promisc", "--output-http", "http://staging:8080"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				c := j.Source.Capture
				if c.Interface != "any" || !reflect.DeepEqual(c.Hosts, []string{"10.1.2.3"}) || !reflect.DeepEqual(c.Ports, []int{80, 8080}) {
					t.Errorf("capture: %+v", c)
				}
				if !c.Responses || c.Snaplen != 65536 || c.RingSize != 4<<20 || !c.Promiscuous {
					t.Errorf("capture options: %+v", c)
				}
				if j.Name != "mirror" {
					t.Errorf("capture -> http job is %q, want mirror", j.Name)
				}
			},
		},
		{
			name: "input-raw interface name",
			args: []string{"--input-raw", "eth0:80", "--output-stdout"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Source.Capture.Interface != "eth0" {
					t.Errorf("interface %q", j.Source.Capture.Interface)
				}
			},
		},
		{
			name: "input-raw pcap_file engine",
			args: []string{"--input-raw", "dump.pcap:8080", "--input-raw-engine", "pcap_file", "--output-http", "http://staging"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				p := j.Source.Pcap
				if p == nil || p.Path.Raw != "dump.pcap" || !reflect.DeepEqual(p.Ports, []int{8080}) || p.Responses {
					t.Errorf("pcap: %+v", p)
				}
			},
		},
		{
			name: "input-raw bpf filter and random share",
			args: []string{"--input-raw", ":80|25%", "--input-raw-bpf-filter", "dst port 80", "--output-stdout"},
			warn: []string{`--input-raw-bpf-filter "dst port 80" not mapped`},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sample == nil || j.Sample.Percent != 25 || j.Sample.By != nil {
					t.Errorf("sample: %+v", j.Sample)
				}
			},
		},
		{
			name: "input-file speed",
			args: []string{"--input-file", "requests_*.gor|200%", "--output-http", "staging.com"},
			yaml: []string{"gor: {path: requests_*.gor}", "speed: 2", "url: 'http://staging.com'"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Speed.Factor != 2 || j.Source.Gor.Path.Raw != "requests_*.gor" || j.Name != "replay" {
					t.Errorf("job %s speed %+v source %+v", j.Name, j.Speed, j.Source.Gor)
				}
			},
		},
		{
			name: "input-file slow, rate, max-wait",
			args: []string{"--input-file", "a.gor|50%", "--input-file", "b.gor|100", "--input-file-max-wait", "1s", "--output-http", "http://t"},
			warn: []string{"runs the 2 jobs one after another", "replayctl delays them"},
			check: func(t *testing.T, s *scenario.Scenario, _ *scenario.Job) {
				a, b := s.Jobs["replay"], s.Jobs["replay-2"]
				if a.Speed.Factor != 0.5 || b.Rate.PerSecond != 100 || a.MaxGap != time.Second || b.MaxGap != time.Second {
					t.Errorf("a %+v %v, b %+v", a.Speed, a.MaxGap, b.Rate)
				}
			},
		},
		{
			name: "input-file loop bounded by exit-after",
			args: []string{"--input-file", "r.gor", "--input-file-loop", "--exit-after", "30s", "--output-http", "http://t"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Loop.For != 30*time.Second || j.Stop.After != 30*time.Second {
					t.Errorf("loop %+v stop %+v", j.Loop, j.Stop)
				}
			},
		},
		{
			name: "input-file loop without exit-after",
			args: []string{"--input-file", "r.gor", "--input-file-loop", "--output-http", "http://t"},
			warn: []string{"loop: {for: 24h}"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Loop.For != 24*time.Hour {
					t.Errorf("loop %+v", j.Loop)
				}
			},
		},
		{
			name: "input-kafka without offsets",
			args: []string{"--input-kafka-host", "k1:9092,k2:9092", "--input-kafka-topic", "logs", "--input-kafka-json-format", "--output-stdout"},
			warn: []string{"follows the live end"}, // the JSON format is read as it is
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				w := j.Source.WindowRef
				if w.Kind != scenario.WindowLast || w.Last != 15*time.Minute || !reflect.DeepEqual(s.Kafka.Brokers, []string{"k1:9092", "k2:9092"}) {
					t.Errorf("window %+v brokers %v", w, s.Kafka.Brokers)
				}
			},
		},
		{
			name: "input-kafka broker without port",
			args: []string{"--input-kafka-host", "kafka", "--input-kafka-topic", "t", "--input-kafka-end-offset", "10", "--output-stdout"},
			warn: []string{`broker "kafka" has no port`, "starts at offset 0"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if s.Kafka.Brokers[0] != "kafka:9092" || j.Source.WindowRef.Offsets[scenario.AllPartitions] != [2]int64{0, 10} {
					t.Errorf("brokers %v window %+v", s.Kafka.Brokers, j.Source.WindowRef)
				}
			},
		},
		{
			name: "output-http mirror, workers, timeout, original host, skip verify",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a:8080", "--output-http", "https://b",
				"--output-http-workers", "20", "--output-http-timeout", "30s", "--http-original-host", "--output-http-skip-verify"},
			yaml: []string{"targets: [a, b], mode: mirror"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				h := j.Sink.HTTP
				if len(h.Targets) != 2 || h.Mode != "mirror" || h.Workers != 20 || !h.PreserveHost {
					t.Errorf("http sink %+v", h)
				}
				for _, tg := range h.Targets {
					if tg.Timeout != 30*time.Second || !tg.InsecureSkipVerify {
						t.Errorf("target %s: timeout %v skip %v", tg.Name, tg.Timeout, tg.InsecureSkipVerify)
					}
				}
			},
		},
		{
			name: "output-http-workers-min: connections opened ahead",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a:8080", "--output-http-workers-min", "50"},
			yaml: []string{"min-connections: 50"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if h := j.Sink.HTTP; h.MinConnections != 50 || h.WorkersSet {
					t.Errorf("http sink %+v", h)
				}
			},
		},
		{
			name: "output-http-workers-min with workers: the closed model has no minimum",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a:8080", "--output-http-workers", "8", "--output-http-workers-min", "50"},
			warn: []string{"--output-http-workers-min 50 not mapped: --output-http-workers selects replayctl's closed model"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if h := j.Sink.HTTP; h.MinConnections != 0 || h.Workers != 8 {
					t.Errorf("http sink %+v", h)
				}
			},
		},
		{
			name: "output-http split",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a", "--output-http", "http://b", "--split-output"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sink.HTTP.Mode != "split" {
					t.Errorf("mode %q", j.Sink.HTTP.Mode)
				}
			},
		},
		{
			name: "output-http rate and share suffixes",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a|100", "--output-http", "http://b|10%"},
			check: func(t *testing.T, s *scenario.Scenario, _ *scenario.Job) {
				a, b := s.Jobs["replay"], s.Jobs["replay-2"]
				if a.Rate.PerSecond != 100 || a.Sample != nil || b.Sample == nil || b.Sample.Percent != 10 || b.Rate.PerSecond != 0 {
					t.Errorf("a rate %v sample %+v; b rate %v sample %+v", a.Rate, a.Sample, b.Rate, b.Sample)
				}
			},
		},
		{
			// The diagnostics flags point to the flag replayctl has (it
			// named a --log-level that does not exist).
			name: "diagnostics",
			args: []string{"--input-file", "x.gor", "--output-http", "http://a", "--verbose", "2", "--output-http-worker-timeout", "5s"},
			warn: []string{"--verbose \"2\" not mapped: diagnostics; `replayctl run -v` logs progress and counters while running",
				"--output-http-worker-timeout \"5s\" not mapped: replayctl retires no idle workers: a paced replay opens connections as its schedule needs them"},
		},
		{
			name: "output-file and track response",
			args: []string{"--input-raw", ":80", "--input-raw-track-response", "--output-file", "requests.gor", "--output-http-track-response"},
			warn: []string{"--output-http-track-response not mapped"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sink.Gor.Path.Raw != "requests.gor" || j.Name != "save" || !j.Source.Capture.Responses {
					t.Errorf("job %s sink %+v", j.Name, j.Sink.Gor)
				}
			},
		},
		{
			name: "output-kafka records a window",
			args: []string{"--input-raw", ":8080", "--output-kafka-host", "192.168.0.1:9092", "--output-kafka-topic", "kafka-log",
				"--kafka-tls-ca-cert", "ca.pem", "--kafka-tls-client-cert", "c.pem", "--kafka-tls-client-key", "k.pem", "--exit-after", "1m"},
			yaml: []string{"save-window: gor-recording", "kafka-log: {name: kafka-log, create: true}"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Name != "record" || j.Sink.Kafka.Topic.Name != "kafka-log" || !j.Sink.Kafka.Topic.Create || j.SaveWindow != "gor-recording" || j.Stop.After != time.Minute {
					t.Errorf("job %+v", j)
				}
				if s.Kafka.Brokers[0] != "192.168.0.1:9092" || s.Kafka.TLS == nil || s.Kafka.TLS.CAFile.Raw != "ca.pem" || s.Kafka.TLS.KeyFile.Raw != "k.pem" {
					t.Errorf("kafka %+v tls %+v", s.Kafka, s.Kafka.TLS)
				}
			},
		},
		{
			name: "output-null alone",
			args: []string{"--input-raw", ":80", "--output-null"},
			warn: []string{"no null sink"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sink.Stdout.Format != "summary" {
					t.Errorf("sink %+v", j.Sink.Stdout)
				}
			},
		},
		{
			name: "set-header, set-param, literal url rewrite",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-set-header", "User-Agent: Gor",
				"--http-set-param", "api_key=1", "--http-rewrite-url", "/v1/:/v2/", "--http-rewrite-url", "^/old$:/new",
				"--http-rewrite-url", `/v1/user/([^\/]+)/ping:/v2/user/$1/ping`, "--http-rewrite-header", "Host: ^old.example.com$,new.example.com",
				"--http-rewrite-header", "X-Env: prod,staging", "--http-original-host"},
			yaml: []string{`- set-header: {name: User-Agent, value: '"Gor"'}`, `- set-query: {name: api_key, value: '"1"'}`,
				`- set-url: 'req.url matches "/v1/" ? replace(req.url, "/v1/", "/v2/") : req.url matches "^/old$" ? regexReplace(req.url, "^/old$", "/new") : req.url matches`},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				var acts []string
				for _, r := range j.Rewrite {
					acts = append(acts, string(r.Action))
				}
				want := []string{"set-header", "set-query", "set-url", "set-host", "set-header"}
				if !reflect.DeepEqual(acts, want) {
					t.Fatalf("actions %v, want %v", acts, want)
				}
				req := exprenv.NewRequest("GET", "/old?x=1", "HTTP/1.1", map[string]string{"Host": "old.example.com", "X-Env": "prod-eu"}, nil, false)
				env := exprenv.NewRequestEnv(req)
				steps := []struct {
					i      int
					cond   bool
					result string
				}{{2, false, "/old?x=1"}, {3, true, "new.example.com"}, {4, true, "staging-eu"}}
				for _, st := range steps {
					r := j.Rewrite[st.i]
					if r.If != nil {
						ok, err := expr.Run(r.If.Program, env)
						if err != nil || ok != st.cond {
							t.Errorf("step %d: if %s = %v, %v; want %v", st.i, r.If.Source, ok, err, st.cond)
						}
					}
					got, err := expr.Run(r.Value.Program, env)
					if err != nil || got != st.result {
						t.Errorf("step %d: %s = %v, %v; want %q", st.i, r.Value.Source, got, err, st.result)
					}
				}
			},
		},
		{
			name: "header and param limiters",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-header-limiter", "X-User: 25%", "--http-param-limiter", "uid:1/4"},
			warn: []string{`--http-param-limiter "uid:1/4" not mapped: a job samples by one key only`},
			yaml: []string{`sample: {percent: 25, by: 'req.header("X-User") != "" ? req.header("X-User") : nil'}`},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sample.Percent != 25 || j.Sample.By.Source != `req.header("X-User") != "" ? req.header("X-User") : nil` {
					t.Errorf("sample %+v", j.Sample)
				}
			},
		},
		{
			name: "a Host rewrite without --http-original-host",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--output-file", "out.gor", "--http-rewrite-header", "Host: (.*)\\.example\\.com,$1.beta.example.com"},
			warn: []string{"--http-rewrite-header Host: gor's HTTP output sends the target's host unless --http-original-host, whatever the rewrite made of the Host header: not applied to job replay (it is to the jobs that write files or Kafka)"},
			yaml: []string{`set-host: 'regexReplace(req.header("Host"), "(.*)\\.example\\.com", "$1.beta.example.com")'`},
		},
		{
			name: "an older name of a flag gets the flags with its words",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-header", "User-Agent: x"},
			warn: []string{`unknown gor flag --http-header "User-Agent: x" not mapped (did you mean --http-set-header, --http-allow-header, --http-header-limiter?)`},
		},
		{
			name: "a recording into Kafka is saved once",
			args: []string{"--input-file", "r.gor", "--output-kafka-host", "k:9092", "--output-kafka-topic", "t"},
			warn: []string{`the recording is saved as window "gor-recording", and a name is saved once: run the scenario again with --keep-history`},
		},
		{
			name: "a host-anchored allow-url among others",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-allow-url", "^www.", "--http-allow-url", "/static"},
			warn: []string{`so it matches no request, and the filter keeps what the other --http-allow-url rules match`},
		},
		{
			name: "output-http with a path and a query",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t:8080/shadow?a=1"},
			warn: []string{`--output-http "http://t:8080/shadow?a=1": gor 1.x sends every request to /shadow?a=1`},
			yaml: []string{`url: 'http://t:8080'`, `set-path: '"/shadow"'`, `set-query-string: '"a=1"'`},
		},
		{
			name: "output-http targets with different paths",
			args: []string{"--input-file", "r.gor", "--output-http", "http://a/x", "--output-http", "http://b/y"},
			warn: []string{"not mapped (their paths and queries differ)"},
		},
		{
			name: "param limiter",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-param-limiter", "user_id:10%"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Sample.Percent != 10 || j.Sample.By.Source != `req.param("user_id") != "" ? req.param("user_id") : nil` {
					t.Errorf("sample %+v", j.Sample)
				}
			},
		},
		{
			name: "not supported flags warn",
			args: []string{"--input-raw", ":80", "--output-http", "http://t", "--middleware", "./mw.sh", "--output-tcp", "r:28020",
				"--no-such-flag", "v", "--verbose", "--input-raw-realip-header", "X-Real-IP"},
			warn: []string{`--middleware "./mw.sh" not mapped`, `--output-tcp "r:28020" not mapped`, `unknown gor flag --no-such-flag "v"`,
				"--verbose not mapped", `--input-raw-realip-header "X-Real-IP" not mapped`},
		},
		{
			name: "bool flag with false and deprecated aliases",
			args: []string{"--input-file=r.gor", "--input-file-loop=false", "--output-http=http://t", "--output-http-method", "GET", "--output-http-header", "A: b"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Loop.For != 0 || j.Filter.Source != `req.method == "GET"` || j.Rewrite[0].Name != "A" {
					t.Errorf("loop %+v filter %s", j.Loop, j.Filter.Source)
				}
			},
		},
		{
			name: "positional argument stops gor's flags",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--split-output", "true", "--exit-after", "1s"},
			warn: []string{`argument "true" is not a flag`},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Stop.After != 0 {
					t.Errorf("flags after the positional argument were read: stop %v", j.Stop.After)
				}
			},
		},
		{
			name: "dollar signs survive interpolation",
			args: []string{"--input-file", "r.gor", "--output-http", "http://t", "--http-allow-url", "^/a/${x}$$", "--http-set-header", "X-Cost: $$5 ${HOME}"},
			check: func(t *testing.T, s *scenario.Scenario, j *scenario.Job) {
				if j.Filter.Source != `req.url matches "^/a/${x}$$"` {
					t.Errorf("filter %s", j.Filter.Source)
				}
				if j.Rewrite[0].Value.Source != `"$$5 ${HOME}"` {
					t.Errorf("header value %s", j.Rewrite[0].Value.Source)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, s := load(t, tt.args...)
			for _, f := range tt.yaml {
				if !strings.Contains(string(res.YAML), f) {
					t.Errorf("YAML lacks %q:\n%s", f, res.YAML)
				}
			}
			for _, w := range tt.warn {
				if !hasWarning(res.Warnings, w) {
					t.Errorf("no warning with %q; warnings:\n%s", w, strings.Join(res.Warnings, "\n"))
				}
				if !strings.Contains(string(res.YAML), "# warning: ") {
					t.Errorf("warnings missing from the YAML")
				}
			}
			for _, w := range res.Warnings {
				if !strings.Contains(string(res.YAML), "# warning: "+oneLine(w)+"\n") {
					t.Errorf("warning %q missing from the YAML", w)
				}
			}
			if tt.check != nil {
				var j *scenario.Job
				if len(s.JobNames) == 1 {
					j = s.Jobs[s.JobNames[0]]
				}
				tt.check(t, s, j)
			}
		})
	}
}

// TestFilters runs the produced filter on sample requests.
func TestFilters(t *testing.T) {
	type req struct {
		method, uri string
		headers     map[string]string
		want        bool
	}
	tests := []struct {
		name string
		args []string
		reqs []req
	}{
		{"allow-url", []string{"--http-allow-url", "/api"}, []req{
			{"GET", "/api/users", nil, true},
			{"GET", "/static/app.js", nil, false},
		}},
		{"allow-url any of several, anchored on the path", []string{"--http-allow-url", "^/api/", "--http-allow-url", "^/v2/"}, []req{
			{"GET", "/api/x", map[string]string{"Host": "shop"}, true},
			{"GET", "/v2/x", map[string]string{"Host": "shop"}, true},
			{"GET", "/v3/api/", map[string]string{"Host": "shop"}, false},
		}},
		// gor 1.x matches the request URI, not the Host (proto.Path).
		{"allow-url is not matched against the host", []string{"--http-allow-url", "^www\\."}, []req{
			{"GET", "/", map[string]string{"Host": "www.shop.com"}, false},
			{"GET", "/www.x", map[string]string{"Host": "www.shop.com"}, false},
		}},
		{"unanchored allow-url ignores the host", []string{"--http-allow-url", "api"}, []req{
			{"GET", "/", map[string]string{"Host": "api.shop.com"}, false},
			{"GET", "/v1/api?x=1", map[string]string{"Host": "www.shop.com"}, true},
			{"GET", "/v1?q=api", map[string]string{"Host": "www.shop.com"}, true},
		}},
		{"disallow-url ignores the host", []string{"--http-disallow-url", "internal"}, []req{
			{"GET", "/users", map[string]string{"Host": "internal.corp"}, true},
			{"GET", "/internal/x", map[string]string{"Host": "www.corp"}, false},
		}},
		{"disallow-url, all of them", []string{"--http-disallow-url", "/health", "--http-disallow-url", `\.js$`}, []req{
			{"GET", "/health", nil, false},
			{"GET", "/app.js", nil, false},
			{"GET", "/api", nil, true},
		}},
		{"allow-method", []string{"--http-allow-method", "GET", "--http-allow-method", "OPTIONS"}, []req{
			{"GET", "/", nil, true},
			{"OPTIONS", "/", nil, true},
			{"POST", "/", nil, false},
		}},
		{"allow and disallow headers", []string{"--http-allow-header", "api-version:^v1", "--http-disallow-header", "User-Agent: Replayed by Gor"}, []req{
			{"GET", "/", map[string]string{"Api-Version": "v1.2", "User-Agent": "curl"}, true},
			{"GET", "/", map[string]string{"Api-Version": "v2", "User-Agent": "curl"}, false},
			{"GET", "/", map[string]string{"Api-Version": "v1", "User-Agent": "Replayed by Gor"}, false},
		}},
		{"allow header matching anything drops requests without it", []string{"--http-allow-header", "X-Tenant: .*"}, []req{
			{"GET", "/", nil, false},
			{"GET", "/", map[string]string{"X-Tenant": "a"}, true},
		}},
		{"allow header that may be empty", []string{"--http-allow-header", "X-V: ^v?[0-9]*$", "--http-allow-method", "GET"}, []req{
			{"GET", "/", nil, false},
			{"GET", "/", map[string]string{"X-V": "v2"}, true},
			{"POST", "/", map[string]string{"X-V": "v2"}, false},
		}},
		{"disallow header matching anything keeps requests without it", []string{"--http-disallow-header", "X-Debug: .*"}, []req{
			{"GET", "/", nil, true},
			{"GET", "/", map[string]string{"X-Debug": "1"}, false},
		}},
		{"method and url combined", []string{"--http-allow-method", "POST", "--http-allow-url", "^/a", "--http-allow-url", "^/b", "--http-disallow-url", "^/b/secret"}, []req{
			{"POST", "/a", nil, true},
			{"POST", "/b/ok", nil, true},
			{"POST", "/b/secret", nil, false},
			{"GET", "/a", nil, false},
			{"POST", "/c", nil, false},
		}},
		{"basic auth", []string{"--http-basic-auth-filter", "^customer[0-9]"}, []req{
			{"GET", "/", map[string]string{"Authorization": "Basic Y3VzdG9tZXIxOnB3"}, true}, // customer1:pw
			{"GET", "/", map[string]string{"Authorization": "Basic YWRtaW46cHc="}, false},    // admin:pw
			// gor checks Basic credentials only: the other requests pass.
			{"GET", "/", nil, true},
			{"GET", "/", map[string]string{"Authorization": "Bearer abc.def"}, true},
			{"GET", "/", map[string]string{"Authorization": "Basic !!!"}, false},
			{"GET", "/", map[string]string{"Authorization": "Basic Y3VzdG9tZXIxOnB3", "X-A": "1"}, true},
		}},
		{"basic auth and method", []string{"--http-allow-method", "GET", "--http-basic-auth-filter", "^customer[0-9]"}, []req{
			{"GET", "/", nil, true},
			{"POST", "/", nil, false},
			{"GET", "/", map[string]string{"Authorization": "Basic YWRtaW46cHc="}, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, s := load(t, append([]string{"--input-file", "r.gor", "--output-http", "http://t"}, tt.args...)...)
			j := onlyJob(t, s)
			if j.Filter == nil {
				t.Fatal("no filter")
			}
			for _, r := range tt.reqs {
				env := exprenv.NewRequestEnv(exprenv.NewRequest(r.method, r.uri, "HTTP/1.1", r.headers, nil, false))
				got, err := expr.Run(j.Filter.Program, env)
				if err != nil || got != r.want {
					t.Errorf("%s on %s %s %v = %v, %v; want %v", j.Filter.Source, r.method, r.uri, r.headers, got, err, r.want)
				}
			}
		})
	}
}

func TestConvertErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--input-raw", ":80", "--output-http"}, "flag needs an argument: --output-http"},
		{[]string{"--input-raw"}, "flag needs an argument: --input-raw"},
		{[]string{"--input-raw", ":80", "--output-stdout=maybe"}, "invalid boolean value"},
		{[]string{"---input-raw", ":80"}, "bad flag syntax"},
		{[]string{"--output-stdout"}, "no input"},
		{[]string{"--input-raw", ":80"}, "no output"},
		{[]string{"--input-raw", ":80", "--output-stdout", "--exit-after", "5 minutes"}, "invalid duration"},
		{[]string{"--input-raw", "80", "--output-stdout"}, "want [host]:port"},
		{[]string{"--input-raw", ":http", "--output-stdout"}, "invalid port"},
		{[]string{"--input-raw", ":80|fast", "--output-stdout"}, "limit"},
		{[]string{"--input-file", "r.gor|0%", "--output-stdout"}, "limit"},
		{[]string{"--input-file", "r.gor|200000%", "--output-stdout"}, "out of range"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--http-allow-url", "("}, "invalid regular expression"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--http-set-header", "NoColon"}, "want 'Name: value'"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--http-set-header", "Bad Name: v"}, "is not a header name"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--http-rewrite-header", `"000:00,0`}, "is not a header name"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--http-header-limiter", "X: many"}, "percentage"},
		{[]string{"--input-kafka-host", "k:9092", "--output-stdout"}, "--input-kafka-topic"},
		{[]string{"--input-kafka-host", "k:9092", "--input-kafka-topic", "t", "--input-kafka-start-offset", "9", "--input-kafka-end-offset", "5", "--output-stdout"}, "after"},
		{[]string{"--input-kafka-host", "k:x", "--input-kafka-topic", "t", "--output-stdout"}, "host:port"},
		{[]string{"--input-file", "r.gor", "--output-kafka-host", "k:9092", "--output-kafka-topic", " "}, "not a Kafka topic name"},
		{[]string{"--input-file", "r.gor", "--output-kafka-host", "k:9092", "--output-kafka-topic", "a b"}, "not a Kafka topic name"},
		{[]string{"--input-kafka-host", "k:9092", "--input-kafka-topic", "..", "--output-stdout"}, "not a Kafka topic name"},
		{[]string{"--input-file", "r.gor", "--output-http", "ftp://x"}, "not supported"},
		{[]string{"--input-file", "r.gor", "--output-stdout", "--output-http-workers", "many"}, "integer"},
		{[]string{"--input-file", "\xff", "--output-stdout"}, "UTF-8"},
		{[]string{"--input-file", "r.gor", "--output-file", "."}, "names a directory"},
		{[]string{"--input-file", "r.gor", "--output-file", "out/"}, "names a directory"},
		{[]string{"--input-file", "r.gor", "--output-file", "a/.."}, "names a directory"},
		{[]string{"--input-file", "..|50%", "--output-stdout"}, "names a directory"},
		{[]string{"--input-file", "", "--output-stdout"}, "names a directory"},
		{[]string{"--input-file", "r.gor", "--output-file", "0\x00"}, "NUL byte"},
		{[]string{"-input-file", "\x02", "--output-stdout"}, "control character"},
		{[]string{"--input-file", "r.gor", "--output-file", "a\tb.gor"}, "control character"},
	}
	for _, tt := range tests {
		_, err := Convert(tt.args)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Convert(%q) = %v, want an error with %q", tt.args, err, tt.want)
		}
	}
}

// TestEveryFlagDocumented keeps docs/migration.md in step with the flag table.
func TestEveryFlagDocumented(t *testing.T) {
	doc := readDoc(t)
	for name := range flags {
		if !strings.Contains(doc, "`--"+name) {
			t.Errorf("docs/migration.md does not mention --%s", name)
		}
	}
}

// TestSecretsNotEchoed: the description, the warnings and the errors never
// show a credential in clear where replayctl's tools mask it (URL
// passwords, secret headers and parameters, the basic-auth regexp); the
// scenario's fields keep them, to run.
func TestSecretsNotEchoed(t *testing.T) {
	base := []string{"--input-file", "r.gor"}
	tests := []struct {
		name    string
		args    []string
		secrets []string
		shown   string // in the description
	}{
		{"URL password", []string{"--output-http", "http://user:s3cretpw@127.0.0.1:8080"}, []string{"s3cretpw"}, "http://user:xxxxx@127.0.0.1:8080"},
		{"URL password with a limit", []string{"--output-http", "http://user:s3cretpw@h:8080|10"}, []string{"s3cretpw"}, "http://user:xxxxx@h:8080|10"},
		{"URL password, -flag=value", []string{"--output-http=http://user:s3cretpw@h:8080"}, []string{"s3cretpw"}, "--output-http=http://user:xxxxx@h:8080"},
		{"Authorization header", []string{"--output-http", "http://t", "--http-set-header", "Authorization: Bearer tok.en123"}, []string{"tok.en123"}, "Authorization: Bearer xxxxx"},
		{"API key header", []string{"--output-http", "http://t", "--http-set-header", "X-Api-Key:k3y-value"}, []string{"k3y-value"}, "X-Api-Key: xxxxx"},
		{"header rewrite, not mapped", []string{"--output-http", "http://t", "--http-rewrite-header", "Authorization: Bearer o.ld,Bearer n3wtoken"}, []string{"o.ld", "n3wtoken"}, "Authorization: Bearer xxxxx"},
		{"basic-auth filter", []string{"--output-http", "http://t", "--http-basic-auth-filter", "^admin:hunter2$"}, []string{"hunter2"}, "--http-basic-auth-filter xxxxx"},
		{"secret parameter", []string{"--output-http", "http://t", "--http-set-param", "api_key=K1234"}, []string{"K1234"}, "api_key=xxxxx"},
		{"secret query parameter", []string{"--output-http", "http://t/?token=qwerty1&x=1"}, []string{"qwerty1"}, "token=xxxxx&x=1"},
		{"middleware arguments after a tab", []string{"--output-http", "http://t", "--middleware", "mw\t--token=Qq81z"}, []string{"Qq81z"}, "--middleware 'mw xxxxx'"},
		{"unknown flag with a secret's name", []string{"--output-http", "http://t", "--api-token", "Sup3rSecret"}, []string{"Sup3rSecret"}, "--api-token xxxxx"},
		{"unknown flag with a secret's name, -flag=value", []string{"--output-http", "http://t", "--input-kafka-sasl-password=pw123456"}, []string{"pw123456"}, "--input-kafka-sasl-password=xxxxx"},
		{"middleware arguments", []string{"--output-http", "http://t", "--middleware", "python3 mw.py --api-key=Zk93x -H 'Authorization: Bearer t0k'"}, []string{"Zk93x", "t0k", "mw.py"}, "--middleware 'python3 xxxxx'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, s := load(t, append(append([]string(nil), base...), tt.args...)...)
			var comments []string
			for _, l := range strings.Split(string(res.YAML), "\n") {
				if strings.HasPrefix(l, "#") {
					comments = append(comments, l)
				}
			}
			echoed := s.Description + "\n" + strings.Join(res.Warnings, "\n") + "\n" + strings.Join(comments, "\n")
			for _, sec := range tt.secrets {
				if strings.Contains(echoed, sec) {
					t.Errorf("%q echoed in clear:\n%s", sec, echoed)
				}
			}
			if !strings.Contains(s.Description, tt.shown) {
				t.Errorf("description %q does not show %q", s.Description, tt.shown)
			}
		})
	}
	// An error quoting the value masks it too.
	_, err := Convert([]string{"--input-file", "r.gor", "--output-http", "ftp://u:s3cretpw@h/"})
	if err == nil || strings.Contains(err.Error(), "s3cretpw") {
		t.Errorf("error = %v, want one without the password", err)
	}
}

// TestRedactionWarned: gor copies Authorization and cookies as captured;
// the jobs that write a copy mask them, which the import says.
func TestRedactionWarned(t *testing.T) {
	tests := []struct {
		args []string
		warn bool
	}{
		{[]string{"--input-file", "r.gor", "--output-file", "out.gor"}, true},
		{[]string{"--input-raw", ":80", "--output-kafka-host", "k:9092", "--output-kafka-topic", "t"}, true},
		{[]string{"--input-file", "r.gor", "--output-stdout"}, true},
		{[]string{"--input-file", "r.gor", "--output-http", "http://t"}, false},
	}
	for _, tt := range tests {
		res, s := load(t, tt.args...)
		if got := hasWarning(res.Warnings, "redact: {defaults: false}"); got != tt.warn {
			t.Errorf("%q: redaction warned = %v, want %v: %q", tt.args, got, tt.warn, res.Warnings)
		}
		for _, name := range s.JobNames {
			if j := s.Jobs[name]; tt.warn != (j.Sink.Kind == scenario.SinkHTTP) && !j.Redact.Defaults {
				t.Errorf("%q: job %s does not redact by default", tt.args, name)
			}
		}
	}
}

// TestOutputFileAppendWarned: gor appends to an existing --output-file with
// --output-file-append; the gor sink overwrites it, which the warning says.
func TestOutputFileAppendWarned(t *testing.T) {
	for _, tt := range []struct {
		flag string
		warn bool
	}{
		{"--output-file-append", true},
		{"--output-file-append=true", true},
		{"--output-file-append=false", false},
	} {
		res, _ := load(t, "--input-file", "r.gor", "--output-file", "out.gor", tt.flag)
		if got := hasWarning(res.Warnings, "overwrites its file"); got != tt.warn {
			t.Errorf("%s: overwrite warned = %v, want %v: %q", tt.flag, got, tt.warn, res.Warnings)
		}
		if hasWarning(res.Warnings, "=false") {
			t.Errorf("%s: warned about a flag that changes nothing: %q", tt.flag, res.Warnings)
		}
	}
}

func TestHostRegexpWarned(t *testing.T) {
	for _, tt := range []struct {
		re   string
		warn bool
	}{{`^www\.`, true}, {"^api.example.com/", true}, {"^/api", false}, {"api", false}, {"(?i)^WWW", false}} {
		res, _ := load(t, "--input-file", "r.gor", "--output-http", "http://t", "--http-allow-url", tt.re)
		if got := hasWarning(res.Warnings, "matches no request"); got != tt.warn {
			t.Errorf("%s: warned %v, want %v: %q", tt.re, got, tt.warn, res.Warnings)
		}
	}
}

// TestExitAfterNotPositiveWarned: gor stops only after a positive
// --exit-after; a zero or negative one maps to no stop:, and a negative one
// (a typo, surely) is said so rather than dropped silently.
func TestExitAfterNotPositiveWarned(t *testing.T) {
	res, s := load(t, "--input-file", "r.gor", "--output-http", "http://h", "--exit-after", "-5s")
	if j := onlyJob(t, s); j.Stop.After != 0 {
		t.Errorf("stop.after = %v, want none", j.Stop.After)
	}
	if !hasWarning(res.Warnings, `--exit-after "-5s" not mapped`) {
		t.Errorf("a negative --exit-after is not warned about: %q", res.Warnings)
	}
	res, _ = load(t, "--input-file", "r.gor", "--output-http", "http://h", "--exit-after", "0")
	if hasWarning(res.Warnings, "exit-after") {
		t.Errorf("--exit-after 0 (gor's default: no limit) warned about: %q", res.Warnings)
	}
}

// TestOutputFileOutsideWarned: the scenario writes only under its own
// directory, so an --output-file elsewhere (an absolute path, as gor scripts
// have them) needs --allow-paths: the importer says so, since the scenario
// would not pass validate without it.
func TestOutputFileOutsideWarned(t *testing.T) {
	for _, tt := range []struct {
		path string
		warn bool
	}{
		{"/var/log/gor/requests.gor", true},
		{"../requests.gor", true},
		{"sub/../../requests.gor", true},
		{"requests.gor", false},
		{"sub/requests.gor", false},
	} {
		res, err := Convert([]string{"--input-file", "r.gor", "--output-file", tt.path})
		if err != nil {
			t.Fatal(err)
		}
		if got := hasWarning(res.Warnings, "--allow-paths"); got != tt.warn {
			t.Errorf("--output-file %s: warned %v, want %v: %q", tt.path, got, tt.warn, res.Warnings)
		}
	}
}

// TestNegativeDurationsWarned: a negative --output-http-timeout or
// --input-file-max-wait is taken as unset, and said so rather than clamped
// silently.
func TestNegativeDurationsWarned(t *testing.T) {
	for _, flag := range []string{"--output-http-timeout", "--input-file-max-wait"} {
		res, _ := load(t, "--input-file", "r.gor", "--output-http", "http://h", flag, "-1s")
		if !hasWarning(res.Warnings, flag+` "-1s" is negative: taken as 0 (unset)`) {
			t.Errorf("a negative %s is not warned about: %q", flag, res.Warnings)
		}
		res, _ = load(t, "--input-file", "r.gor", "--output-http", "http://h", flag, "2s")
		if hasWarning(res.Warnings, flag) {
			t.Errorf("%s 2s warned about: %q", flag, res.Warnings)
		}
	}
}

// convertHere converts args for a scenario saved in the working directory,
// where gor ran: relative paths are named as given, with no warning.
func convertHere(args []string) (*Result, error) {
	return ConvertWith(args, Options{Dir: "."})
}
