package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
)

// TestSpecIndexReadsOneRecord: with 20 001 jobs on the jobs topic (more
// spec records than the spec cache keeps), looking one job's spec up
// reads one record, not every record of the topic, and a list request
// decodes none but its page's, where a scan decoded every spec on every
// list (the cache, least recently used first, keeps none of a scan longer
// than itself). Records are counted, not time; the index's answers are
// the scan's: the spec a job's status names, else its latest.
func TestSpecIndexReadsOneRecord(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bus := embeddedBus(t, ctx)
	own := newKey(t)
	now := time.Now().UTC()
	const jobs = 20_001
	spec := func(i int, file string) fleet.Spec {
		id := fmt.Sprintf("job-%05d", i)
		text := "version: 1\nname: " + id + "\n"
		return fleet.Spec{JobID: id, Kind: fleet.KindReplay, Job: "replay", File: file, Scenario: text, SHA256: fleet.ScenarioHash(text),
			Selector: fleet.Selector{"role": "load"}, Submitter: "token:alice (replayctl serve)", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	// Produced in batches (Bus.Publish waits for each record), specs and
	// statuses as the bus encodes them.
	var recs []*kgo.Record
	for i := range jobs {
		file := "replay.yaml"
		if i%10 == 0 {
			file = "other.yaml"
		}
		sp := spec(i, file)
		env, err := json.Marshal(sealEnv(t, sp, own))
		if err != nil {
			t.Fatal(err)
		}
		st, err := json.Marshal(fleet.Status{JobID: sp.JobID, Kind: fleet.KindReplay, State: fleet.Pending, At: now})
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: fleet.JobsTopic, Key: []byte("spec/" + sp.JobID), Value: env},
			&kgo.Record{Topic: fleet.StatusTopic, Key: []byte("job/" + sp.JobID), Value: st})
	}
	for batch := range slices.Chunk(recs, 4000) {
		if err := bus.Plain().ProduceSync(ctx, batch...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Two jobs published twice: one past PENDING whose status names its
	// first spec, one PENDING (its latest is shown).
	var first int64
	for _, id := range []int{7, 7, 8, 8} {
		rec, err := bus.Publish(ctx, fleet.JobsTopic, fmt.Sprintf("spec/job-%05d", id), sealEnv(t, spec(id, fmt.Sprintf("again-%d.yaml", id)), own))
		if err != nil {
			t.Fatal(err)
		}
		if id == 7 && first == 0 {
			first = rec.Offset
		}
	}
	if err := bus.PublishStatus(ctx, "job/job-00007", fleet.Status{JobID: "job-00007", Kind: fleet.KindReplay, State: fleet.Assigned, SpecOffset: first, At: now}); err != nil {
		t.Fatal(err)
	}
	if err := bus.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("published in %s", time.Since(now))

	list := func(s *Server, query string) string {
		t.Helper()
		w := httptest.NewRecorder()
		s.listJobs(w, httptest.NewRequest("GET", "/v1/jobs?"+query, nil), Token{})
		if w.Code != 200 {
			t.Fatalf("GET /v1/jobs?%s: %d %.300s", query, w.Code, w.Body.String())
		}
		return w.Body.String() + "\nLink: " + w.Header().Get("Link")
	}
	// counted is what f read: records looked at, and spec records decoded.
	counted := func(s *Server, f func()) (visited, decoded int64) {
		v, d := s.index.visited.Load(), s.specs.reads.Load()
		f()
		return s.index.visited.Load() - v, s.specs.reads.Load() - d
	}
	specs := int64(jobs + 4)

	// Before: an index that holds one job (it left the others out) leaves
	// the serve scanning, as it did without one.
	before := &Server{cfg: Config{Key: own}, bus: bus}
	before.index.max = 1
	pages := map[string]string{}
	for _, q := range []string{"limit=50", "scenario=other.yaml&limit=50"} {
		pages[q] = list(before, q)
		v, d := counted(before, func() {
			if got := list(before, q); got != pages[q] {
				t.Errorf("GET /v1/jobs?%s answered otherwise the second time", q)
			}
		})
		// Every spec is decoded again but maybe some of the page's, used
		// last.
		if v < specs || d < specs-50 {
			t.Errorf("before, a list (%s) again: %d records looked at, %d decoded; want %d and all but the page's, at least %d (the cache holds %d)", q, v, d, specs, specs-50, specCacheSize)
		}
	}
	v, _ := counted(before, func() {
		if _, ok := before.specOf("job-12345"); !ok {
			t.Error("before: no spec of job-12345")
		}
	})
	if v < specs {
		t.Errorf("before, one lookup looked at %d records, want every one (%d)", v, specs)
	}
	t.Logf("before: a list decodes %d spec records every time; a lookup looks at %d records (%s)", specs, v, time.Since(now))

	// After: each record read once as it comes, then a list decodes only
	// its page's specs (kept: the latest read), and a lookup fetches one
	// record.
	after := &Server{cfg: Config{Key: own}, bus: bus}
	v, d := counted(after, func() { list(after, "limit=50") })
	if v != specs+50 || d != specs {
		t.Errorf("after, the first list: %d records looked at, %d decoded; want %d (each once, and the page's 50) and %d", v, d, specs+50, specs)
	}
	for _, q := range []string{"limit=50", "scenario=other.yaml&limit=50"} {
		var got string
		v, d := counted(after, func() { got = list(after, q) })
		if got != pages[q] {
			t.Errorf("GET /v1/jobs?%s: the index's answer is not the scan's:\n%.600s\nwant\n%.600s", q, got, pages[q])
		}
		if v != 50 || d != 0 {
			t.Errorf("after, a list (%s): %d records looked at, %d decoded; want 50 (its page) and 0", q, v, d)
		}
	}
	for _, id := range []string{"job-00003", "job-12345", "job-20000", "job-00007", "job-00008", "job-99999"} {
		want, wok := before.specIndex(id)[id]
		var got jobSpec
		var ok bool
		v, d := counted(after, func() { got, ok = after.specOf(id) })
		if ok != wok || got.rec.Offset != want.rec.Offset || got.spec.File != want.spec.File {
			t.Errorf("%s: the index picks %v at %d (%s), the scan %v at %d (%s)", id, ok, got.rec.Offset, got.spec.File, wok, want.rec.Offset, want.spec.File)
		}
		if wok && (v != 1 || d > 1) || !wok && v != 0 {
			t.Errorf("after, looking %s up: %d records looked at, %d decoded; want 1 record looked at (0 for a job with no spec) and at most 1 decoded", id, v, d)
		}
	}
	if sp, _ := after.specOf("job-00007"); sp.rec.Offset != first || !strings.HasPrefix(sp.spec.File, "again-7") {
		t.Errorf("job-00007 shows the spec at %d (%s), want the one its status names, at %d", sp.rec.Offset, sp.spec.File, first)
	}
	if sp, _ := after.specOf("job-00008"); sp.spec.File != "again-8.yaml" {
		t.Errorf("job-00008 (PENDING) shows %s, want its latest spec", sp.spec.File)
	}
	// A new job's spec is indexed as it comes.
	sp := spec(jobs, "late.yaml")
	if _, err := bus.Publish(ctx, fleet.JobsTopic, "spec/"+sp.JobID, sealEnv(t, sp, own)); err != nil {
		t.Fatal(err)
	}
	if err := bus.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	v, d = counted(after, func() {
		if got, ok := after.specOf(sp.JobID); !ok || got.spec.File != "late.yaml" {
			t.Errorf("the new job's spec: %v %+v", ok, got.spec)
		}
	})
	if v != 2 || d != 1 {
		t.Errorf("looking a new job up: %d records looked at, %d decoded; want 2 (indexed, fetched) and 1", v, d)
	}
}
