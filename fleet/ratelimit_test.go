package fleet

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/scenario"
)

// TestRefusalLimit: a full bucket allows burst at once, then one every
// every; unused time fills it up to burst, never more.
func TestRefusalLimit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	tests := []struct {
		name  string
		calls []time.Duration
		want  string // one letter a call: y allowed, n not
	}{
		{"burst at once", []time.Duration{0, 0, 0, 0}, "yyyn"},
		{"one per interval after the burst", []time.Duration{0, 0, 0, 5 * time.Second, 6 * time.Second, 7 * time.Second, 12 * time.Second}, "yyynyny"},
		{"idle time fills up to the burst only", []time.Duration{0, 0, 0, time.Hour, time.Hour, time.Hour, time.Hour}, "yyyyyyn"},
		{"a clock that goes back starts the interval again", []time.Duration{time.Minute, time.Minute, time.Minute, 0, 5 * time.Second, 6 * time.Second}, "yyynny"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newRefusalLimit(3, 6*time.Second)
			var got strings.Builder
			for _, d := range tt.calls {
				if l.allow(at(d)) {
					got.WriteByte('y')
				} else {
					got.WriteByte('n')
				}
			}
			if got.String() != tt.want {
				t.Fatalf("allowed %s, want %s", got.String(), tt.want)
			}
		})
	}
}

