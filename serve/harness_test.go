package serve_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
)

// bin is the replayctl binary the broker and agent processes run.
var bin testutil.Bin

func TestMain(m *testing.M) { testutil.Main(m, "../cmd/replayctl", false, &bin) }

// target is a loopback HTTP server that records what it served.
type target struct {
	url   string
	mu    sync.Mutex
	paths []string
	total atomic.Int64
}

func newTarget(t *testing.T) *target {
	t.Helper()
	tg := &target{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg.url = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.mu.Lock()
		tg.paths = append(tg.paths, r.URL.Path)
		tg.mu.Unlock()
		tg.total.Add(1)
		fmt.Fprintf(w, "ok %s\n", r.URL.Path)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return tg
}

func (tg *target) got() []string {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.paths...)
}

// mine keeps the jobs this run's tokens submitted (a shared Kafka holds
// other runs' jobs too).
func (e *env) mine(js []serve.JobView) []serve.JobView {
	var out []serve.JobView
	for _, j := range js {
		if strings.HasPrefix(j.Submitter, "token:") && strings.Contains(j.Submitter, "-"+e.suffix+" (replayctl serve") {
			out = append(out, j)
		}
	}
	return out
}

// env is a broker, keys, tokens, a scenarios directory with a recorded
// window, agents, and serve instances.
type env struct {
	dir, brokers, key, pub, tokens, scenarios string
	suffix                                    string
	window                                    string
	tok                                       map[string]string // scope → token
}

func (e *env) kafka() kafkaio.Config {
	return kafkaio.Config{Brokers: []string{e.brokers}, ClientID: "serve-test"}
}

const recordPcap = `version: 1
name: seed
kafka: {brokers: [embedded]}
topics:
  traffic: {name: serve-http-SUFFIX, partitions: 2, create: true}
jobs:
  record:
    source: {pcap: {path: PCAP, ports: [8080], responses: true}}
    sink: {kafka: {topic: traffic}}
    save-window: WINDOW
`

// replayYAML is the scenario the API and the UI replay: its target comes
// from a var, its pace from rate (200 requests at 40/s: about 5 s).
const replayYAML = `version: 1
name: replay
description: Replay a recording against a target.
vars:
  target: ${TARGET:-http://127.0.0.1:9}
windows:
  recorded: {recording: WINDOW}
targets:
  staging: {url: "${target}", timeout: 5s}
jobs:
  replay:
    source: {window: recorded}
    rate: 40/s
    sink: {http: {target: staging, workers: 4}}
    assert: ['errors.rate < 0.01']
`

// secretsYAML replays with a secret var and a target URL that may carry a
// password (the secrets test writes it, then removes it).
const secretsYAML = `version: 1
name: secrets
vars:
  target: ${TARGET:-http://127.0.0.1:9}
  secret: ${SECRET:-none}
windows:
  recorded: {recording: WINDOW}
targets:
  t: {url: "${target}", timeout: 5s}
jobs:
  replay:
    source: {window: recorded}
    rate: 400/s
    sink: {http: {target: t, workers: 4}}
`

const recordYAML = `version: 1
name: capture
topics:
  traffic: {name: serve-live-SUFFIX, partitions: 2, create: true}
jobs:
  record:
    source:
      capture:
        interface: lo
        ports:
          - ${PORT}
        responses: true
    sink: {kafka: {topic: traffic}}
    save-window: live-SUFFIX
`

const brokenYAML = `version: 1
name: broken
jobs:
  replay:
    source: {window: nowhere}
    speed: fast
    sink: {http: {url: "not a url"}}
    assert: ['errors.rate <']
`

// setup starts a broker subprocess, records examples/quickstart.pcap into
// it as a window, writes keys, tokens and the scenarios directory.
func setup(t *testing.T, real string) *env {
	t.Helper()
	e := &env{dir: t.TempDir(), suffix: strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36), tok: map[string]string{}}
	e.brokers = real
	if real != "" {
		kafkatest.DropTopicsAfter(t, strings.Split(real, ","), "-"+e.suffix)
	}
	if real == "" {
		e.brokers = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		bin.Start(t, e.dir, "broker", "--listen", e.brokers, "--data-dir", filepath.Join(e.dir, "broker"), "--partitions", "2")
	}
	testutil.WaitListening(t, e.brokers)
	if out, code := bin.Run(t, e.dir, "keys", "new", filepath.Join(e.dir, "keys", "serve")); code != 0 {
		t.Fatalf("keys new: %s", out)
	}
	e.key, e.pub = filepath.Join(e.dir, "keys", "serve.key"), filepath.Join(e.dir, "keys", "serve.pub")
	e.tokens = filepath.Join(e.dir, "tokens.json")
	for _, sc := range []string{"read", "record", "replay", "admin"} {
		out, code := bin.Run(t, e.dir, "tokens", "add", sc+"-"+e.suffix, "--scope", sc, "--tokens", e.tokens)
		if code != 0 {
			t.Fatalf("tokens add: %s", out)
		}
		e.tok[sc] = strings.TrimSpace(strings.Split(out, "\n")[0])
	}
	pcap, err := filepath.Abs("../examples/quickstart.pcap")
	if err != nil {
		t.Fatal(err)
	}
	e.window = "qs-" + e.suffix
	seed := filepath.Join(e.dir, "seed.yaml")
	text := strings.NewReplacer("SUFFIX", e.suffix, "PCAP", pcap, "WINDOW", e.window).Replace(recordPcap)
	if err := os.WriteFile(seed, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := bin.Run(t, e.dir, "run", seed, "--brokers", e.brokers); code != 0 {
		t.Fatalf("recording the seed window: %d\n%s", code, out)
	}
	e.scenarios = filepath.Join(e.dir, "scenarios")
	e.write(t, "replay.yaml", replayYAML)
	e.write(t, "record.yaml", recordYAML)
	e.write(t, "broken/broken.yaml", brokenYAML)
	return e
}

