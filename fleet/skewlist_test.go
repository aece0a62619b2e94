package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// skewedBeat publishes a heartbeat of name whose record timestamp (and At)
// is on a clock offset from this process's: what an agent whose clock is
// off writes to an agents topic whose broker keeps its producers'
// timestamps (newProducerTimeFleet).
func (f *idFleet) skewedBeat(t *testing.T, name string, labels Labels, offset time.Duration) {
	t.Helper()
	at := time.Now().Add(offset)
	h := Heartbeat{Name: name, Labels: labels, Allow: []string{KindRecord, KindReplay}, Version: "v", At: at.UTC(), Instance: name + "-1", MaxSpecTTL: Duration(time.Hour)}
	v, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	r := &kgo.Record{Topic: AgentsTopic, Key: []byte(name), Value: v, Timestamp: at}
	if err := f.bus.cl.ProduceSync(f.ctx, r).FirstErr(); err != nil {
		t.Error(err)
	}
}

// skewedAgent heartbeats as name every HeartbeatInterval, on a clock
// offset from this process's, until the test ends.
func (f *idFleet) skewedAgent(t *testing.T, name string, labels Labels, offset time.Duration) {
	t.Helper()
	f.skewedBeat(t, name, labels, offset)
	ctx, stop := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				f.skewedBeat(t, name, labels, offset)
			}
		}
	}()
	t.Cleanup(func() { stop(); wg.Wait() })
}

// agentRow returns the agents ls row of name ("" when not shown), and the
// age its LAST HEARTBEAT column says.
func agentRow(t *testing.T, ls, name string) (string, time.Duration) {
	t.Helper()
	for _, line := range strings.Split(ls, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			m := regexp.MustCompile(`\s(\S+) ago\s`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("no LAST HEARTBEAT in %q", line)
			}
			d, err := time.ParseDuration(m[1])
			if err != nil {
				t.Fatal(err)
			}
			return line, d
		}
	}
	return "", 0
}

// TestSkewedClockAgentsListing: on a broker that keeps its producers'
// timestamps (an agents topic created CreateTime), a heartbeat's record timestamp is its
// agent's clock. agents ls says how long ago an agent heartbeat, and hides
// one silent for ForgetAfter, by when it read the heartbeat (its own
// clock): an agent 2 min behind said "2m ago" while it heartbeat, one 2 h
// behind was hidden as long silent. A one-shot listing, which reads the
// heartbeats from before it opened, waits for the agents' next ones:
// by their timestamps an agent 2 min behind looked lost (and jobs submit
// found no live agent in it), and one 1 h ahead that died looked alive.
func TestSkewedClockAgentsListing(t *testing.T) {
	f := newProducerTimeFleet(t)
	labels := Labels{"role": "skew"}
	f.skewedAgent(t, "behind", labels, -2*time.Minute)
	f.skewedAgent(t, "far-behind", labels, -2*time.Hour)
	f.skewedBeat(t, "ahead", labels, time.Hour) // then it dies
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, ts, _ := f.bus.Agent("behind"); ts.After(time.Now().Add(-time.Minute)) {
		t.Fatalf("the broker stamped the heartbeat %s: this test needs one that keeps its producers' timestamps", ts)
	}
	live := func(t *testing.T, ls string) {
		t.Helper()
		for _, name := range []string{"behind", "far-behind"} {
			row, age := agentRow(t, ls, name)
			if row == "" {
				t.Errorf("agent %s, heartbeating with its clock behind, not shown:\n%s", name, ls)
				continue
			}
			if !strings.Contains(row, " alive ") {
				t.Errorf("agent %s, heartbeating with its clock behind, not alive: %q", name, row)
			}
			if age >= time.Minute {
				t.Errorf("agent %s, heartbeating with its clock behind, last heartbeat %s ago: %q", name, age, row)
			}
		}
	}

	t.Run("a bus that read the heartbeats as they came", func(t *testing.T) {
		var ls strings.Builder
		if err := (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		live(t, ls.String())
	})

	t.Run("a one-shot listing", func(t *testing.T) {
		var ls strings.Builder
		c, err := Connect(f.ctx, f.cfg, &ls, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Agents(f.ctx, false); err != nil {
			t.Fatal(err)
		}
		live(t, ls.String())
		if row, _ := agentRow(t, ls.String(), "ahead"); !strings.Contains(row, " lost ") {
			t.Errorf("agent ahead, whose clock is 1h ahead and which stopped heartbeating, not lost: %q\n%s", row, ls.String())
		}
	})

	t.Run("jobs submit", func(t *testing.T) {
		var out strings.Builder
		c, err := Connect(f.ctx, f.cfg, &out, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A TTL over the agents' --max-spec-ttl: the refusal names the
		// live agents the job would run on, and nothing is submitted.
		req := SubmitRequest{Text: []byte(assignScenario), Job: "record", Selector: labels.selector(), Key: f.priv, JobID: "j-skew", TTL: 2 * time.Hour}
		_, err = c.SubmitJob(f.ctx, req)
		want := "ttl 2h0m0s: more than the --max-spec-ttl of agents the job would run on (behind's is 1h0m0s, far-behind's is 1h0m0s)"
		if !errors.Is(err, ErrUsage) || !strings.HasPrefix(fmt.Sprint(err), want) {
			t.Fatalf("submit: %v\nwant %q", err, want)
		}
	})
}

// TestSubmitSaysLeftOut: the agents that match a job's selector but are
// not live (or do not allow its kind) are named with why, beside the live
// ones the job runs on: jobs submit left them out silently, and a record
// job recorded nothing of a lost agent's host without a word
// (TestFleet's silent agent shows the line).
func TestSubmitSaysLeftOut(t *testing.T) {
	f := newProducerTimeFleet(t)
	labels := Labels{"role": "left"}
	f.skewedAgent(t, "up", labels, 0)
	f.skewedBeat(t, "gone", labels, -20*time.Second) // died 20 s ago
	c, err := Connect(f.ctx, f.cfg, io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.bus.AwaitHeartbeats(f.ctx); err != nil {
		t.Fatal(err)
	}
	live, leftOut, err := c.candidates(SubmitRequest{Selector: labels.selector()}, KindRecord, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(live) != "[up]" || len(leftOut) != 1 || !regexp.MustCompile(`^gone \(lost: no heartbeat for \d+s, allows record, replay\)$`).MatchString(leftOut[0]) {
		t.Errorf("live %q, left out %q; want [up] and gone, lost", live, leftOut)
	}
}

// selector is the selector that matches labels.
func (l Labels) selector() Selector { return Selector(l) }
