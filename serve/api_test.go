package serve_test

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/serve"
	"github.com/replayctl/replayctl/stats"
)

// TestAPI runs the API against a `replayctl broker` subprocess, two replay
// agent processes and two serve instances on loopback; with
// REPLAYCTL_TEST_KAFKA set, against the real Kafka as well.
func TestAPI(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { apiSuite(t, "") })
	if real := os.Getenv("REPLAYCTL_TEST_KAFKA"); real != "" {
		t.Run("kafka", func(t *testing.T) { apiSuite(t, real) })
	}
}

func apiSuite(t *testing.T, real string) {
	e := setup(t, real)
	e.agent(t, "load-1-"+e.suffix, "role=load-"+e.suffix)
	e.agent(t, "load-2-"+e.suffix, "role=load-"+e.suffix)
	a, b := e.server(t), e.server(t)
	admin, read, replay, record := e.tok["admin"], e.tok["read"], e.tok["replay"], e.tok["record"]
	waitAgents(t, a, read, e.suffix, 2)
	sel := map[string]string{"role": "load-" + e.suffix}
	tg := newTarget(t)

	jobCount := func() int {
		var js []serve.JobView
		listAll(t, a+"/v1/jobs?limit=500", read, &js)
		return len(e.mine(js))
	}

	t.Run("auth", func(t *testing.T) {
		replayBody := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": map[string]string{"role": "nobody"}}
		recordBody := map[string]any{"scenario": "record.yaml", "job": "record", "selector": map[string]string{"role": "nobody"}}
		for _, c := range []struct {
			name, method, path, token string
			body                      any
			want                      int
		}{
			{"no token", "GET", "/v1/jobs", "", nil, 401},
			{"unknown token", "GET", "/v1/jobs", "rpl_nope", nil, 401},
			{"read lists", "GET", "/v1/jobs", read, nil, 200},
			{"read agents", "GET", "/v1/agents", read, nil, 200},
			{"read cannot replay", "POST", "/v1/jobs", read, replayBody, 403},
			{"read cannot record", "POST", "/v1/jobs", read, recordBody, 403},
			{"record cannot replay", "POST", "/v1/jobs", record, replayBody, 403},
			{"replay cannot record", "POST", "/v1/jobs", replay, recordBody, 403},
			{"replay may replay (no agent: 422)", "POST", "/v1/jobs", replay, replayBody, 422},
			{"admin may record (no agent: 422)", "POST", "/v1/jobs", admin, recordBody, 422},
			{"read cannot delete windows", "DELETE", "/v1/windows/x", read, nil, 403},
			{"replay cannot delete windows", "DELETE", "/v1/windows/x", replay, nil, 403},
			{"record deletes (none: 404)", "DELETE", "/v1/windows/none-" + e.suffix, record, nil, 404},
			{"read cannot gor start", "POST", "/v1/compat/gor/start", read, map[string]any{"config": "", "hosts": []string{"x"}}, 403},
			{"no token gor", "POST", "/v1/compat/gor/start", "", map[string]any{"config": "", "hosts": []string{"x"}}, 401},
			{"health is public", "GET", "/healthz", "", nil, 200},
			{"openapi is public", "GET", "/v1/openapi.json", "", nil, 200},
			{"unknown API route", "GET", "/v1/nope", read, nil, 404},
			{"wrong method", "PUT", "/v1/jobs", read, nil, 405},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := call(t, c.method, a+c.path, c.token, c.body, nil); got != c.want {
					t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
				}
			})
		}
	})

	t.Run("bad input starts nothing", func(t *testing.T) {
		before := jobCount()
		dupID := "dup-" + e.suffix
		for _, c := range []struct {
			name string
			body any
			want int
			text string
		}{
			{"malformed JSON", `{"scenario": "replay.yaml", "job":`, 400, "malformed JSON"},
			{"unknown field", `{"scenario": "replay.yaml", "job": "replay", "selectr": {}}`, 400, "unknown field"},
			{"two values", `{"scenario": "replay.yaml", "job": "replay", "selector": {"a":"b"}} {}`, 400, "more than one value"},
			{"unknown scenario", map[string]any{"scenario": "nope.yaml", "job": "replay", "selector": sel}, 400, "no such scenario"},
			{"path out of the directory", map[string]any{"scenario": "../seed.yaml", "job": "record", "selector": sel}, 400, "no such scenario"},
			{"absolute path", map[string]any{"scenario": e.dir + "/seed.yaml", "job": "record", "selector": sel}, 400, "no such scenario"},
			{"unknown job", map[string]any{"scenario": "replay.yaml", "job": "nope", "selector": sel}, 400, `has no job "nope"`},
			{"invalid scenario", map[string]any{"scenario": "broken/broken.yaml", "job": "replay", "selector": sel}, 400, "broken/broken.yaml:6:"},
			{"invalid override", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "set": []string{"jobs.replay.speed=fast"}}, 400, "replay.yaml:"},
			{"selector matches no agent", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": map[string]string{"role": "ghost"}}, 422, "no live agent matches role=ghost"},
			{"too many shards", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "shards": 3}, 422, "3 shards need 3 live agents"},
			{"unknown window", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "window": "ghost-" + e.suffix}, 400, "ghost-"},
			{"huge body", `{"scenario": "replay.yaml", "job": "replay", "set": ["` + strings.Repeat("x", 100<<10) + `"]}`, 413, "over 65536 bytes"},
			// Written paths resolve against the scenario's directory in
			// --scenarios (not serve's working directory), and no answer
			// says where serve's files are.
			{"write path out of the scenario's directory", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "set": []string{"jobs.replay.report.json=../r.json"}}, 400, "../r.json is outside the scenario's directory .;"},
			{"write path in the scenario's directory", map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": map[string]string{"role": "ghost"}, "set": []string{"jobs.replay.report.json=" + filepath.Join(e.scenarios, "reports", "r.json")}}, 422, "no live agent matches role=ghost"},
			{"write path of a scenario in a subdirectory", map[string]any{"scenario": "broken/broken.yaml", "job": "replay", "selector": sel, "set": []string{"jobs.replay.report.json=" + filepath.Join(e.scenarios, "r.json")}}, 400, "r.json is outside the scenario's directory broken;"},
		} {
			t.Run(c.name, func(t *testing.T) {
				var er struct {
					Error    string   `json:"error"`
					Problems []string `json:"problems"`
				}
				got := call(t, "POST", a+"/v1/jobs", admin, c.body, &er)
				all := er.Error + "\n" + strings.Join(er.Problems, "\n")
				if got != c.want || !strings.Contains(all, c.text) {
					t.Errorf("%d %q, want %d with %q", got, all, c.want, c.text)
				}
				if c.name == "invalid scenario" && len(er.Problems) < 3 {
					t.Errorf("want every problem with its position, got %q", er.Problems)
				}
				if cwd, _ := os.Getwd(); c.name != "absolute path" && (strings.Contains(all, e.dir) || strings.Contains(all, cwd)) {
					t.Errorf("the answer shows where serve's files are (%s, %s): %q", e.dir, cwd, all)
				}
			})
		}
		// A duplicate submission: the first runs, the second is a 409.
		body := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "vars": map[string]string{"target": tg.url}, "id": dupID}
		var v serve.JobView
		if code := call(t, "POST", a+"/v1/jobs", replay, body, &v); code != 201 {
			t.Fatalf("first submission: %d %+v", code, v)
		}
		// serve signed it: its submitter is verified.
		if !v.Verified || v.Submitter != "token:replay-"+e.suffix+" (replayctl serve)" || v.Unverified != "" {
			t.Errorf("a job serve signed: verified %v, submitter %q (%q)", v.Verified, v.Submitter, v.Unverified)
		}
		var er struct{ Error string }
		if code := call(t, "POST", b+"/v1/jobs", replay, body, &er); code != 409 || !strings.Contains(er.Error, "already submitted") {
			t.Errorf("duplicate: %d %q", code, er.Error)
		}
		if n := jobCount(); n != before+1 {
			t.Errorf("jobs: %d, want %d (only the first submission)", n, before+1)
		}
		waitJob(t, a, read, dupID, 60*time.Second, func(v serve.JobView) bool { return v.State.Final() })
	})

	t.Run("sharded replay, events in order, two instances agree", func(t *testing.T) {
		start := len(tg.got())
		id := "rp-" + e.suffix
		var v serve.JobView
		body := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "shards": 2, "id": id,
			"vars": map[string]string{"target": tg.url}, "set": []string{"jobs.replay.rate=100/s"}}
		if code := call(t, "POST", a+"/v1/jobs", replay, body, &v); code != 201 {
			t.Fatalf("submit: %d %+v", code, v)
		}
		if v.Submitter != "token:replay-"+e.suffix+" (replayctl serve)" {
			t.Errorf("submitter %q: the job records the token", v.Submitter)
		}
		if !strings.Contains(v.Command, "replayctl jobs submit replay.yaml --job replay --on role=load-"+e.suffix+" --shards 2") ||
			!strings.Contains(v.Command, "--set jobs.replay.rate=100/s") || !strings.Contains(v.Command, "--set vars.target="+tg.url) {
			t.Errorf("command %q", v.Command)
		}
		evs := readEvents(t, b+"/v1/jobs/"+id+"/events", read, 90*time.Second)
		// Every state change the status topic holds for the job, in topic order.
		want := topicStates(t, e, id)
		var got []string
		for _, ev := range evs {
			if ev.Type == "state" {
				got = append(got, ev.Data.Part+"="+string(ev.Data.State))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("SSE state changes:\n%v\nstatus topic:\n%v", got, want)
		}
		var jobStates []string
		for _, s := range got {
			if p, st, _ := strings.Cut(s, "="); p == "job" {
				jobStates = append(jobStates, st)
			}
		}
		if !slices.Equal(jobStates, []string{"PENDING", "ASSIGNED", "SUCCEEDED"}) {
			t.Errorf("job states %v", jobStates)
		}
		for _, sh := range []string{"shard/0", "shard/1"} {
			var seq []string
			progress := 0
			for _, ev := range evs {
				if ev.Data.Part == sh {
					if ev.Type == "state" {
						seq = append(seq, string(ev.Data.State))
					} else if ev.Data.Progress != nil {
						progress++
					}
				}
			}
			if !slices.Equal(seq, []string{"ARMED", "RUNNING", "SUCCEEDED"}) {
				t.Errorf("%s states %v", sh, seq)
			}
			t.Logf("%s: %d progress events", sh, progress)
		}
		// A shard's progress total is the one its agent reports (the
		// engine counts the shard's requests), not scaled again.
		totals := 0
		for _, ev := range evs {
			p := ev.Data.Progress
			if p == nil || ev.Data.Shard == nil {
				continue
			}
			m := regexp.MustCompile(`(\d+)/(\d+)`).FindStringSubmatch(p.Line)
			if m == nil {
				continue
			}
			totals++
			if p.Total != int64(atoi(t, m[2])) || p.Done != int64(atoi(t, m[1])) || !p.Estimated {
				t.Errorf("%s progress %d of %d (estimated %v), its line says %s/%s: %q", ev.Data.Part, p.Done, p.Total, p.Estimated, m[1], m[2], p.Line)
			}
		}
		if totals == 0 {
			t.Errorf("no shard progress with a total among %d events", len(evs))
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Data.Offset <= evs[i-1].Data.Offset {
				t.Fatalf("events out of order at %d", i)
			}
		}
		// A stream resumed after an event (Last-Event-ID) goes on from the
		// next state change, from the other instance.
		var states []sseEvent
		for _, ev := range evs {
			if ev.Type == "state" {
				states = append(states, ev)
			}
		}
		mid := len(states) / 2
		rest := readEventsAfter(t, a+"/v1/jobs/"+id+"/events", read, states[mid].ID, 30*time.Second)
		if len(rest) != len(states)-mid-1 || rest[0].ID != states[mid+1].ID {
			t.Errorf("resumed after %s: %d events from %s, want %d from %s", states[mid].ID, len(rest), rest[0].ID, len(states)-mid-1, states[mid+1].ID)
		}
		// Both instances list the same jobs.
		var la, lb []serve.JobView
		call(t, "GET", a+"/v1/jobs", read, nil, &la)
		call(t, "GET", b+"/v1/jobs", read, nil, &lb)
		ids := func(js []serve.JobView) []string {
			var out []string
			for _, j := range js {
				out = append(out, j.ID+"/"+string(j.State))
			}
			return out
		}
		la, lb = e.mine(la), e.mine(lb)
		if !slices.Equal(ids(la), ids(lb)) || !slices.Contains(ids(la), id+"/SUCCEEDED") {
			t.Errorf("instances disagree:\n%v\n%v", ids(la), ids(lb))
		}
		// Every request of the window, once.
		if n := len(tg.got()) - start; n != 200 {
			t.Errorf("target got %d requests, want the window's 200", n)
		}
		var rep serve.MergedReport
		if code := call(t, "GET", b+"/v1/jobs/"+id+"/report.json", read, nil, &rep); code != 200 || rep.Requests.Sent != 200 || rep.Requests.OK != 200 || len(rep.Parts) < 2 {
			t.Errorf("report.json: %d %+v", code, rep.Requests)
		}
		if rep.Window == nil || rep.Window.Name != e.window {
			t.Errorf("report window %+v", rep.Window)
		}
		// Two shards: their lossless stats are merged bucket by bucket, so
		// every percentile is exact (never averaged): the same as rebuilt
		// from the merged state.
		var inHist int64
		for _, b := range rep.Histogram {
			inHist += b.Count
		}
		sum, exact := rep.Result.Summary()
		if inHist != 200 || !exact || rep.Latency.P50 <= 0 || rep.Latency.P90 < rep.Latency.P50 || rep.Latency.P99 < rep.Latency.P90 || rep.Latency.Max <= 0 ||
			rep.Latency.P99 != stats.MS(sum.Latency.P99) || rep.Latency.P50 != stats.MS(sum.Latency.P50) || sum.Sent != 200 || !strings.Contains(rep.LatencyNote, "exact") {
			t.Errorf("merged latency: %d in the histogram, %+v, note %q", inHist, rep.Latency, rep.LatencyNote)
		}
		// The merged per-second series: every request in it, and the
		// page draws it (before, the page showed "No data" there).
		var inSeries float64
		for _, sec := range sum.Series {
			inSeries += float64(sec.Requests)
		}
		if len(rep.Series) == 0 || len(rep.Series) != len(sum.Series) || inSeries != 200 {
			t.Errorf("merged series: %d entries (%d in the merged stats, %v requests), want the merged stats' series of 200 requests", len(rep.Series), len(sum.Series), inSeries)
		}
		html := getText(t, a+"/v1/jobs/"+id+"/report.html", read)
		if !strings.Contains(html, "<html") || !strings.Contains(html, "200") || strings.Count(html, "<polyline") < 2 {
			t.Errorf("report.html without its per-second lines: %.300s", html)
		}
		// History filters.
		var byWin []serve.JobView
		call(t, "GET", a+"/v1/jobs?window="+e.window+"&state=SUCCEEDED&scenario=replay.yaml", read, nil, &byWin)
		if !slices.ContainsFunc(byWin, func(j serve.JobView) bool { return j.ID == id }) {
			t.Errorf("filter by window misses %s", id)
		}
		call(t, "GET", a+"/v1/jobs?state=CANCELLED", read, nil, &byWin)
		if slices.ContainsFunc(byWin, func(j serve.JobView) bool { return j.ID == id }) {
			t.Errorf("state filter keeps %s", id)
		}
		// Rerun: a new job with the same spec.
		var rr serve.JobView
		if code := call(t, "POST", b+"/v1/jobs/"+id+"/rerun", replay, nil, &rr); code != 201 || rr.ID == id || rr.Shards != 2 {
			t.Fatalf("rerun: %d %+v", code, rr)
		}
		waitJob(t, a, read, rr.ID, 90*time.Second, func(v serve.JobView) bool { return v.State == fleet.Succeeded })
		if n := len(tg.got()) - start; n != 400 {
			t.Errorf("after the rerun the target got %d requests, want 400", n)
		}
	})

	t.Run("cancel", func(t *testing.T) {
		id := "slow-" + e.suffix
		body := map[string]any{"scenario": "replay.yaml", "job": "replay", "selector": sel, "id": id,
			"vars": map[string]string{"target": tg.url}, "set": []string{"jobs.replay.rate=5/s"}}
		var v serve.JobView
		if code := call(t, "POST", a+"/v1/jobs", replay, body, &v); code != 201 {
			t.Fatalf("submit: %d", code)
		}
		waitJob(t, a, read, id, 30*time.Second, func(v serve.JobView) bool { return len(v.Parts) > 0 && v.Parts[0].State == fleet.Running })
		if code := call(t, "POST", b+"/v1/jobs/"+id+"/cancel", read, nil, nil); code != 403 {
			t.Errorf("cancel with read: %d", code)
		}
		if code := call(t, "POST", b+"/v1/jobs/"+id+"/cancel", replay, nil, &v); code != 200 {
			t.Fatalf("cancel: %d %+v", code, v)
		}
		waitJob(t, a, read, id, 20*time.Second, func(v serve.JobView) bool { return v.State == fleet.Cancelled })
		// A final job is not cancelled again: 409.
		var er struct{ Error string }
		if code := call(t, "POST", a+"/v1/jobs/"+id+"/cancel", replay, nil, &er); code != 409 || !strings.Contains(er.Error, "already CANCELLED") {
			t.Errorf("cancelling a cancelled job: %d %q", code, er.Error)
		}
		if code := call(t, "POST", b+"/v1/jobs/dup-"+e.suffix+"/cancel", replay, nil, &er); code != 409 || !strings.Contains(er.Error, "is already") {
			t.Errorf("cancelling a finished job: %d %q", code, er.Error)
		}
	})

	t.Run("agents, windows, scenarios, metrics", func(t *testing.T) {
		var all, as []serve.AgentView
		call(t, "GET", a+"/v1/agents", read, nil, &all)
		for _, ag := range all {
			if strings.HasSuffix(ag.Name, e.suffix) {
				as = append(as, ag)
			}
		}
		if len(as) != 2 || as[0].Labels["role"] != "load-"+e.suffix || as[0].Health != "alive" {
			t.Errorf("agents %+v", as)
		}
		var ws []serve.WindowView
		call(t, "GET", a+"/v1/windows", read, nil, &ws)
		i := slices.IndexFunc(ws, func(w serve.WindowView) bool { return w.Name == e.window })
		if i < 0 || ws[i].Requests != 200 || ws[i].Topic != "serve-http-"+e.suffix || ws[i].Partial {
			t.Fatalf("windows %+v", ws)
		}
		var w serve.WindowView
		if code := call(t, "GET", a+"/v1/windows/"+e.window, read, nil, &w); code != 200 || w.Records != ws[i].Records {
			t.Errorf("window show: %d %+v", code, w)
		}
		var ss []serve.ScenarioInfo
		call(t, "GET", a+"/v1/scenarios", read, nil, &ss)
		files := map[string]serve.ScenarioInfo{}
		for _, s := range ss {
			files[s.File] = s
		}
		if len(ss) != 3 {
			t.Errorf("scenarios %+v", ss)
		}
		if s := files["replay.yaml"]; !s.Valid || len(s.Vars) != 1 || s.Vars[0].Default != "http://127.0.0.1:9" || s.Jobs[0].Pacing["rate"] != "40/s" || s.Jobs[0].Kind != "replay" {
			t.Errorf("replay.yaml: %+v", s)
		}
		if s := files["record.yaml"]; !s.Valid || !slices.Equal(s.AgentVars, []string{"PORT"}) || len(s.Vars) != 0 || s.Jobs[0].Kind != "record" || s.Jobs[0].Window != "live-"+e.suffix {
			t.Errorf("record.yaml: %+v", s)
		}
		if s := files["broken/broken.yaml"]; s.Valid || len(s.Problems) < 3 || !strings.HasPrefix(s.Problems[0], "broken/broken.yaml:") {
			t.Errorf("broken.yaml: %+v", s)
		}
		m := getText(t, a+"/metrics", "")
		for _, want := range []string{`replayctl_serve_requests_total{code="201",route="/v1/jobs"}`, `replayctl_serve_jobs_submitted_total{kind="replay"}`} {
			if !strings.Contains(m, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("secrets are masked", func(t *testing.T) {
		e.write(t, "secrets.yaml", secretsYAML)
		t.Cleanup(func() { os.Remove(filepath.Join(e.scenarios, "secrets.yaml")) })
		withPW := strings.Replace(tg.url, "http://", "http://svc:TopSecretPW@", 1)
		apiID, cliID := "sec-api-"+e.suffix, "sec-cli-"+e.suffix
		body := map[string]any{"scenario": "secrets.yaml", "job": "replay", "selector": sel, "id": apiID,
			"vars": map[string]string{"secret": "VarSecretValue99", "target": withPW}}
		var v serve.JobView
		if code := call(t, "POST", a+"/v1/jobs", replay, body, &v); code != 201 {
			t.Fatalf("submit: %d %+v", code, v)
		}
		// The same through the command line, as a user runs it.
		if out, code := bin.Run(t, e.dir, "jobs", "submit", filepath.Join(e.scenarios, "secrets.yaml"), "--job", "replay", "--on", "role=load-"+e.suffix,
			"--set", "targets.t.url="+withPW, "--set", "vars.secret=VarSecretValue99", "--id", cliID, "--key", e.key, "--brokers", e.brokers); code != 0 {
			t.Fatalf("jobs submit: %d %s", code, out)
		}
		for _, id := range []string{apiID, cliID} {
			waitJob(t, a, read, id, 60*time.Second, func(v serve.JobView) bool { return v.State.Final() })
			var one serve.JobView
			call(t, "GET", b+"/v1/jobs/"+id, read, nil, &one)
			if !strings.Contains(one.Command, "--set vars.secret=xxxxx") || !strings.Contains(one.Command, "svc:xxxxx@127.0.0.1:") || !slices.Contains(one.Set, "vars.secret=xxxxx") {
				t.Errorf("%s: command %q, set %q", id, one.Command, one.Set)
			}
		}
		for _, path := range []string{"/v1/jobs/" + apiID, "/v1/jobs/" + cliID, "/v1/jobs?scenario=secrets.yaml", "/v1/jobs"} {
			text := getText(t, b+path, read)
			for _, secret := range []string{"VarSecretValue99", "TopSecretPW"} {
				if strings.Contains(text, secret) {
					t.Errorf("GET %s shows %s: %.600s", path, secret, text)
				}
			}
		}
		for _, st := range v.Set {
			if strings.Contains(st, "VarSecretValue99") || strings.Contains(st, "TopSecretPW") {
				t.Errorf("the submit answer shows %q", st)
			}
		}
	})

	t.Run("record through the API", func(t *testing.T) {
		app := newTarget(t)
		port := app.url[strings.LastIndex(app.url, ":")+1:]
		web := "role=web-" + e.suffix
		e.recordAgent(t, "web-1-"+e.suffix, web, atoi(t, port))
		waitAgents(t, a, read, e.suffix, 3)
		id, win := "rec-"+e.suffix, "live-"+e.suffix
		var v serve.JobView
		body := map[string]any{"scenario": "record.yaml", "job": "record", "selector": map[string]string{"role": "web-" + e.suffix}, "for": "8s", "id": id}
		if code := call(t, "POST", a+"/v1/jobs", record, body, &v); code != 201 || v.Kind != "record" || v.Window != win {
			t.Fatalf("submit record: %d %+v", code, v)
		}
		waitJob(t, a, read, id, 20*time.Second, func(v serve.JobView) bool {
			return len(v.Parts) > 0 && v.Parts[0].Progress != nil && strings.Contains(v.Parts[0].Progress.Line, "requests")
		})
		time.Sleep(500 * time.Millisecond) // the capture socket opens as the progress starts
		client := &http.Client{Timeout: 5 * time.Second}
		for i := range 30 {
			resp, err := client.Get(fmt.Sprintf("%s/live/%d", app.url, i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		v = waitJob(t, b, read, id, 40*time.Second, func(v serve.JobView) bool { return v.State.Final() })
		if v.State != fleet.Succeeded || v.Result == nil || v.Result.Window != win || v.Result.Requests != 30 {
			t.Fatalf("record job: %s %s %+v", v.State, v.Reason, v.Result)
		}
		var w serve.WindowView
		if code := call(t, "GET", b+"/v1/windows/"+win, read, nil, &w); code != 200 || w.Requests != 30 || w.Partial || w.RecordedBy != id ||
			!slices.Equal(w.Hosts, []string{"web-1-" + e.suffix}) || w.HostRequests["web-1-"+e.suffix] != 30 {
			t.Errorf("window: %d %+v", code, w)
		}
		// An unsigned spec naming the window's recording, with a failed
		// status: it neither claims the window nor marks it partial.
		forged := "forged-rec-" + e.suffix
		now := time.Now().UTC()
		fs := fleet.Spec{JobID: forged, Kind: fleet.KindRecord, Job: "record", File: "record.yaml", Selector: fleet.Selector{"role": "nobody"},
			IssuedAt: now, ExpiresAt: now.Add(time.Minute), Recording: &fleet.RecordingPlan{ID: w.RecordingID, Window: win, Topic: w.Topic}}
		fenv, err := fleet.Seal("spec", fs, nil)
		if err != nil {
			t.Fatal(err)
		}
		bus := e.bus(t)
		if _, err := bus.Publish(context.Background(), fleet.JobsTopic, "spec/"+forged, fenv); err != nil {
			t.Fatal(err)
		}
		if err := bus.PublishStatus(context.Background(), "job/"+forged, fleet.Status{JobID: forged, Kind: fleet.KindRecord, State: fleet.Failed, At: now}); err != nil {
			t.Fatal(err)
		}
		waitJob(t, b, read, forged, 20*time.Second, func(v serve.JobView) bool { return v.State == fleet.Failed })
		if code := call(t, "GET", b+"/v1/windows/"+win, read, nil, &w); code != 200 || w.Partial || w.RecordedBy != id {
			t.Errorf("after a forged spec naming its recording, the window is: %d partial %v %v, recorded by %q (want %s)", code, w.Partial, w.PartialReasons, w.RecordedBy, id)
		}
		var rep serve.MergedReport
		if code := call(t, "GET", a+"/v1/jobs/"+id+"/report.json", read, nil, &rep); code != 200 || rep.Result.Requests != 30 {
			t.Errorf("record report: %d %+v", code, rep.Result)
		}
		if html := getText(t, a+"/v1/jobs/"+id+"/report.html", read); !strings.Contains(html, "Record job "+id) {
			t.Errorf("record report html: %.200s", html)
		}
		// Saving the same window again is refused before anything runs.
		body["id"] = id + "-again"
		var er struct{ Error string }
		if code := call(t, "POST", a+"/v1/jobs", record, body, &er); code != 400 || !strings.Contains(er.Error, "already exists") {
			t.Errorf("second recording into %s: %d %q", win, code, er.Error)
		}
		// Delete needs record; then it is gone.
		if code := call(t, "DELETE", a+"/v1/windows/"+win, record, nil, nil); code != 200 {
			t.Errorf("delete: %d", code)
		}
		if code := call(t, "GET", b+"/v1/windows/"+win, read, nil, nil); code != 404 {
			t.Errorf("deleted window: %d", code)
		}
	})

	// GET /v1/jobs answers pages, newest first; the Link header names the
	// next one, with the same filters. A page asked for after jobs came
	// continues where the last one ended: no job twice, none skipped.
	t.Run("jobs in pages", func(t *testing.T) {
		q := "/v1/jobs?window=" + e.window
		var whole []serve.JobView
		if n := listAll(t, a+q+"&limit=500", read, &whole); n != 1 || len(whole) < 3 {
			t.Fatalf("%d pages, %d jobs of window %s: want one page of 3 or more", n, len(whole), e.window)
		}
		ids := func(js []serve.JobView) []string {
			out := make([]string, len(js))
			for i, j := range js {
				out[i] = j.ID
			}
			return out
		}
		if slices.ContainsFunc(whole, func(v serve.JobView) bool { return v.SpecOffset == nil }) ||
			!slices.IsSortedFunc(whole, func(x, y serve.JobView) int { return cmp.Compare(*y.SpecOffset, *x.SpecOffset) }) {
			t.Errorf("not newest first (by spec_offset): %v", ids(whole))
		}
		var paged []serve.JobView
		if n := listAll(t, b+q+"&limit=1", read, &paged); n != len(whole) || !slices.Equal(ids(paged), ids(whole)) {
			t.Errorf("pages of one (%d) on the other instance: %v, want %v", n, ids(paged), ids(whole))
		}

		// A job submitted between two pages is on neither.
		req, _ := http.NewRequest("GET", a+q+"&limit=1", nil)
		req.Header.Set("Authorization", "Bearer "+read)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		next := nextLink(resp.Header)
		if !strings.Contains(next, "window="+e.window) || !strings.Contains(next, "limit=1") || !strings.Contains(next, "before=") {
			t.Fatalf("Link %q: want the next page with the same filters", resp.Header.Values("Link"))
		}
		bus := e.bus(t)
		ctx := context.Background()
		newer := "newer-" + e.suffix
		now := time.Now().UTC()
		env, err := fleet.Seal("spec", fleet.Spec{JobID: newer, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", IssuedAt: now, ExpiresAt: now,
			Replay: &fleet.ReplayPlan{Window: e.window}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+newer, env); err != nil {
			t.Fatal(err)
		}
		if err := bus.PublishStatus(ctx, "job/"+newer, fleet.Status{JobID: newer, Kind: fleet.KindReplay, State: fleet.Refused, At: now}); err != nil {
			t.Fatal(err)
		}
		var page2, first []serve.JobView
		call(t, "GET", b+next, read, nil, &page2)
		call(t, "GET", a+q+"&limit=1", read, nil, &first)
		if len(page2) != 1 || page2[0].ID != whole[1].ID || len(first) != 1 || first[0].ID != newer {
			t.Errorf("after job %s came: the next page %v, want [%s]; the first %v, want [%s]", newer, ids(page2), whole[1].ID, ids(first), newer)
		}

		// The default page: DefaultJobsLimit jobs, then the rest. Jobs
		// without a spec (a status anyone wrote) come last, by ID.
		kind := "paging-" + e.suffix
		var want []string
		for i := range serve.DefaultJobsLimit + 3 {
			id := fmt.Sprintf("page-%s-%03d", e.suffix, i)
			want = append([]string{id}, want...)
			if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: kind, State: fleet.Refused, At: now}); err != nil {
				t.Fatal(err)
			}
		}
		var page []serve.JobView
		if code := call(t, "GET", a+"/v1/jobs?kind="+kind, read, nil, &page); code != 200 || len(page) != serve.DefaultJobsLimit {
			t.Errorf("the first page: %d, %d jobs, want %d", code, len(page), serve.DefaultJobsLimit)
		}
		var every []serve.JobView
		if n := listAll(t, a+"/v1/jobs?kind="+kind, read, &every); n != 2 || !slices.Equal(ids(every), want) {
			t.Errorf("%d pages: %v\nwant 2 pages: %v", n, ids(every), want)
		}

		for _, c := range []struct{ query, text string }{
			{"limit=0", "limit \"0\": want 1 to 500"},
			{"limit=501", "want 1 to 500"},
			{"limit=ten", "want 1 to 500"},
			{"before=", "not a cursor"},
			{"before=%21%21", "not a cursor"},
			{"before=bm90IGEgY3Vyc29y", "not a cursor"}, // "not a cursor"
		} {
			var er struct{ Error string }
			if code := call(t, "GET", a+"/v1/jobs?"+c.query, read, nil, &er); code != 400 || !strings.Contains(er.Error, c.text) {
				t.Errorf("%s: %d %q, want 400 with %q", c.query, code, er.Error, c.text)
			}
		}
	})

	t.Run("TLS listener", func(t *testing.T) {
		certFile, keyFile, pool := selfSigned(t, e.dir)
		addr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
		bin.Start(t, e.dir, "serve", "--brokers", e.brokers, "--scenarios", e.scenarios, "--tokens", e.tokens, "--key", e.key,
			"--listen", addr, "--tls-cert", certFile, "--tls-key", keyFile)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest("GET", "https://"+addr+"/v1/whoami", nil)
			req.Header.Set("Authorization", "Bearer "+read)
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("https whoami: %d", resp.StatusCode)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve over TLS: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			code := resp.StatusCode
			resp.Body.Close()
			if code == 200 {
				t.Error("plain HTTP answered on the TLS listener")
			}
		}
	})

	t.Run("gor compat", func(t *testing.T) {
		gorCompat(t, e, a, b, admin, replay, "load-1-"+e.suffix)
	})
}

// topicStates reads the status topic directly: every state change of a
// job's records, in order, as "part=STATE".
func topicStates(t *testing.T, e *env, id string) []string {
	t.Helper()
	opts, _ := e.kafka().Opts()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(fleet.StatusTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := newAdmin(cl)
	ends, err := adm.ListEndOffsets(ctx, fleet.StatusTopic)
	if err != nil {
		t.Fatal(err)
	}
	end := ends[fleet.StatusTopic][0].Offset
	last := map[string]string{}
	var out []string
	for pos := int64(0); pos < end; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("reading the status topic timed out")
		}
		fs.EachRecord(func(r *kgo.Record) {
			pos = r.Offset + 1
			key := string(r.Key)
			if !strings.HasPrefix(key, "job/"+id+"/") && key != "job/"+id {
				return
			}
			var s fleet.Status
			if err := jsonUnmarshal(r.Value, &s); err != nil {
				return
			}
			part := strings.TrimPrefix(strings.TrimPrefix(key, "job/"+id), "/")
			if part == "" {
				part = "job"
			}
			if last[key] != string(s.State) {
				out = append(out, part+"="+string(s.State))
			}
			last[key] = string(s.State)
		})
	}
	return out
}

// selfSigned writes a certificate and key for 127.0.0.1.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "serve-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func getText(t *testing.T, url, token string) string {
	t.Helper()
	var s string
	code := callText(t, url, token, &s)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, s)
	}
	return s
}

