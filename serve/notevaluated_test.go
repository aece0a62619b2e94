package serve

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/report"
)

// TestReportAssertionsNotEvaluated: the report of a replay job that failed
// or was cancelled lists the assertions its scenario declares as not
// evaluated, saying why, as jobs show does (it said "No assertions: the
// job declares none"); its HTML verdict says the job failed or was
// cancelled.
func TestReportAssertionsNotEvaluated(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, bus, key := keyedServer(t, ctx)
	now := time.Now().UTC()
	const scenario = "jobs:\n  replay:\n    assert:\n      - errors.rate < 0.01\n      - requests.sent > 0\n"
	for id, state := range map[string]fleet.State{"failed-1": fleet.Failed, "cancelled-1": fleet.Cancelled} {
		spec := fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: "replay.yaml", Scenario: scenario, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
		env, err := fleet.Seal("spec", spec, key)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+id, env)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.PublishStatus(ctx, "job/"+id, fleet.Status{JobID: id, Kind: fleet.KindReplay, State: state, SpecOffset: rec.Offset, At: now,
			Reason: "shard 1 failed", Result: &fleet.Result{Sent: 10, OK: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	for id, word := range map[string]string{"failed-1": "failed", "cancelled-1": "cancelled"} {
		call := func(h func(http.ResponseWriter, *http.Request, Token), path string) string {
			t.Helper()
			w := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, path, nil)
			r.SetPathValue("id", id)
			h(w, r, Token{})
			if w.Code != http.StatusOK {
				t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
			}
			return w.Body.String()
		}
		var m struct {
			Assertions []report.Assertion `json:"assertions"`
		}
		if err := json.Unmarshal([]byte(call(s.reportJSON, "/v1/jobs/"+id+"/report.json")), &m); err != nil {
			t.Fatal(err)
		}
		why := "the job " + word
		want := []report.Assertion{
			{Expr: "errors.rate < 0.01", Detail: "not evaluated: " + why, NotEvaluated: why},
			{Expr: "requests.sent > 0", Detail: "not evaluated: " + why, NotEvaluated: why},
		}
		if len(m.Assertions) != len(want) || m.Assertions[0] != want[0] || m.Assertions[1] != want[1] {
			t.Errorf("%s: report.json assertions %+v, want %+v", id, m.Assertions, want)
		}
		page := call(s.reportHTML, "/v1/jobs/"+id+"/report.html")
		for _, sub := range []string{"Job " + word, "the job " + word + " before it ran whole: 2 assertions not evaluated", "<code>errors.rate &lt; 0.01</code>", "not evaluated: " + why} {
			if !strings.Contains(page, sub) {
				t.Errorf("%s: report.html lacks %q", id, sub)
			}
		}
		for _, bad := range []string{"No assertions", "declares none", "assertions held"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s: report.html says %q", id, bad)
			}
		}
	}
}
