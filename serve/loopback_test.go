package serve_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/serve"
)

// loopback is a serve instance on a loopback port over a broker, with no
// agent, no scenario and no recording: for tests that publish specs and
// statuses themselves (bus) and read them through the API.
type loopback struct {
	base, read string // the server's URL, a read token
	kafka      kafkaio.Config
	key        ed25519.PrivateKey // serve's
	bus        *fleet.Bus
	suffix     string // unique to this run (a shared Kafka holds others')
}

func startLoopback(t *testing.T, target kafkatest.Target) *loopback {
	t.Helper()
	l := &loopback{suffix: strconv.FormatInt(time.Now().UnixNano()%1_000_000_000, 36),
		kafka: kafkaio.Config{Brokers: target.Addrs, ClientID: "serve-test"}}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l.key = key
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.json")
	if l.read, err = serve.AddToken(tokens, "read-"+l.suffix, []string{serve.ScopeRead}); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv, err := serve.New(ctx, serve.Config{Kafka: l.kafka, ScenarioDir: dir, TokensFile: tokens, Key: key, Logger: quiet, Version: "test"})
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
		_ = hs.Close()
		srv.Close()
	})
	l.base = "http://" + ln.Addr().String()
	if l.bus, err = fleet.OpenBus(ctx, l.kafka, quiet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.bus.Close)
	return l
}

// publish puts a spec envelope on the jobs topic under job id, and the
// job's status (PENDING: serve shows its latest spec) of kind.
func (l *loopback) publish(t *testing.T, id, kind string, env fleet.Envelope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, env); err != nil {
		t.Fatal(err)
	}
	if err := l.bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: kind, State: fleet.Pending, At: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
}

// seal signs a spec for job id with key (nil: unsigned).
func seal(t *testing.T, sp fleet.Spec, key ed25519.PrivateKey) fleet.Envelope {
	t.Helper()
	env, err := fleet.Seal("spec", sp, key)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// metric reads one unlabelled counter of the server's /metrics.
func (l *loopback) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get(l.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", sc.Text(), err)
			}
			return f
		}
	}
	t.Fatalf("/metrics has no %s", name)
	return 0
}

// getPage gets one page of GET /v1/jobs: the answer (its body read) and
// its jobs.
func getPage(t *testing.T, url, token string) (*http.Response, []serve.JobView) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page []serve.JobView
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return resp, page
}
