package scenario

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// header is 4 lines; jobBody puts a job "j" on lines 5-6 and its body from
// line 7, indented 4 spaces.
const header = `version: 1
name: t
topics: {traffic: {name: x}}
targets: {echo: {url: "builtin:echo"}, ref: {url: "http://127.0.0.1:9"}}
`

func jobBody(lines ...string) string {
	return header + "jobs:\n  j:\n    " + strings.Join(lines, "\n    ") + "\n"
}

const replayJob = "source: {window: w}"
const httpSink = "sink: {http: {target: echo}}"
const kafkaSink = "sink: {kafka: {topic: traffic}}"

func loadErr(t *testing.T, src string, opts Options) Diagnostics {
	t.Helper()
	s, err := LoadBytes("s.yaml", []byte(src), opts)
	if err == nil {
		t.Fatalf("loaded, want an error; scenario %+v", s)
	}
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("error %T is not Diagnostics: %v", err, err)
	}
	return ds
}

func wantDiag(t *testing.T, ds Diagnostics, at, fragment string) {
	t.Helper()
	for _, d := range ds {
		if fmt.Sprintf("%d:%d", d.Line, d.Col) == at && strings.Contains(d.Message, fragment) {
			return
		}
	}
	t.Errorf("no diagnostic at %s containing %q; got:\n%v", at, fragment, ds)
}

