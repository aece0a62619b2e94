package fleet

import (
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/internal/testutil"
)

// TestAgentsListFlagsClock: agents ls flags an agent whose clock, as its
// heartbeat measured it against the broker's, is off by more than
// ClockOffsetWarn, and says under the table what that does to specs; an
// offset within it is shown as it is, and one the agent could not measure
// says so (not 0s), with why.
func TestAgentsListFlagsClock(t *testing.T) {
	f := newIDFleet(t)
	now := time.Now().UTC()
	for _, h := range []Heartbeat{
		{Name: "behind", ClockOffset: Duration(3 * time.Minute)},
		{Name: "ahead", ClockOffset: Duration(-90 * time.Second)},
		{Name: "edge", ClockOffset: Duration(ClockOffsetWarn)},
		{Name: "fine", ClockOffset: Duration(-800 * time.Millisecond)},
		{Name: "unmeasured", ClockUnmeasured: true},
		{Name: "older"}, // an agent older than ClockUnmeasured
	} {
		h.Labels, h.Allow, h.Version, h.At = Labels{"role": "x"}, []string{KindReplay}, "v", now
		if _, err := f.bus.Publish(f.ctx, AgentsTopic, h.Name, h); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	out := ls.String()
	for _, c := range []struct{ name, clock string }{
		{"behind", `3m0s \(OFF\)`}, {"ahead", `-1m30s \(OFF\)`}, {"edge", "1m0s"}, {"fine", "-800ms"}, {"unmeasured", "unmeasured"}, {"older", "0s"},
	} {
		if !regexp.MustCompile(`(?m)^` + c.name + ` +role=x +replay +v +\S+ ago +alive +- +- +- +- +` + c.clock + ` *$`).MatchString(out) {
			t.Errorf("agent %s's clock offset is not %s:\n%s", c.name, c.clock, out)
		}
	}
	for _, want := range []string{
		"agent behind: its clock is 3m0s behind the broker's: a spec from a submitter on the broker's time looks issued 3m0s in its future (refused as issued in the future beyond 2m0s), and it takes a spec until 3m0s after its expiry; set its clock right (NTP)\n",
		"agent ahead: its clock is 1m30s ahead of the broker's: specs expire 1m30s early on it (one submitted with a shorter --ttl is refused as expired); set its clock right (NTP)\n",
		"(clock offset unmeasured for 1 agent(s): an agent measures it against the broker's timestamps of its heartbeats (the agents topic's LogAppendTime), which it does not have",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("agents ls lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{"edge", "fine", "unmeasured", "older"} {
		if strings.Contains(out, "agent "+name+":") {
			t.Errorf("agent %s flagged:\n%s", name, out)
		}
	}
}

// TestAgentClockUnmeasured: on an agents topic created CreateTime the
// broker keeps each heartbeat's timestamp as its agent set it, so a
// heartbeat read back holds the agent's own clock: the agent says its
// offset is unmeasured rather than 0s, and agents ls says so.
func TestAgentClockUnmeasured(t *testing.T) {
	f := newProducerTimeFleet(t)
	bs := f.agentBeats(t, "load-1")
	for i, h := range bs {
		if !h.ClockUnmeasured || h.ClockOffset != 0 {
			t.Errorf("heartbeat %d says it measured a clock offset of %s", i, time.Duration(h.ClockOffset))
		}
	}
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	if !regexp.MustCompile(`(?m)^load-1 .* unmeasured `).MatchString(ls.String()) {
		t.Errorf("agents ls:\n%s", ls.String())
	}
}

// TestAgentClockMeasuredEmbedded: the embedded broker stamps the agents
// topic (LogAppendTime) with its own time, as Apache Kafka does, so an
// agent measures its clock's offset from the broker's (this process's
// clock: about 0), and agents ls shows it, not "unmeasured".
func TestAgentClockMeasuredEmbedded(t *testing.T) {
	f := newIDFleet(t)
	bs := f.agentBeats(t, "load-1")
	last := bs[len(bs)-1]
	if off := time.Duration(last.ClockOffset); last.ClockUnmeasured || off < -time.Second || off > time.Second {
		t.Errorf("the last heartbeat: offset %s, unmeasured %v; want one measured, within 1s of 0 (one clock)", off, last.ClockUnmeasured)
	}
	var ls strings.Builder
	_ = (&Client{bus: f.bus, Out: &ls}).Agents(f.ctx, false)
	if strings.Contains(ls.String(), "unmeasured") {
		t.Errorf("agents ls:\n%s", ls.String())
	}
}

// agentBeats runs an agent and returns its heartbeats once three or more
// were sent, the later ones after one was read back.
func (f *idFleet) agentBeats(t *testing.T, name string) []Heartbeat {
	t.Helper()
	f.replayAgentWith(t, name, func(*AgentConfig) {})
	time.Sleep(2*HeartbeatInterval + 500*time.Millisecond)
	bs := f.beats(t, name)
	if len(bs) < 3 {
		t.Fatalf("%d heartbeats, want 3 or more", len(bs))
	}
	return bs
}

// TestLogClock: an agent logs once that its clock went beyond
// ClockOffsetWarn of the broker's, with what that does to specs, and once
// that it came back; an offset it did not measure is never logged.
func TestLogClock(t *testing.T) {
	for _, c := range []struct {
		offset         time.Duration
		measured, was  bool
		want           bool
		logged, nologs string
	}{
		{3 * time.Minute, true, false, true, `level=WARN msg="its clock is 3m0s behind the broker's: `, ""},
		{3 * time.Minute, true, true, true, "", "msg="},
		{-2 * time.Minute, true, false, true, `level=WARN msg="its clock is 2m0s ahead of the broker's: specs expire 2m0s early`, ""},
		{10 * time.Second, true, true, false, `level=INFO msg="this host's clock is within 1m0s of the broker's again"`, ""},
		{10 * time.Second, true, false, false, "", "msg="},
		{time.Hour, false, false, false, "", "msg="},
	} {
		log := &testutil.SyncBuffer{}
		a := &Agent{log: slog.New(slog.NewTextHandler(log, nil))}
		if got := a.logClock(c.offset, c.measured, c.was); got != c.want {
			t.Errorf("logClock(%s, measured %v, was off %v) = %v, want %v", c.offset, c.measured, c.was, got, c.want)
		}
		if c.logged != "" && !strings.Contains(log.String(), c.logged) {
			t.Errorf("%s (measured %v, was off %v): logged %q, want %q", c.offset, c.measured, c.was, log.String(), c.logged)
		}
		if c.nologs != "" && strings.Contains(log.String(), c.nologs) {
			t.Errorf("%s (measured %v, was off %v): logged %q, want nothing", c.offset, c.measured, c.was, log.String())
		}
	}
}
