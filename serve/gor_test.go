package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/serve"
)

func newAdmin(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func callText(t *testing.T, url, token string, out *string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	*out = string(b)
	return resp.StatusCode
}

// gorCompat posts the seed platform's gor command line and checks that the
// target receives exactly the requests of the offset range.
func gorCompat(t *testing.T, e *env, a, b, admin, replay, agent string) {
	topic := "gor-src-" + e.suffix
	opts, _ := e.kafka().Opts()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// 40 requests as gor writes them, 250 ms apart on the recorded timeline.
	base := time.Now().Add(-time.Minute)
	for i := range 40 {
		v := fmt.Appendf(nil, "1 %032x %d 0\nGET /g/%d HTTP/1.1\r\nHost: app\r\n\r\n", i+1, base.Add(time.Duration(i)*250*time.Millisecond).UnixNano(), i)
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Key: fmt.Appendf(nil, "c%d", i), Value: v}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tg := newTarget(t)
	config := func(start, end int, extra string) string {
		return fmt.Sprintf("--input-kafka-host '%s' --input-kafka-topic %s --input-kafka-start-offset %d --input-kafka-end-offset %d --output-http %s --exit-after 30s%s",
			e.brokers, topic, start, end, tg.url, extra)
	}
	onTopic := func(name string) string {
		return strings.Replace(config(0, 1, ""), "--input-kafka-topic "+topic, "--input-kafka-topic "+name, 1)
	}
	count := func() int {
		var js []serve.JobView
		listAll(t, a+"/v1/jobs?limit=500", admin, &js)
		return len(e.mine(js))
	}
	before := count()
	for _, c := range []struct {
		name string
		body any
		want int
		text string
	}{
		{"unmappable flag", map[string]any{"config": config(10, 30, " --output-http-track-response"), "type": 0, "hosts": []string{agent}}, 400, "--output-http-track-response not mapped"},
		{"unknown flag", map[string]any{"config": config(10, 30, " --frobnicate"), "type": 0, "hosts": []string{agent}}, 400, "--frobnicate"},
		{"no shell", map[string]any{"config": config(10, 30, "; rm -rf /"), "type": 0, "hosts": []string{agent}}, 400, "no shell"},
		{"no hosts", map[string]any{"config": config(10, 30, ""), "type": 0}, 400, "hosts is required"},
		{"unknown host", map[string]any{"config": config(10, 30, ""), "type": 0, "hosts": []string{"ghost"}}, 422, "no live agent named ghost"},
		{"past the end", map[string]any{"config": config(10, 90, ""), "type": 0, "hosts": []string{agent}}, 400, "past the end"},
		{"malformed", `{"config": 3}`, 400, "malformed JSON"},
		// The fleet's own topics (signed specs, statuses, the catalog) and
		// Kafka's are not traffic to replay to a target.
		{"the fleet's jobs topic", map[string]any{"config": onTopic(fleet.JobsTopic), "type": 0, "hosts": []string{agent}}, 400, `topic "replayctl.jobs" is not traffic`},
		{"the fleet's status topic", map[string]any{"config": onTopic(fleet.StatusTopic), "type": 0, "hosts": []string{agent}}, 400, `topic "replayctl.status" is not traffic`},
		{"the window catalog", map[string]any{"config": onTopic(catalog.DefaultTopic), "type": 0, "hosts": []string{agent}}, 400, `topic "replayctl.windows" is not traffic`},
		{"Kafka's offsets", map[string]any{"config": onTopic("__consumer_offsets"), "type": 0, "hosts": []string{agent}}, 400, `topic "__consumer_offsets" is not traffic`},
		{"an id too long with gor-", map[string]any{"config": config(10, 30, ""), "type": 0, "hosts": []string{agent}, "id": strings.Repeat("x", 127)}, 400, "up to 128"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var er struct {
				Error    string
				Problems []string
			}
			got := call(t, "POST", a+"/v1/compat/gor/start", replay, c.body, &er)
			all := er.Error + " " + strings.Join(er.Problems, " ")
			if got != c.want || !strings.Contains(all, c.text) {
				t.Errorf("%d %q, want %d with %q", got, all, c.want, c.text)
			}
		})
	}
	if n := count(); n != before {
		t.Errorf("jobs %d, want %d: refused requests started nothing", n, before)
	}

	var v serve.JobView
	if code := call(t, "POST", a+"/v1/compat/gor/start", replay, map[string]any{"config": "gor " + config(10, 30, ""), "type": 0, "hosts": []string{agent}}, &v); code != 201 {
		t.Fatalf("gor start: %d %+v", code, v)
	}
	v = waitJob(t, b, admin, v.ID, 60*time.Second, func(v serve.JobView) bool { return v.State.Final() })
	if v.State != fleet.Succeeded {
		t.Fatalf("gor job %s: %s %s", v.ID, v.State, v.Reason)
	}
	if v.Command != "" {
		// Its agent was named: jobs submit has no such command (it
		// showed --on '', which chooses no agent).
		t.Errorf("gor job's command %q, want none", v.Command)
	}
	got := tg.got()
	var want []string
	for i := 10; i < 30; i++ {
		want = append(want, fmt.Sprintf("/g/%d", i))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("target received %v\nwant exactly %v", got, want)
	}
	// Run again: the same range, once more, on the same agent.
	var rr serve.JobView
	if code := call(t, "POST", b+"/v1/jobs/"+v.ID+"/rerun", replay, nil, &rr); code != 201 || !slices.Equal(rr.Agents, []string{agent}) {
		t.Fatalf("rerun: %d %+v", code, rr)
	}
	waitJob(t, a, admin, rr.ID, 60*time.Second, func(v serve.JobView) bool { return v.State == fleet.Succeeded })
	if n := len(tg.got()); n != 40 {
		t.Errorf("after the rerun the target got %d requests, want 40", n)
	}

	// stop cancels a running compat job.
	if code := call(t, "POST", a+"/v1/compat/gor/start", replay, map[string]any{"config": config(0, 40, ""), "type": 0, "hosts": []string{agent}}, &v); code != 201 {
		t.Fatalf("gor start: %d", code)
	}
	waitJob(t, a, admin, v.ID, 30*time.Second, func(v serve.JobView) bool { return len(v.Parts) > 0 && v.Parts[0].State == fleet.Running })
	var stopped struct {
		Stopped []struct{ ID, Error string }
	}
	if code := call(t, "POST", b+"/v1/compat/gor/stop", replay, map[string]any{"hosts": []string{agent}}, &stopped); code != 200 || len(stopped.Stopped) != 1 || stopped.Stopped[0].ID != v.ID || stopped.Stopped[0].Error != "" {
		t.Fatalf("gor stop: %d %+v", code, stopped)
	}
	waitJob(t, a, admin, v.ID, 20*time.Second, func(v serve.JobView) bool { return v.State == fleet.Cancelled })
	if n := len(tg.got()); n >= 40+40 {
		t.Errorf("the stopped job sent all its requests (%d in all)", n)
	}

	// A caller's own id without gor-: the job and its window are gor-<id>,
	// and stop takes the id as the caller gave it.
	own := "nightly-" + e.suffix
	if code := call(t, "POST", a+"/v1/compat/gor/start", replay, map[string]any{"config": config(0, 40, ""), "type": 0, "hosts": []string{agent}, "id": own}, &v); code != 201 || v.ID != "gor-"+own {
		t.Fatalf("gor start with id %s: %d, job %q", own, code, v.ID)
	}
	var win serve.WindowView
	if code := call(t, "GET", a+"/v1/windows/gor-"+own, admin, nil, &win); code != 200 || win.Topic != topic {
		t.Errorf("window gor-%s: %d %+v", own, code, win)
	}
	for _, id := range []string{own, "gor-" + own} {
		var er struct{ Error string }
		if code := call(t, "POST", b+"/v1/compat/gor/start", replay, map[string]any{"config": config(0, 40, ""), "type": 0, "hosts": []string{agent}, "id": id}, &er); code != 409 || !strings.Contains(er.Error, "gor-"+own+" was already submitted") {
			t.Errorf("gor start again with id %s: %d %q, want 409", id, code, er.Error)
		}
	}
	waitJob(t, a, admin, v.ID, 30*time.Second, func(v serve.JobView) bool { return len(v.Parts) > 0 && v.Parts[0].State == fleet.Running })
	var er struct{ Error string }
	if code := call(t, "POST", b+"/v1/compat/gor/stop", replay, map[string]any{"id": "ghost-" + e.suffix}, &er); code != 404 || !strings.Contains(er.Error, "no compat job") {
		t.Errorf("gor stop of an unknown id: %d %q, want 404", code, er.Error)
	}
	if code := call(t, "POST", b+"/v1/compat/gor/stop", replay, map[string]any{"id": own}, &stopped); code != 200 || len(stopped.Stopped) != 1 || stopped.Stopped[0].ID != "gor-"+own || stopped.Stopped[0].Error != "" {
		t.Fatalf("gor stop with id %s: %d %+v", own, code, stopped)
	}
	waitJob(t, a, admin, v.ID, 20*time.Second, func(v serve.JobView) bool { return v.State == fleet.Cancelled })
}