func TestValidationRules(t *testing.T) {
	tests := []struct {
		name, src, at, fragment string
	}{
		// schema
		{"version", strings.Replace(jobBody(replayJob, httpSink), "version: 1", "version: 2", 1), "1:10", "version: must be 1"},
		{"name pattern", strings.Replace(jobBody(replayJob, httpSink), "name: t", "name: Bad Name", 1), "2:7", "name: must match"},
		{"missing required", "version: 1\nname: t\n", "1:1", `scenario: missing required key "jobs"`},
		{"unknown key", jobBody(replayJob, httpSink, "sped: 2"), "9:5", `jobs.j.sped: unknown key "sped" (did you mean "speed"?)`},
		{"wrong type", jobBody(replayJob, httpSink, "amplify: many"), "9:14", "jobs.j.amplify: must be an integer >= 1"},
		{"missing sink", jobBody(replayJob), "7:5", `jobs.j: missing required key "sink"`},
		{"two sources", jobBody("source: {window: w, gor: {path: x}}", httpSink), "7:13", "must have exactly one of capture, pcap, gor, window"},
		{"two sinks", jobBody(replayJob, "sink: {stdout: {}, gor: {path: x}}"), "8:11", "must have exactly one of kafka, http, gor, stdout"},
		{"bad job name", header + "jobs:\n  -bad: {source: {window: w}, sink: {stdout: {}}}\n", "6:3", `invalid name "-bad"`},
		{"topic partitions", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", "{name: x, partitions: 0}", 1), "3:41", "partitions: must be >= 1 (got 0)"},
		// references
		{"unknown kafka topic", jobBody("source: {gor: {path: x.gor}}", "sink: {kafka: {topic: nope}}"), "8:27", `unknown topic "nope" (topics: traffic)`},
		{"unknown http target", jobBody(replayJob, "sink: {http: {target: nope}}"), "8:27", `unknown target "nope" (targets: echo, ref)`},
		{"unknown targets item", jobBody(replayJob, "sink: {http: {targets: [echo, nope]}}"), "8:35", `unknown target "nope"`},
		{"unknown window topic", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: nope, last: 5m}}\njobs:", 1), "5:22", `unknown topic "nope"`},
		{"unknown need", jobBody("needs: [ghost]", replayJob, httpSink), "7:13", `unknown job "ghost"`},
		{"unknown noise target", jobBody(replayJob, httpSink, "compare: {noise: {target: nope}}"), "9:31", `unknown target "nope"`},
		{"needs cycle", header + "jobs:\n  a: {needs: [b], source: {window: w}, sink: {stdout: {}}}\n  b: {needs: [a], source: {window: w}, sink: {stdout: {}}}\n", "7:15", "needs cycle: a → b → a"},
		{"self need", jobBody("needs: [j]", replayJob, httpSink), "7:13", "needs cycle: j → j"},
		{"save-window is a windows key", strings.Replace(jobBody("source: {gor: {path: x}}", kafkaSink, "save-window: w"), "jobs:", "windows: {w: {recording: r}}\njobs:", 1), "10:18", `"w" is also a windows: key`},
		{"save-window without kafka sink", jobBody(replayJob, httpSink, "save-window: s"), "9:18", "save-window needs a kafka sink"},
		{"http sink none", jobBody(replayJob, "sink: {http: {workers: 2}}"), "8:18", "needs exactly one of target, url, targets"},
		{"http sink two", jobBody(replayJob, "sink: {http: {target: echo, url: \"http://a\"}}"), "8:18", "(got target, url)"},
		{"mode without targets", jobBody(replayJob, "sink: {http: {target: echo, mode: split}}"), "8:39", "mode applies to targets"},
		{"max-streams with http1", jobBody(replayJob, "sink: {http: {target: echo, protocol: http1, max-streams: 8}}"), "8:63", "max-streams applies to HTTP/2"},
		{"unknown protocol", jobBody(replayJob, "sink: {http: {target: echo, protocol: h3}}"), "8:43", "must be one of 'auto', 'http1', 'h2'"},
		{"grpc without descriptors", jobBody(replayJob, httpSink, "compare: {grpc: {}}"), "9:21", `missing required key "descriptors"`},
		{"workers and max-connections", jobBody(replayJob, "sink: {http: {target: echo, workers: 4, max-connections: 9}}"), "8:62", "max-connections caps the open model and workers selects the closed model"},
		{"max-connections below 1", jobBody(replayJob, "sink: {http: {target: echo, max-connections: 0}}"), "8:50", "must be >= 1"},
		{"workers and min-connections", jobBody(replayJob, "sink: {http: {target: echo, workers: 4, min-connections: 9}}"), "8:62", "min-connections opens the open model's connections ahead and workers selects the closed model"},
		{"min-connections with sessions", jobBody(replayJob, "sink: {http: {target: echo, session: true, min-connections: 9}}"), "8:65", "with session: true each recorded connection gets its own"},
		{"min-connections with h2", jobBody(replayJob, "sink: {http: {target: echo, protocol: h2, min-connections: 9}}"), "8:64", "min-connections opens HTTP/1.x connections"},
		{"min-connections over max-connections", jobBody(replayJob, "sink: {http: {target: echo, max-connections: 4, min-connections: 9}}"), "8:70", "min-connections (9) is more than max-connections (4)"},
		{"min-connections below 0", jobBody(replayJob, "sink: {http: {target: echo, min-connections: -1}}"), "8:50", "must be >= 0"},
		// windows
		{"window two kinds", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, last: 5m, from: now}}\njobs:", 1), "5:14", "needs exactly one of recording, offsets, from, last (got from, last)"},
		{"window without topic", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {last: 5m}}\njobs:", 1), "5:14", "topic is required for a last window"},
		{"offsets start after end", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, offsets: {\"0\": [9, 1]}}}\njobs:", 1), "5:46", "start offset 9 is after end offset 1"},
		{"bad time", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, from: yesterday}}\njobs:", 1), "5:37", `invalid time "yesterday"`},
		{"to before from", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, from: \"2026-01-02T00:00:00Z\", to: \"2026-01-01T00:00:00Z\"}}\njobs:", 1), "5:65", "is before from"},
		{"to without from", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, last: 1m, to: now}}\njobs:", 1), "5:45", "to needs from"},
		{"negative reorder", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "windows: {w: {topic: traffic, last: 1m, reorder: -1s}}\njobs:", 1), "5:50", "must be a duration"},
		// values
		{"bad duration", jobBody(replayJob, httpSink, "max-gap: 1 sec"), "9:14", "jobs.j.max-gap: must be a duration"},
		{"bad duration semantic", jobBody(replayJob, httpSink, "stop: {after: 5parsecs}"), "9:19", "must be a duration such as 5s, 1m30s or 250ms (units ns, us, ms, s, m, h)"},
		{"bad size", jobBody("source: {capture: {interface: lo, ring-size: 64XB}}", kafkaSink), "7:50", "(units B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)"},
		{"bad size shape", jobBody("source: {capture: {interface: lo, max-body: lots}}", kafkaSink), "7:49", "must be a size"},
		{"bad rate", jobBody(replayJob, httpSink, "rate: fast"), "9:11", "must be a rate greater than 0 such as 500/s"},
		{"on-loss value", jobBody("source: {gor: {path: x}}", kafkaSink, "on-loss: ignore"), "9:14", "on-loss"},
		{"topic config negative", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", "{name: x, config: {segment.bytes: -5}}", 1), "3:53", `segment.bytes must be at least 14`},
		{"cleanup policy", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", "{name: x, config: {cleanup.policy: foo}}", 1), "3:54", `cleanup.policy must be delete, compact or "delete,compact"`},
		{"topic config not a number", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", "{name: x, config: {retention.ms: abc}}", 1), "3:52", `retention.ms must be an integer`},
		{"topic config choice", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", "{name: x, config: {message.timestamp.type: Now}}", 1), "3:62", `must be one of CreateTime, LogAppendTime`},
		{"redact on a replay", jobBody(replayJob, httpSink, "redact: {defaults: false}"), "9:13", "redact applies to record jobs"},
		{"partition given twice", header + "windows:\n  w: {topic: traffic, offsets: {\"1\": [0, 100], \"01\": [5, 6]}}\njobs:\n  j:\n    source: {window: w}\n    " + httpSink + "\n", "6:48", "windows.w.offsets: partition 1 is given twice"},
		{"bad ignore path", jobBody(replayJob, httpSink, `compare: {ignore: ["$.items[0"]}`), "9:24", `jobs.j.compare.ignore: invalid JSON path "$.items[0"`},
		{"bad redact path", jobBody("source: {gor: {path: x}}", kafkaSink, `redact: {json: ["$..["]}`), "9:21", `jobs.j.redact.json: invalid JSON path "$..["`},
		{"bad set-json path", jobBody(replayJob, httpSink, `rewrite: [{set-json: {path: "$.a[", value: "1"}}]`), "9:33", `invalid JSON path "$.a["`},
		{"key read twice", header + "jobs:\n  ${JOB:-j}:\n    " + replayJob + "\n    " + httpSink + "\n  j:\n    " + replayJob + "\n    " + httpSink + "\n", "9:3", "duplicate key: j reads the same as the key at line 6, column 3"},
		{"speed on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "speed: 2"), "9:12", "jobs.j.speed: pacing applies to replays"},
		{"rate on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "rate: 10/s"), "9:11", "jobs.j.rate: pacing applies to replays"},
		{"amplify on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "amplify: 3"), "9:14", "jobs.j.amplify: pacing applies to replays"},
		{"loop on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "loop: {for: 1m}"), "9:11", "jobs.j.loop: pacing applies to replays"},
		{"max-gap on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "max-gap: 1s"), "9:14", "jobs.j.max-gap: pacing applies to replays"},
		{"start-at on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "start-at: +1m"), "9:15", "jobs.j.start-at: pacing applies to replays"},
		{"compare on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "compare: {status: true}"), "9:14", "jobs.j.compare: needs an http sink"},
		{"html report on a copy", jobBody("source: {gor: {path: x}}", kafkaSink, "report: {html: r.html}"), "9:20", "jobs.j.report.html: the HTML report is for replay jobs"},
		{"spool unknown key", jobBody("source: {gor: {path: x}}", "sink: {kafka: {topic: traffic, spool: {size: 1GiB}}}"), "8:44", `unknown key "size"`},
		{"spool too small", jobBody("source: {gor: {path: x}}", "sink: {kafka: {topic: traffic, spool: {max-bytes: 1KiB}}}"), "8:55", "must be at least 64KiB"},
		{"spool bad size", jobBody("source: {gor: {path: x}}", "sink: {kafka: {topic: traffic, spool: {max-bytes: lots}}}"), "8:55", "size"},
		{"delivery-timeout bad", strings.Replace(jobBody(replayJob, httpSink), "topics:", "kafka: {delivery-timeout: soon}\ntopics:", 1), "3:27", "delivery-timeout"},
		{"delivery-timeout zero", strings.Replace(jobBody(replayJob, httpSink), "topics:", "kafka: {delivery-timeout: 0s}\ntopics:", 1), "3:27", "must be a duration greater than 0"},
		{"duration in days", jobBody(replayJob, httpSink, "stop: {after: 1d}"), "9:19", "must be a duration such as 5s"},
		{"port out of range as text", jobBody("source: {pcap: {path: x.pcap, ports: [\"99999\"]}}", kafkaSink), "7:43", "must be a port number 1..65535"},
		{"size unit", jobBody("source: {capture: {interface: lo, ring-size: 1 PB}}", kafkaSink), "7:50", "must be a size such as 64MiB"},
		{"topic name", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", `{name: "bad topic name!"}`, 1), "3:26", "must be a Kafka topic name"},
		{"topic name dot", strings.Replace(jobBody(replayJob, httpSink), "{name: x}", `{name: ".."}`, 1), "3:26", "must be a Kafka topic name"},
		{"needs twice", header + "jobs:\n  a:\n    " + replayJob + "\n    " + httpSink + "\n  b:\n    needs: [a, a]\n    " + replayJob + "\n    " + httpSink + "\n", "10:16", `job "a" is listed twice`},
		{"one window saved twice", header + "jobs:\n  a:\n    source: {gor: {path: x}}\n    " + kafkaSink + "\n    save-window: w1\n  b:\n    source: {gor: {path: y}}\n    " + kafkaSink + "\n    save-window: w1\n", "13:18", `job "a" saves window "w1" too`},
		{"ring too small", jobBody("source: {capture: {interface: lo, ring-size: 100KiB}}", kafkaSink), "7:50", "must be at least 256KiB"},
		{"merge of a scalar", strings.Replace(jobBody(replayJob, httpSink), "name: t\n", "name: t\n<<: 5\n", 1), "3:5", "a merge key (<<) takes a mapping or a list of mappings"},
		{"merge of a list of scalars", jobBody("<<: [1, 2]", replayJob, httpSink), "7:9", "a merge key (<<) takes a mapping"},
		{"zero rate", jobBody(replayJob, httpSink, "rate: 0/s"), "9:11", "must be a rate greater than 0"},
		{"speed too high", jobBody(replayJob, httpSink, "speed: 5000"), "9:12", `must be a number between 0.01 and 1000 or "max"`},
		{"speed word", jobBody(replayJob, httpSink, "speed: fast"), "9:12", `must be a number between 0.01 and 1000 or "max"`},
		{"speed as gor writes it", jobBody(replayJob, httpSink, "speed: 200%"), "9:12", `must be a number between 0.01 and 1000 or "max" (gor's 200% is speed: 2)`},
		{"speed with x", jobBody(replayJob, httpSink, "speed: 2x"), "9:12", `must be a number between 0.01 and 1000 or "max" (write 2, not "2x")`},
		{"amplify zero", jobBody(replayJob, httpSink, "amplify: 0"), "9:14", "must be an integer >= 1"},
		{"loop zero", jobBody(replayJob, httpSink, "loop: 0"), "9:11", "must be an integer >= 1 or {for: DURATION}"},
		{"loop for bad", jobBody(replayJob, httpSink, "loop: {for: ever}"), "9:11", "must be an integer >= 1 or {for: DURATION}"},
		{"url scheme", strings.Replace(jobBody(replayJob, httpSink), `"http://127.0.0.1:9"`, `"ftp://x"`, 1), "4:51", `scheme "ftp" is not supported`},
		{"url no host", strings.Replace(jobBody(replayJob, httpSink), `"http://127.0.0.1:9"`, `"http://"`, 1), "4:51", "has no host"},
		{"url builtin", strings.Replace(jobBody(replayJob, httpSink), `"builtin:echo"`, `"builtin:void"`, 1), "4:23", "unknown builtin target"},
		{"sink url", jobBody(replayJob, "sink: {http: {url: \"localhost:80\"}}"), "8:24", "scheme"},
		{"cidr", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "safety: {deny-targets: [10.0.0.0/33]}\njobs:", 1), "5:25", `invalid CIDR "10.0.0.0/33"`},
		{"deny target junk", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "safety: {deny-targets: [\"a b\"]}\njobs:", 1), "5:25", "is not a host name, IP or CIDR"},
		{"start-at", jobBody(replayJob, httpSink, "start-at: tomorrow"), "9:15", `invalid time "tomorrow"`},
		{"broker with credentials", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "kafka: {brokers: [\"admin:Hunter2pw@k1:9092\"]}\njobs:", 1), "5:19", `broker "admin:xxxxx@k1:9092" must be host:port or embedded (a broker's credentials go under kafka.sasl`},
		{"deny-target URL", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "safety: {deny-targets: [\"https://admin:Hunter2pw@prod.example.com\"]}\njobs:", 1), "5:25", `"https://admin:xxxxx@prod.example.com" is a URL; deny-targets takes host names`},
		{"broker", strings.Replace(jobBody(replayJob, httpSink), "jobs:", "kafka: {brokers: [\"nohost\"]}\njobs:", 1), "5:19", "must be host:port or embedded"},
		{"save-window reserved name", jobBody("source: {gor: {path: x}}", kafkaSink, "save-window: replayctl.claim/w"), "9:18", `"replayctl.claim/" starts the keys of the catalog's claims`},
		{"redact hash without key", jobBody("source: {gor: {path: x}}", kafkaSink, "redact: {mode: hash}"), "9:20", "mode hash needs a key"},
		{"redact pattern", jobBody("source: {gor: {path: x}}", kafkaSink, "redact: {patterns: ['(']}"), "9:25", "invalid regular expression"},
		{"redact json path", jobBody("source: {gor: {path: x}}", kafkaSink, "redact: {json: [card]}"), "9:21", "must start with $"},
		{"rewrite two actions", jobBody(replayJob, httpSink, "rewrite:", "  - {remove-header: X, remove-query: y}"), "10:9", "exactly one action"},
		{"rewrite no action", jobBody(replayJob, httpSink, "rewrite:", "  - {if: 'true'}"), "10:9", "exactly one action"},
		// expressions: position inside the expression
		{"filter not bool", jobBody(replayJob, httpSink, "filter: 'req.method'"), "9:13", "jobs.j.filter: expected bool"},
		{"filter type error", jobBody(replayJob, httpSink, "filter: 'req.method == 1'"), "9:25", "mismatched types string and int"},
		{"filter plain scalar", jobBody(replayJob, httpSink, "filter: req.nope == 1"), "9:17", "no field nope; there are: method, path"},
		{"filter double quoted", jobBody(replayJob, httpSink, `filter: "req.nope == 1"`), "9:18", "no field nope; there are: method, path"},
		{"filter literal block", jobBody(replayJob, httpSink, "filter: |", "  req.method == \"GET\" &&", "    req.nope"), "11:13", "no field nope; there are: method, path"},
		{"set-header bare text", jobBody(replayJob, httpSink, "rewrite:", "  - set-header: {name: X-Env, value: staging}"), "10:42", `unknown name staging; there are: req, env (a text value needs quotes inside the YAML ones: '"staging"')`},
		{"set-header typo not text", jobBody(replayJob, httpSink, "rewrite:", "  - set-header: {name: X-Env, value: 'eenv(\"E\")'}"), "10:43", `unknown name eenv (did you mean "env"?); there are: req, env`},
		{"set-header env typo not text", jobBody(replayJob, httpSink, "rewrite:", "  - set-header: {name: Authorization, value: '\"Bearer \" + evn(\"TOKEN\")'}"), "10:63", `unknown name evn (did you mean "env"?); there are: req, env`},
		{"filter builtin typo", jobBody(replayJob, httpSink, `filter: 'uper(req.method) == "GET"'`), "9:14", `unknown name uper (did you mean "upper"?)`},
		{"filter =~", jobBody(replayJob, httpSink, `filter: 'req.path =~ "^/api"'`), "9:23", `unexpected token Operator("=") (expr-lang has no =~: write X matches "REGEXP")`},
		{"drop not bool", jobBody(replayJob, httpSink, "rewrite:", "  - drop: '1 + 1'"), "10:15", "expected bool"},
		{"if not bool", jobBody(replayJob, httpSink, "rewrite:", "  - remove-header: X", "    if: 'req.path'"), "11:13", "expected bool"},
		{"set-header value not string", jobBody(replayJob, httpSink, "rewrite:", "  - set-header: {name: X, value: '1'}"), "10:38", "jobs.j.rewrite[0].set-header.value: expected string"},
		// What every request would fail on at run time is refused here.
		{"set-header name with a space", jobBody(replayJob, httpSink, "rewrite:", "  - set-header: {name: Bad Name, value: '\"x\"'}"), "10:28", `"Bad Name" is not a header name`},
		{"remove-header name with a colon", jobBody(replayJob, httpSink, "rewrite:", "  - remove-header: 'X:Y'"), "10:24", `"X:Y" is not a header name`},
		{"regexReplace bad pattern", jobBody(replayJob, httpSink, "rewrite:", "  - set-url: 'regexReplace(req.url, \"([\", \"x\")'"), "10:41", "regexReplace: error parsing regexp: missing closing ]"},
		{"set-path syntax", jobBody(replayJob, httpSink, "rewrite:", "  - set-path: '\"/v2\" +'"), "10:26", "unexpected token EOF"},
		{"sample by not string", jobBody(replayJob, httpSink, "sample: {percent: 10, by: 'len(req.body)'}"), "9:31", "expected string"},
		{"assert not bool", jobBody(replayJob, httpSink, "assert: ['latency.p99']"), "9:14", "jobs.j.assert[0]: expected bool"},
		{"assert bad field", jobBody(replayJob, httpSink, "assert: ['latency.p42 < duration(\"1s\")']"), "9:23", "p42"},
		{"assert field typo", jobBody(replayJob, httpSink, "assert: ['errors.rat < 0.1']"), "9:22", `no field rat (did you mean "rate"?); there are: count, rate`},
		{"assert name typo", jobBody(replayJob, httpSink, "assert: ['latncy.p99 < duration(\"1s\")']"), "9:15", `unknown name latncy (did you mean "latency"?); there are: requests, errors`},
		{"filter field typo", jobBody(replayJob, httpSink, "filter: 'req.methd == \"GET\"'"), "9:18", `no field methd (did you mean "method"?)`},
		{"assert bad duration literal", jobBody(replayJob, httpSink, "assert: ['latency.p99 < duration(\"1 sec\")']"), "9:14", `duration("1 sec")`},
		{"assert status string key", jobBody(replayJob, httpSink, `assert: ['status["200"] > 0']`), "9:22", "cannot use string"},
		{"assert duration against number", jobBody(replayJob, httpSink, "assert: ['latency.p99 < 250']"), "9:27", `(mismatched types time.Duration and int): compare a duration with a duration, such as duration("250ms")`},
		{"assert number against duration", jobBody(replayJob, httpSink, "assert: ['250 > lateness.max']"), "9:19", `compare a duration with a duration, such as duration("250ms")`},
		// YAML
		{"syntax", "version: 1\nname: t\n  bad: indent\n", "3:6", "YAML syntax: mapping values are not allowed"},
		{"tab indent", "version: 1\nname: t\njobs:\n  j:\n\tsource: {gor: {path: x}}\n", "5:1", "a tab: YAML indents with spaces only"},
		{"tab after spaces", "version: 1\nname: t\njobs:\n  j:\n  \tsource: {gor: {path: x}}\n", "5:3", "a tab: YAML indents with spaces only"},
		{"duplicate key", jobBody(replayJob, httpSink, "speed: 1", "speed: 2"), "10:5", `duplicate key "speed" (first at line 9)`},
		{"not a mapping", "- a\n- b\n", "1:1", "must be a mapping"},
		{"empty", "", "1:1", "scenario is empty"},
		{"two documents", jobBody(replayJob, httpSink) + "---\nversion: 1\n", "9:1", "one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := loadErr(t, tt.src, Options{Env: func(string) (string, bool) { return "", false }})
			wantDiag(t, ds, tt.at, tt.fragment)
			for _, d := range ds {
				if d.File != "s.yaml" {
					t.Errorf("diagnostic file %q, want s.yaml: %v", d.File, d)
				}
			}
		})
	}
}

// TestSectionNotAMapping: an http sink written as a URL is one diagnostic,
// at its place; what the section then lacks (target, url, targets) was a
// second one with no line or column.
func TestSectionNotAMapping(t *testing.T) {
	ds := loadErr(t, jobBody(replayJob, `sink: {http: "http://127.0.0.1:1"}`), Options{})
	if len(ds) != 1 || ds[0].Line == 0 || !strings.Contains(ds[0].Message, "jobs.j.sink.http: must be a mapping") {
		t.Errorf("diagnostics %v, want one, at the http key's value", ds)
	}
}

// TestDecapKey reads decap on capture and pcap sources: auto by default,
// off when asked, anything else refused where it is written.
func TestDecapKey(t *testing.T) {
	s := mustLoad(t, jobBody("source: {pcap: {path: x.pcap}}", kafkaSink), Options{})
	if d := s.Jobs["j"].Source.Pcap.Decap; d != "auto" {
		t.Errorf("pcap decap = %q, want auto", d)
	}
	s = mustLoad(t, jobBody("source: {capture: {interface: lo, decap: off}}", kafkaSink), Options{})
	if d := s.Jobs["j"].Source.Capture.Decap; d != "off" {
		t.Errorf("capture decap = %q, want off", d)
	}
	ds := loadErr(t, jobBody("source: {pcap: {path: x.pcap, decap: on}}", kafkaSink), Options{})
	wantDiag(t, ds, "7:42", "decap: value must be one of 'auto', 'off'")
}

// TestIntegralFloats: 8.0 and 1e3 are integers (JSON Schema counts them
// so, and every editor checking the schema passes them): a field taking an
// integer takes their value, instead of its default.
func TestIntegralFloats(t *testing.T) {
	src := header + `jobs:
  j:
    source: {window: w}
    sink: {http: {target: echo, workers: 8.0, max-streams: 10.0}}
    stop: {requests: 1e3}
    amplify: 2.0
    loop: 3.0
windows:
  w: {topic: traffic, offsets: {"0": [0, 100.0]}}
`
	s, err := LoadBytes("s.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	j := s.Jobs["j"]
	h := j.Sink.HTTP
	if h.Workers != 8 || h.MaxStreams != 10 || j.Stop.Requests != 1000 || j.Amplify != 2 || j.Loop.Count != 3 {
		t.Errorf("workers %d, max-streams %d, stop.requests %d, amplify %d, loop %d; want 8, 10, 1000, 2, 3",
			h.Workers, h.MaxStreams, j.Stop.Requests, j.Amplify, j.Loop.Count)
	}
	if got := s.Windows["w"].Offsets[0]; got != [2]int64{0, 100} {
		t.Errorf("offsets %v, want [0 100]", got)
	}
}

// TestWholeReferenceTakesTheFieldsType: a value read whole from ${VAR}
// takes the type it reads as where a number will do (workers: ${N}), and
// stays a string where only a string will do: a password of 123456, true,
// 0x1F or ~ is that text, not an error "must be a string (got number)",
// and workers: "${N}" (quoted, as a flow collection needs) is a number.
func TestWholeReferenceTakesTheFieldsType(t *testing.T) {
	src := header + `kafka:
  brokers: [127.0.0.1:9092]
  sasl:
    mechanism: PLAIN
    username: u
    password: ${PW}
jobs:
  j:
    source: {gor: {path: x.gor}}
    sink: {http: {target: echo, workers: "${N}"}}
`
	for _, pw := range []string{"123456", "true", "0x1F", "~", "1.5", ""} {
		env := map[string]string{"PW": pw, "N": "7"}
		s, err := LoadBytes("s.yaml", []byte(src), Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if err != nil {
			t.Errorf("PW=%q: %v", pw, err)
			continue
		}
		if got := s.Kafka.SASL.Password; got != pw {
			t.Errorf("PW=%q: password %q", pw, got)
		}
		if w := s.Jobs["j"].Sink.HTTP.Workers; w != 7 {
			t.Errorf("workers %d, want 7", w)
		}
	}
}

// TestQuotedReferenceInEitherOrFields: speed and loop take one of two
// shapes (a number or "max"; a count or {for: D}); quoted as a flow
// collection needs, a whole reference was refused there (its hint said to
// write it unquoted, which the YAML refused) while workers took it.
func TestQuotedReferenceInEitherOrFields(t *testing.T) {
	src := header + `jobs:
  j: {source: {gor: {path: x.gor}}, sink: {http: {target: echo}}, speed: "${SPEED}", loop: "${L}"}
`
	for _, c := range []struct {
		speed, loop string
		bad         string
	}{
		{"2", "3", ""},
		{"max", "1", ""},
		{"fast", "3", "jobs.j.speed: must be a number between 0.01 and 1000 or \"max\""},
		{"2", "x", "jobs.j.loop: must be an integer >= 1 or {for: DURATION}"},
	} {
		env := map[string]string{"SPEED": c.speed, "L": c.loop}
		s, err := LoadBytes("s.yaml", []byte(src), Options{Env: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("SPEED=%s L=%s: %v, want %q", c.speed, c.loop, err, c.bad)
			}
			continue
		}
		if err != nil {
			t.Errorf("SPEED=%s L=%s: %v", c.speed, c.loop, err)
			continue
		}
		j := s.Jobs["j"]
		if got := fmt.Sprint(j.Speed.Max, j.Speed.Factor, j.Loop.Count); got != map[string]string{"2": "false 2 3", "max": "true 0 1"}[c.speed] {
			t.Errorf("SPEED=%s L=%s: speed max/factor, loop count = %s", c.speed, c.loop, got)
		}
	}
}

// TestJobKeyIndentedAsAJob: a job's key indented as deep as the job names
// (sink: two spaces short) is one diagnostic that says so, at the key, not
// a "job" named sink missing its source and sink, whose http key was "did
// you mean stop?".
func TestJobKeyIndentedAsAJob(t *testing.T) {
	src := header + "jobs:\n  j:\n    " + replayJob + "\n  " + httpSink + "\n"
	ds := loadErr(t, src, Options{Env: func(string) (string, bool) { return "", false }})
	wantDiag(t, ds, "8:3", `jobs.sink: "sink" is a key of a job, not a job: it is indented as deep as the job names; indent it under its job`)
	wantDiag(t, ds, "7:5", `jobs.j: missing required key "sink"`)
	for _, d := range ds {
		if strings.Contains(d.Message, "jobs.sink") && !strings.Contains(d.Message, "is a key of a job") {
			t.Errorf("a diagnostic about jobs.sink as a job: %v", d)
		}
	}
	// A job that has a source is a job, whatever its name.
	src = header + "jobs:\n  sink:\n    " + replayJob + "\n    sink: {http: {target: nope}}\n"
	ds = loadErr(t, src, Options{Env: func(string) (string, bool) { return "", false }})
	wantDiag(t, ds, "8:27", `jobs.sink.sink.http.target: unknown target "nope"`)
}