// TestServeListen: a non-loopback address is refused without TLS (exit 2)
// unless --insecure-listen.
func TestServeListen(t *testing.T) {
	dir := t.TempDir()
	out, code := bin.Run(t, dir, "serve", "--brokers", "127.0.0.1:1", "--scenarios", dir, "--tokens", dir+"/t.json", "--listen", "0.0.0.0:0")
	if code != 2 || !strings.Contains(out, "is not a loopback address") || !strings.Contains(out, "--tls-cert") {
		t.Errorf("exit %d: %s", code, out)
	}
	out, code = bin.Run(t, dir, "serve", "--brokers", "127.0.0.1:1", "--scenarios", dir, "--tokens", dir+"/t.json", "--listen", "0.0.0.0:0", "--insecure-listen")
	if code != 2 || strings.Contains(out, "loopback") || !strings.Contains(out, "--key") {
		t.Errorf("with --insecure-listen: exit %d: %s", code, out)
	}
	out, code = bin.Run(t, dir, "serve", "--brokers", "127.0.0.1:1", "--scenarios", dir, "--tokens", dir+"/t.json", "--listen", "0.0.0.0:0", "--tls-cert", "c.pem")
	if code != 2 || !strings.Contains(out, "go together") {
		t.Errorf("half TLS: exit %d: %s", code, out)
	}
}

// TestServeTokensMissing: serve does not start with a --tokens file that
// does not exist (every call would be a 401): it says so and exits non-zero.
func TestServeTokensMissing(t *testing.T) {
	dir := t.TempDir()
	if out, code := bin.Run(t, dir, "keys", "new", filepath.Join(dir, "serve")); code != 0 {
		t.Fatalf("keys new: %s", out)
	}
	missing := filepath.Join(dir, "nope", "tokens.json")
	start := time.Now()
	out, code := bin.Run(t, dir, "serve", "--brokers", "127.0.0.1:1", "--scenarios", dir, "--tokens", missing, "--key", filepath.Join(dir, "serve.key"),
		"--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)))
	if code == 0 || !strings.Contains(out, "tokens file "+missing+" does not exist") || !strings.Contains(out, "replayctl tokens add") {
		t.Errorf("exit %d after %s: %s", code, time.Since(start).Round(time.Millisecond), out)
	}
}
