package fleet

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRestricted(t *testing.T) {
	work := t.TempDir()
	t.Setenv("AGENT_SECRET", "from-the-environment")
	base := `version: 1
name: t
kafka: {brokers: [embedded]}
targets:
  t: {url: "${TARGET}"}
jobs:
  replay:
    source: {gor: {path: %s}}
    sink: {http: {target: t}}
`
	vars := map[string]string{"TARGET": "http://127.0.0.1:9"}
	tests := []struct {
		name, path, extra string
		vars              map[string]string
		want              string // "" for success
	}{
		{"inside", "in.gor", "", vars, ""},
		{"outside", "/etc/passwd", "", vars, "is outside"},
		{"dot-dot", "../../../x.gor", "", vars, "is outside"},
		{"env var not from agent vars", "in.gor", "", map[string]string{}, "TARGET"},
		{"env() refused", "in.gor", "    rewrite:\n      - set-header: {name: X, value: 'env(\"AGENT_SECRET\")'}\n", vars, "env() in an expression"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(base, "%s", tt.path, 1) + tt.extra
			file := filepath.Join(work, "jobs", "j", "s.yaml")
			_ = os.MkdirAll(filepath.Dir(file), 0o700)
			_, err := LoadRestricted(file, []byte(text), nil, tt.vars, work)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
	// ${VAR} never reads the agent's environment.
	text := strings.Replace(base, "%s", "in.gor", 1)
	text = strings.Replace(text, "${TARGET}", "http://${AGENT_SECRET}:1", 1)
	if _, err := LoadRestricted(filepath.Join(work, "s.yaml"), []byte(text), nil, vars, work); err == nil || strings.Contains(err.Error(), "from-the-environment") {
		t.Fatalf("environment leaked or accepted: %v", err)
	}
}

func TestTargetAllowed(t *testing.T) {
	tests := []struct {
		host     string
		patterns []string
		want     bool
	}{
		{"127.0.0.1:8080", []string{"127.0.0.1:*"}, true},
		{"127.0.0.2:8080", []string{"127.0.0.1:*"}, false},
		{"api.staging:443", []string{"*.staging"}, true},
		{"api.prod:443", []string{"*.staging"}, false},
		{"api.staging:443", []string{"*.staging:8080"}, false},
		{"x:1", nil, false},
		// IPv6 literals are read literally, not as a character class.
		{"[::1]:8080", []string{"[::1]:*"}, true},
		{"[::1]:8080", []string{"[::1]"}, true},
		{"[::1]:8080", []string{"[::1]:9090"}, false},
		{"1:8080", []string{"[::1]:*"}, false},
		{"[fd00::2]:80", []string{"[fd00::1]:*"}, false},
		// A pattern without a port matches any port of its host.
		{"api.staging:80", []string{"api.staging"}, true},
	}
	for _, tt := range tests {
		if got := TargetAllowed(tt.host, tt.patterns); got != tt.want {
			t.Errorf("TargetAllowed(%q, %q) = %v", tt.host, tt.patterns, got)
		}
	}
}

func TestTargetHostPort(t *testing.T) {
	tests := []struct{ url, want string }{
		{"http://api.staging.internal/", "api.staging.internal:80"},
		{"https://api.staging.internal", "api.staging.internal:443"},
		{"http://api.staging.internal:8080/x", "api.staging.internal:8080"},
		{"http://[::1]/", "[::1]:80"},
		{"https://[::1]:8443/", "[::1]:8443"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := TargetHostPort(u); got != tt.want {
			t.Errorf("TargetHostPort(%q) = %q, want %q", tt.url, got, tt.want)
		}
		// The agent's own example pattern matches a URL without a port.
		if strings.HasPrefix(tt.want, "api.") && !TargetAllowed(TargetHostPort(u), []string{"*.staging.internal:*"}) {
			t.Errorf("%q is not allowed by *.staging.internal:*", tt.url)
		}
	}
}

func TestMaskedLog(t *testing.T) {
	l := newMaskedLog(newSecretMasks(map[string]string{"PASSWORD": "hunter22", "PORT": "80"}))
	_, _ = l.Write([]byte("connecting with hunter22 to port 80\n"))
	if got := l.String(); strings.Contains(got, "hunter22") || !strings.Contains(got, "port 80") {
		t.Fatalf("masked log: %q", got)
	}
}

// TestSecretMasks: the agent's masks, built once, hide every form of a
// --var value of 4 bytes or more; no masks (the submitter's finishJob) hide
// nothing.
func TestSecretMasks(t *testing.T) {
	const secret = `pa ss/"w"`
	tests := []struct {
		name  string
		masks *secretMasks
		in    string
		want  string
	}{
		{"as written", newSecretMasks(map[string]string{"P": secret}), "x " + secret + " y", "x *** y"},
		{"quoted", newSecretMasks(map[string]string{"P": secret}), `msg="pa ss/\"w\""`, `msg="***"`},
		{"query", newSecretMasks(map[string]string{"P": secret}), "?p=pa+ss%2F%22w%22", "?p=***"},
		{"path", newSecretMasks(map[string]string{"P": secret}), "/pa%20ss%2F%22w%22", "/***"},
		{"short values kept", newSecretMasks(map[string]string{"PORT": "80"}), "port 80", "port 80"},
		// An expression's upper() of it, in its error's text (the
		// security walk: `invalid operation: int(TOKVALUE123)`).
		{"other case", newSecretMasks(map[string]string{"T": "tokVALUE123"}), "invalid operation: int(TOKVALUE123)", "invalid operation: int(***)"},
		{"base64", newSecretMasks(map[string]string{"T": "tokVALUE123"}), `toBase64 = "dG9rVkFMVUUxMjM="`, `toBase64 = "***"`},
		{"hex", newSecretMasks(map[string]string{"T": "tokVALUE123"}), "746F6B56414C5545313233!", "***!"},
		{"other case, not ASCII", newSecretMasks(map[string]string{"T": "pässwört1"}), "error: int(PÄSSWÖRT1)", "error: int(***)"},
		{"nil masks nothing", nil, "x " + secret, "x " + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.masks.mask(tt.in); got != tt.want {
				t.Errorf("mask(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	a, err := NewAgent(AgentConfig{Name: "a", Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{make([]byte, ed25519.PublicKeySize)},
		WorkDir: t.TempDir(), Vars: map[string]string{"P": secret}})
	if err != nil {
		t.Fatal(err)
	}
	if got := a.secrets.mask(secret); got != "***" {
		t.Errorf("the agent's masks: %q", got)
	}
}

// TestLoadRestrictedEnvIndirect: env() reads the agent's process
// environment; the textual check for "env(" is not what refuses it. Every
// way of reaching the function is refused: through a variable, through
// $env, behind a comment, and in a --set override.
func TestLoadRestrictedEnvIndirect(t *testing.T) {
	work := t.TempDir()
	t.Setenv("AGENT_SECRET", "from-the-environment")
	t.Setenv("TARGET", "http://the-environment-not-the-var:1")
	base := `version: 1
name: t
kafka: {brokers: [embedded]}
targets:
  t: {url: "${TARGET}"}
jobs:
  replay:
    source: {gor: {path: in.gor}}
    sink: {http: {target: t}}
`
	vars := map[string]string{"TARGET": "http://127.0.0.1:9"}
	header := func(expr string) string {
		return base + "    rewrite:\n      - set-header: {name: X, value: '" + expr + "'}\n"
	}
	tests := []struct {
		name, text string
		set        []string
	}{
		{"through a variable", header(`let f = env; f("AGENT_SECRET")`), nil},
		{"through $env", header(`$env.env/**/("AGENT_SECRET")`), nil},
		{"through get($env)", header(`let f = get($env, "e" + "nv"); f("AGENT_SECRET")`), nil},
		{"behind a comment, a --var name", header(`env/**/("TARGET")`), nil},
		{"in a --set override", base, []string{`jobs.replay.filter=env("TARGET") != ""`}},
		{"yaml escape", base + "    filter: \"\\x65nv(\\\"TARGET\\\") != ''\"\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(work, "jobs", "j", "s.yaml")
			_ = os.MkdirAll(filepath.Dir(file), 0o700)
			_, err := LoadRestricted(file, []byte(tt.text), tt.set, vars, work)
			if err == nil || !strings.Contains(err.Error(), "env") {
				t.Fatalf("accepted (or refused for another reason): %v", err)
			}
			if strings.Contains(err.Error(), "from-the-environment") || strings.Contains(err.Error(), "the-environment-not-the-var") {
				t.Fatalf("the error shows the environment: %v", err)
			}
		})
	}
}

// TestMaskedLogEdges: a --var value cut by the log's size limit, or written
// escaped (a quoted log value, JSON, a URL), is masked too.
func TestMaskedLogEdges(t *testing.T) {
	const secret = `s3cr3t-"pass\word"`
	l := newMaskedLog(newSecretMasks(map[string]string{"TOKEN": secret}))
	_, _ = l.Write([]byte(strings.Repeat("x", maxLog-6) + secret + "\n"))
	got := l.String()
	for k := 4; k <= len(secret); k++ {
		if strings.Contains(got, secret[:k]) {
			t.Fatalf("the log shows %q of the secret (truncated at %d bytes)", secret[:k], len(got))
		}
	}
	l = newMaskedLog(newSecretMasks(map[string]string{"TOKEN": secret}))
	slog.New(slog.NewTextHandler(l, nil)).Warn("failed", "err", "token "+secret+" refused")
	b, _ := json.Marshal(secret)
	_, _ = l.Write(append(b, '\n'))
	_, _ = l.Write([]byte("http://u:" + url.QueryEscape(secret) + "@h/ and " + url.PathEscape(secret) + "\n"))
	if got := l.String(); strings.Contains(got, "s3cr3t") {
		t.Fatalf("escaped secret shown:\n%s", got)
	}
}

// TestEnvRefusalOneMessage: the agents (LoadRestricted) and the submitter
// (CheckSubmit) refuse env() with one message, the same words whether the
// call is found in the text or only compiled (a --set override).
func TestEnvRefusalOneMessage(t *testing.T) {
	work := t.TempDir()
	file := filepath.Join(work, "s.yaml")
	base := `version: 1
name: t
kafka: {brokers: [embedded]}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {gor: {path: in.gor}}
    sink: {http: {target: t}}
`
	tests := []struct {
		name, text string
		set        []string
		call       string
	}{
		{"in the text", base + "    filter: 'env(\"X\") != \"\"'\n", nil, "env()"},
		{"in a --set override", base, []string{`jobs.replay.filter=env("X") != ""`}, `env("X")`},
		{"not a --var, in a --set override", base, []string{`jobs.replay.filter=env("HOME") != ""`}, `env("HOME")`},
		{"not a --var, escaped in the text", base + "    filter: \"\\x65nv(\\\"HOME\\\") != ''\"\n", nil, `env("HOME")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.call + " " + envRefused
			// X is a --var: env("X") would read the environment, not it.
			_, err := LoadRestricted(file, []byte(tt.text), tt.set, map[string]string{"X": "v"}, work)
			if err == nil || !strings.HasPrefix(err.Error(), file+":") || !strings.HasSuffix(err.Error(), ": "+want) {
				t.Errorf("agent: %v, want %s:…: %s", err, file, want)
			}
			_, err = CheckSubmit(SubmitRequest{File: file, Text: []byte(tt.text), Set: tt.set, Job: "replay", Selector: Selector{"role": "x"}})
			var inv *InvalidScenarioError
			if !errors.As(err, &inv) || len(inv.Problems) != 1 || !strings.HasPrefix(inv.Problems[0], file+":") || !strings.HasSuffix(inv.Problems[0], ": "+want) {
				t.Errorf("submitter: %v, want one problem %s:…: %s", err, file, want)
			}
		})
	}
}

// TestRecordedVarRefused: a recording (a job with a kafka sink) whose
// rewrite holds an agent --var's value is refused: the value would be in
// the topic's records, for whoever reads the topic (the security walk
// read X-Leak2: s3cr3tTOKENvalue there). A replay's rewrite may use it.
func TestRecordedVarRefused(t *testing.T) {
	work := t.TempDir()
	vars := map[string]string{"SECRET_TOKEN": "s3cr3tTOKENvalue", "PORT": "8080"}
	record := "version: 1\nname: r\nkafka: {brokers: [embedded]}\ntopics:\n  traffic: {name: web-http}\njobs:\n  record:\n    source: {pcap: {path: in.pcap, ports: [\"${PORT}\"]}}\n%s    sink: {kafka: {topic: traffic}}\n"
	replay := "version: 1\nname: p\ntargets:\n  t: {url: \"http://127.0.0.1:9\"}\njobs:\n  replay:\n    source: {gor: {path: in.gor}}\n%s    sink: {http: {target: t}}\n"
	leak := "    rewrite:\n      - set-header: {name: X-Leak, value: '\"${SECRET_TOKEN}\"'}\n"
	for _, tc := range []struct {
		name, text string
		refused    bool
	}{
		{"record with the var in a rewrite", fmt.Sprintf(record, leak), true},
		{"record with the var as a header's name", fmt.Sprintf(record, "    rewrite:\n      - set-header: {name: \"${SECRET_TOKEN}\", value: '\"x\"'}\n"), true},
		{"record with the var as a parameter's name", fmt.Sprintf(record, "    rewrite:\n      - set-query: {name: \"${SECRET_TOKEN}\", value: '\"x\"'}\n"), true},
		{"record with a rewrite of no var", fmt.Sprintf(record, "    rewrite:\n      - set-header: {name: X-Env, value: '\"prod\"'}\n"), false},
		{"replay with the var in a rewrite", fmt.Sprintf(replay, leak), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadRestricted(filepath.Join(work, "s.yaml"), []byte(tc.text), nil, vars, work)
			switch {
			case tc.refused && (err == nil || !strings.Contains(err.Error(), "holds the value of this agent's --var SECRET_TOKEN")):
				t.Fatalf("error %v, want the recorded --var refused", err)
			case tc.refused && strings.Contains(err.Error(), vars["SECRET_TOKEN"]):
				t.Fatalf("the refusal shows the value: %v", err)
			case !tc.refused && err != nil:
				t.Fatalf("refused: %v", err)
			}
		})
	}
}

// TestMaskedLogCutInAnyCase: a published log cut at its size limit inside
// a --var value written in capitals drops that value's start, as it does
// for the value as written (the review: the masks are kept in lower case,
// the cut compared them with the text as it is).
func TestMaskedLogCutInAnyCase(t *testing.T) {
	const secret = "SECRETTOKENVALUE1234"
	l := newMaskedLog(newSecretMasks(map[string]string{"TOK": secret}))
	head := strings.Repeat(secret+" ", 3)
	pad := strings.Repeat("x", maxLog+l.longest-10-len(head))
	if _, err := l.Write([]byte(head + pad + secret + strings.Repeat("y", 200))); err != nil {
		t.Fatal(err)
	}
	if out := l.String(); strings.Contains(out, secret[:4]) || !strings.HasSuffix(out, "[log truncated]\n") {
		t.Errorf("the cut log shows the value's start: …%q", out[max(len(out)-60, 0):])
	}
}