// TestUnverifiedRefusalsBounded: what anyone who writes to the jobs topic
// can publish in bulk — unsigned specs naming an agent, copies of a signed
// spec, cancels signed by an untrusted key — makes the agent publish at
// most refusalBurst refusals at once (then one every refusalEvery): the
// rest are refused all the same, counted (RefusalsSuppressed, the
// metric) and logged, never run.
func TestUnverifiedRefusalsBounded(t *testing.T) {
	const n = 3 * refusalBurst
	_, rogue, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// setup runs before the inputs; publish publishes the i-th.
		setup   func(t *testing.T, f *idFleet) Envelope
		publish func(t *testing.T, f *idFleet, env Envelope, i int)
		// refusals is the prefix of the status keys of the refusals, and
		// what they contain.
		prefix, contains string
	}{
		{
			name: "unsigned specs",
			publish: func(t *testing.T, f *idFleet, _ Envelope, i int) {
				id := fmt.Sprintf("forged-%d", i)
				env, err := Seal("spec", Spec{JobID: id, Kind: KindRecord, Job: "record", Agents: []string{"web-1"}, Selector: Selector{"role": "web"},
					ExpiresAt: time.Now().Add(time.Hour)}, nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+id, env); err != nil {
					t.Fatal(err)
				}
			},
			prefix: "job/forged-", contains: "/refused/web-1/",
		},
		{
			name: "copies of a signed spec",
			setup: func(t *testing.T, f *idFleet) Envelope {
				// The real spec at offset 0: its copies are replays all the same.
				f.submit(t, "j-real", Selector{"role": "web"}, "web-1")
				waitFor(t, 15*time.Second, "the real job run", func() bool {
					s, ok := f.bus.Status(agentKey("j-real", "web-1"))
					return ok && s.State.Final()
				})
				for _, jr := range f.bus.Jobs(0) {
					if jr.Key == "spec/j-real" {
						return jr.Envelope
					}
				}
				t.Fatal("the real spec not read back")
				return Envelope{}
			},
			publish: func(t *testing.T, f *idFleet, env Envelope, _ int) {
				if _, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-real", env); err != nil {
					t.Fatal(err)
				}
			},
			prefix: "job/j-real/refused/web-1/", contains: "replayed",
		},
		{
			name: "untrusted cancels",
			setup: func(t *testing.T, f *idFleet) Envelope {
				if err := f.bus.PublishStatus(f.ctx, jobKey("j-cancel"), Status{JobID: "j-cancel", Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}}); err != nil {
					t.Fatal(err)
				}
				return Envelope{}
			},
			publish: func(t *testing.T, f *idFleet, _ Envelope, i int) {
				now := time.Now().UTC()
				env, err := Seal("cancel", Cancel{CommandID: fmt.Sprintf("c-%d", i), JobID: "j-cancel", IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute)}, rogue)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := f.bus.Publish(f.ctx, JobsTopic, "cancel/j-cancel", env); err != nil {
					t.Fatal(err)
				}
			},
			prefix: "cmd/c-", contains: "/refused/web-1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newIDFleet(t)
			log := &testutil.SyncBuffer{}
			m := NewMetrics()
			ag, err := NewAgent(AgentConfig{
				Name: "web-1", Labels: Labels{"role": "web"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
				WorkDir: filepath.Join(t.TempDir(), "work"), Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)), Metrics: m,
				Load: func(string, []byte, []string, map[string]string, string) (*scenario.Scenario, error) {
					return nil, errors.New("run by the test")
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			a := f.run(t, "web-1", ag, log)
			f.waitAlive(t, "web-1")
			var env Envelope
			if tt.setup != nil {
				env = tt.setup(t, f)
			}
			start := time.Now()
			for i := range n {
				tt.publish(t, f, env, i)
			}
			published := func() int {
				c := 0
				for k := range f.bus.StatusPrefix(tt.prefix) {
					if strings.Contains(k, tt.contains) || strings.Contains(f.bus.StatusPrefix(tt.prefix)[k].Reason, tt.contains) {
						c++
					}
				}
				return c
			}
			waitFor(t, 30*time.Second, "every input refused (published or counted)", func() bool {
				return int64(published())+a.RefusalsSuppressed() == n
			})
			got, suppressed := published(), a.RefusalsSuppressed()
			most := refusalBurst + 1 + int(time.Since(start)/refusalEvery)
			if got < refusalBurst || got > most {
				t.Fatalf("%d refusals published of %d inputs, want %d to %d", got, n, refusalBurst, most)
			}
			if v := counterValue(t, m, "replayctl_agent_refusals_suppressed_total"); int64(v) != suppressed || suppressed == 0 {
				t.Fatalf("suppressed: metric %v, RefusalsSuppressed %d", v, suppressed)
			}
			if !strings.Contains(log.String(), "beyond the rate limit are not published") || !regexp.MustCompile(`suppressed-so-far=1\b`).MatchString(log.String()) {
				t.Fatalf("suppression not logged:\n%s", log.String())
			}
			if c := strings.Count(log.String(), "beyond the rate limit"); c > 1+int(time.Since(start)/suppressedLogEvery) {
				t.Fatalf("suppression logged %d times (at most every %s)", c, suppressedLogEvery)
			}
			// The limit spent, a job's own spec (the record its
			// submitter named) signed by a key the agent does not trust
			// is still answered: its submitter waits for that. In the
			// submitter's order: PENDING, the spec, then ASSIGNED naming
			// the spec's offset (the agent may read the spec between).
			if err := f.bus.PublishStatus(f.ctx, jobKey("j-own"), Status{JobID: "j-own", Kind: KindRecord, State: Pending, Agents: []string{"web-1"}}); err != nil {
				t.Fatal(err)
			}
			now := time.Now().UTC()
			own, err := Seal("spec", Spec{JobID: "j-own", Kind: KindRecord, Job: "record", Agents: []string{"web-1"}, Selector: Selector{"role": "web"},
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, rogue)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/j-own", own)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // the agent reads the spec while the job is PENDING
			if err := f.bus.PublishStatus(f.ctx, jobKey("j-own"), Status{JobID: "j-own", Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}, SpecOffset: rec.Offset}); err != nil {
				t.Fatal(err)
			}
			var r Status
			waitFor(t, 15*time.Second, "the refusal of the job's own spec", func() bool {
				var ok bool
				r, ok = f.bus.Status(refusedKey("j-own", "web-1", rec.Offset))
				return ok
			})
			if !r.Unverified || !strings.Contains(r.Reason, "signed by a key this agent does not trust") {
				t.Fatalf("refusal of the job's own spec: %+v", r)
			}
			if a.RefusalsSuppressed() != suppressed {
				t.Fatalf("suppressed %d, then %d", suppressed, a.RefusalsSuppressed())
			}
		})
	}
}

// counterValue reads a counter of m as /metrics shows it.
func counterValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	return metricValue(t, m, name).GetCounter().GetValue()
}

// metricValue is the one metric of m named name, as /metrics shows it.
func metricValue(t *testing.T, m *Metrics, name string) *dto.Metric {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0]
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
