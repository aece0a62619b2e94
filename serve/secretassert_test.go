package serve_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestSecretVarInAssertionNotPublished: agents started with a secret
// --var (API_TOKEN) run replay jobs whose assertions read it. No record
// any agent wrote to any topic (statuses, results, logs, the shard
// barrier's reports, heartbeats) holds its value, nor do jobs show, serve's
// API, its report and its HTML report; the merged verdicts are still those
// of the assertions with the value in them (one job holds, one fails). A
// job whose shards' agents read different values into an assertion
// (MIN_SENT 2 on one, 3 on the other) fails and says so, instead of the
// first shard's verdict standing for the job. The assertion text the agents
// published held the token (only failed lines were masked), and the merge
// took the first shard's assertions whatever the others said.
func TestSecretVarInAssertionNotPublished(t *testing.T) {
	const secret = "Zq8vT0kenS3cretValue77"
	target := kafkatest.Embedded(t, t.TempDir())
	l := startLoopback(t, target)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)

	agent := func(name, minSent string) {
		t.Helper()
		work := filepath.Join(t.TempDir(), "work")
		if err := os.MkdirAll(work, 0o700); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixNano()
		gor := fmt.Sprintf("1 a1 %d 0\nGET / HTTP/1.1\r\nHost: x\r\n\r\n%s1 a2 %d 0\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n%s", now, gorfile.Separator, now+int64(50*time.Millisecond), gorfile.Separator)
		if err := os.WriteFile(filepath.Join(work, "in.gor"), []byte(gor), 0o600); err != nil {
			t.Fatal(err)
		}
		log := &testutil.SyncBuffer{}
		a, err := fleet.NewAgent(fleet.AgentConfig{
			Name: name, Labels: fleet.Labels{"role": "load"}, Allow: []string{fleet.KindReplay},
			Trust: []ed25519.PublicKey{l.key.Public().(ed25519.PublicKey)}, WorkDir: work, AllowTargets: []string{"127.0.0.1:*"},
			Kafka: l.kafka, Vars: map[string]string{"API_TOKEN": secret, "MIN_SENT": minSent},
			Logger: slog.New(slog.NewTextHandler(log, nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		actx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.Run(actx) }()
		t.Cleanup(func() {
			stop()
			<-done
			if strings.Contains(log.String(), secret) {
				t.Errorf("agent %s logged the secret", name)
			}
		})
		for !l.bus.AgentAlive(name, time.Now()) {
			if ctx.Err() != nil {
				t.Fatalf("agent %s never heartbeat", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	a1, a2 := "load-1-"+l.suffix, "load-2-"+l.suffix
	agent(a1, "2")
	agent(a2, "3")

	submit := func(id string, assert string, agents ...string) fleet.Status {
		t.Helper()
		text := `version: 1
name: secret-assert
targets:
  t: {url: "` + srv.URL + `"}
jobs:
  replay:
    source: {gor: {path: in.gor}}  # each agent's own (its --work-dir/in.gor)
    sink: {http: {target: t}}
    assert:
      - '` + assert + `'
      - 'requests.errors == 0'
`
		now := time.Now().UTC()
		sp := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", Scenario: text, SHA256: fleet.ScenarioHash(text),
			Selector: fleet.Selector{"role": "load"}, Agents: agents, Shards: len(agents), IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test"}
		env := seal(t, sp, l.key)
		rec, err := l.bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: sp.Kind, State: fleet.Assigned, Agents: agents, SpecOffset: rec.Offset}); err != nil {
			t.Fatal(err)
		}
		for {
			if js, ok := l.bus.Status("job/" + id); ok && js.State.Final() {
				return js
			}
			if ctx.Err() != nil {
				t.Fatalf("job %s never ended", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	jobs := []struct {
		id, assert string
		agents     []string
		want       fleet.State
		reason     string // in the job's reason
	}{
		{"pass-" + l.suffix, `requests.sent == 2 && "${API_TOKEN}" != ""`, []string{a1}, fleet.Succeeded, ""},
		{"fail-" + l.suffix, `requests.sent == 2 && "${API_TOKEN}" == "nope"`, []string{a1}, fleet.AssertFailed, `"${API_TOKEN}" == "nope"`},
		{"two-" + l.suffix, `requests.sent == 4 && "${API_TOKEN}" != ""`, []string{a1, a2}, fleet.Succeeded, ""},
		{"differ-" + l.suffix, `requests.sent >= ${MIN_SENT}`, []string{a1, a2}, fleet.Failed, "requests.sent >= 2 on shard 0 (" + a1 + "), but requests.sent >= 3 on shard 1 (" + a2 + ")"},
	}
	for _, j := range jobs {
		js := submit(j.id, j.assert, j.agents...)
		if js.State != j.want || !strings.Contains(js.Reason, j.reason) {
			t.Errorf("job %s: %s %q, want %s saying %q", j.id, js.State, js.Reason, j.want, j.reason)
		}
		var show strings.Builder
		if err := fleet.NewClient(l.bus, &show).Show(j.id); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(show.String(), secret) {
			t.Errorf("jobs show %s shows the secret:\n%s", j.id, show.String())
		}
		if j.want != fleet.Failed && !strings.Contains(show.String(), j.assert) {
			t.Errorf("jobs show %s does not show the assertion as written (%s):\n%s", j.id, j.assert, show.String())
		}
		for _, path := range []string{"", "/report.json", "/report.html"} {
			resp, err := http.NewRequestWithContext(ctx, "GET", l.base+"/v1/jobs/"+j.id+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Header.Set("Authorization", "Bearer "+l.read)
			r, err := http.DefaultClient.Do(resp)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode != 200 || strings.Contains(string(body), secret) {
				t.Errorf("GET /v1/jobs/%s%s: %d, secret shown: %v", j.id, path, r.StatusCode, strings.Contains(string(body), secret))
			}
			if path == "/report.html" && j.want != fleet.Failed && !strings.Contains(string(body), "${API_TOKEN}") {
				t.Errorf("GET /v1/jobs/%s%s does not show the assertion as written", j.id, path)
			}
		}
	}

	// Every record of every topic, read back with a consumer.
	cl := target.Client(t, kgo.ConsumeRegex(), kgo.ConsumeTopics(".*"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ends, err := kadm.NewClient(target.Client(t)).ListEndOffsets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := int64(0)
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	var got int64
	topics := map[string]int{}
	for got < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			got++
			topics[r.Topic]++
			text := string(r.Key) + string(r.Value)
			for _, h := range r.Headers {
				text += h.Key + string(h.Value)
			}
			if strings.Contains(text, secret) {
				t.Errorf("topic %s, key %s, offset %d holds the secret", r.Topic, r.Key, r.Offset)
			}
		})
	}
	if got < want || topics[fleet.StatusTopic] == 0 {
		t.Errorf("read %d of %d records (%v)", got, want, topics)
	}
}