func (e *env) write(t *testing.T, name, text string) {
	t.Helper()
	p := filepath.Join(e.scenarios, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	text = strings.NewReplacer("SUFFIX", e.suffix, "WINDOW", e.window).Replace(text)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// agent starts a replay agent process, with extra flags.
func (e *env) agent(t *testing.T, name, labels string, extra ...string) *testutil.Proc {
	t.Helper()
	return bin.Start(t, e.dir, append([]string{"agent", "--brokers", e.brokers, "--name", name, "--labels", labels,
		"--allow", "replay", "--allow-targets", "127.0.0.1:*", "--trust", e.pub, "--work-dir", filepath.Join(e.dir, "work", name)}, extra...)...)
}

// recordAgent starts a record agent process capturing port on lo.
func (e *env) recordAgent(t *testing.T, name, labels string, port int) *testutil.Proc {
	t.Helper()
	return bin.Start(t, e.dir, "agent", "--brokers", e.brokers, "--name", name, "--labels", labels,
		"--allow", "record", "--trust", e.pub, "--work-dir", filepath.Join(e.dir, "work", name), "--var", fmt.Sprintf("PORT=%d", port))
}

// server starts a serve instance in this process on a loopback port.
func (e *env) server(t *testing.T, opts ...func(*serve.Config)) string {
	t.Helper()
	key, err := fleet.ReadPrivateKey(e.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := serve.Config{Kafka: e.kafka(), ScenarioDir: e.scenarios, TokensFile: e.tokens, Key: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), MaxBody: 64 << 10, Version: "test"}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := serve.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() {
		sctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		_ = hs.Shutdown(sctx)
		hs.Close()
		srv.Close()
	})
	return "http://" + ln.Addr().String()
}

// call makes an API request and decodes a JSON answer into out (when not nil).
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, data, err)
		}
	}
	return resp.StatusCode
}

// nextLink is the rel="next" URL of a Link header, or "".
func nextLink(h http.Header) string {
	for _, l := range h.Values("Link") {
		for _, part := range strings.Split(l, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if ok && strings.TrimSpace(params) == `rel="next"` {
				return strings.Trim(strings.TrimSpace(target), "<>")
			}
		}
	}
	return ""
}

// listAll gets every page of GET /v1/jobs from url (following the Link
// headers) and returns the number of pages.
func listAll(t *testing.T, url, token string, out *[]serve.JobView) int {
	t.Helper()
	base := url[:strings.Index(url, "/v1/")]
	*out = nil
	for pages := 1; ; pages++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page []serve.JobView
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
		}
		*out = append(*out, page...)
		next := nextLink(resp.Header)
		if next == "" {
			return pages
		}
		if pages > 1000 {
			t.Fatalf("GET %s: more than 1000 pages", url)
		}
		url = base + next
	}
}

// waitAgents waits until the API lists n live agents of this run (their
// names end with the suffix; a shared Kafka has others).
func waitAgents(t *testing.T, base, token, suffix string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var as []serve.AgentView
		call(t, "GET", base+"/v1/agents", token, nil, &as)
		live := 0
		for _, a := range as {
			if a.Health == "alive" && strings.HasSuffix(a.Name, suffix) {
				live++
			}
		}
		if live >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d agents alive, want %d: %+v", live, n, as)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// waitJob polls a job until its state satisfies ok.
func waitJob(t *testing.T, base, token, id string, timeout time.Duration, ok func(serve.JobView) bool) serve.JobView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var v serve.JobView
		call(t, "GET", base+"/v1/jobs/"+id, token, nil, &v)
		if ok(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: condition not met within %s: %+v", id, timeout, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// sseEvent is one server-sent event: its data decoded, and as sent.
type sseEvent struct {
	ID, Type string
	Data     serve.Event
	Raw      json.RawMessage
}

// readEvents reads a job's events until "end" or the timeout.
func readEvents(t *testing.T, url, token string, timeout time.Duration) []sseEvent {
	t.Helper()
	return readEventsAfter(t, url, token, "", timeout)
}

// readEventsAfter resumes a stream after the event lastID (Last-Event-ID).
func readEventsAfter(t *testing.T, url, token, lastID string, timeout time.Duration) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var out []sseEvent
	sc := bufio.NewScanner(resp.Body)
	var cur sseEvent
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			cur.ID = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.Type = line[7:]
		case strings.HasPrefix(line, "data: "):
			data += line[6:]
		case line == "":
			if cur.Type == "end" {
				return out
			}
			if data != "" {
				if err := json.Unmarshal([]byte(data), &cur.Data); err != nil {
					t.Fatalf("event data %q: %v", data, err)
				}
				cur.Raw = json.RawMessage(data)
				out = append(out, cur)
			}
			cur, data = sseEvent{}, ""
		}
	}
	t.Fatalf("events ended without end (%v); got %d events", sc.Err(), len(out))
	return nil
}
