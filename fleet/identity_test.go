package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/internal/testutil"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/scenario"
)

// idFleet is an embedded broker, a bus on it and the trusted key.
type idFleet struct {
	ctx  context.Context
	cfg  kafkaio.Config
	bus  *Bus
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newIDFleet(t *testing.T) *idFleet {
	t.Helper()
	return newIDFleetWith(t, nil)
}

// newProducerTimeFleet is newIDFleet on an agents and a jobs topic created
// CreateTime ahead of the bus, as an operator may create them: the broker
// keeps the timestamps their producers set (Apache Kafka too, then), so a
// heartbeat's timestamp is its agent's clock.
func newProducerTimeFleet(t *testing.T) *idFleet {
	t.Helper()
	return newIDFleetWith(t, func(ctx context.Context, broker kafkatest.Target) {
		for _, topic := range []string{AgentsTopic, JobsTopic} {
			conf := map[string]string{"cleanup.policy": "compact", "message.timestamp.type": "CreateTime"}
			if _, err := kafkaio.EnsureTopic(ctx, broker.Admin(t), topic, 1, 1, conf); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// newIDFleetWith is newIDFleet with prepare run on the broker before the
// bus opens (nil: nothing).
func newIDFleetWith(t *testing.T, prepare func(context.Context, kafkatest.Target)) *idFleet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	broker := kafkatest.Embedded(t, t.TempDir())
	if prepare != nil {
		prepare(ctx, broker)
	}
	f := &idFleet{ctx: ctx, cfg: kafkaio.Config{Brokers: broker.Addrs}}
	var err error
	if f.pub, f.priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	if f.bus, err = OpenBus(ctx, f.cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.bus.Close)
	return f
}

// idAgent is an agent running in the test, its log and its end.
type idAgent struct {
	*Agent
	log  *testutil.SyncBuffer
	stop context.CancelFunc
	done chan error
}

// agent starts an agent that allows record jobs; a job it runs fails at
// once ("run by the test"): running one is visible in its status.
func (f *idFleet) agent(t *testing.T, name string, labels Labels) *idAgent {
	t.Helper()
	log := &testutil.SyncBuffer{}
	a, err := NewAgent(AgentConfig{
		Name: name, Labels: labels, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{f.pub},
		WorkDir: filepath.Join(t.TempDir(), "work"), Kafka: f.cfg, Logger: slog.New(slog.NewTextHandler(log, nil)),
		Load: func(string, []byte, []string, map[string]string, string) (*scenario.Scenario, error) {
			return nil, errors.New("run by the test")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f.run(t, name, a, log)
}

// run runs a in the test until it ends; its log is shown if the test fails.
func (f *idFleet) run(t *testing.T, name string, a *Agent, log *testutil.SyncBuffer) *idAgent {
	t.Helper()
	actx, stop := context.WithCancel(f.ctx)
	ia := &idAgent{Agent: a, log: log, stop: stop, done: make(chan error, 1)}
	go func() { ia.done <- a.Run(actx) }()
	t.Cleanup(func() {
		stop()
		<-ia.done
		if t.Failed() {
			t.Logf("agent %s log:\n%s", name, log.String())
		}
	})
	return ia
}

// waitAlive waits until the agent's heartbeats are read back.
func (f *idFleet) waitAlive(t *testing.T, name string) {
	t.Helper()
	for !f.bus.AgentAlive(name, time.Now()) {
		if f.ctx.Err() != nil {
			t.Fatalf("agent %s never heartbeat", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFor polls cond every 50 ms for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// submit publishes a record job's status (ASSIGNED) and its signed spec
// naming agents, as jobs submit does; it returns the spec's offset.
func (f *idFleet) submit(t *testing.T, id string, sel Selector, agents ...string) int64 {
	t.Helper()
	now := time.Now().UTC()
	spec := Spec{JobID: id, Kind: KindRecord, Job: "record", Scenario: assignScenario, SHA256: ScenarioHash(assignScenario),
		Selector: sel, Agents: agents, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute), Submitter: "test"}
	env, err := Seal("spec", spec, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/"+id, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bus.PublishStatus(f.ctx, jobKey(id), Status{JobID: id, Kind: KindRecord, State: Assigned, Agents: agents, SpecOffset: rec.Offset}); err != nil {
		t.Fatal(err)
	}
	return rec.Offset
}

// beat publishes a heartbeat of name as another process would.
func (f *idFleet) beat(t *testing.T, name string, labels Labels, stopped bool) {
	t.Helper()
	h := Heartbeat{Name: name, Labels: labels, Version: "other", Allow: []string{KindRecord}, Addrs: []string{"192.0.2.7"}, At: time.Now().UTC(), Stopped: stopped}
	if _, err := f.bus.Publish(f.ctx, AgentsTopic, name, withInstance(h, "other-process")); err != nil {
		t.Fatal(err)
	}
}

// beats reads every heartbeat record of name in the agents topic.
func (f *idFleet) beats(t *testing.T, name string) []Heartbeat {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.cfg.Brokers...), kgo.ConsumeTopics(AgentsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := f.bus.Admin().ListEndOffsets(f.ctx, AgentsTopic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(AgentsTopic, 0)
	var out []Heartbeat
	for next := int64(0); next < end.Offset; {
		fs := cl.PollFetches(f.ctx)
		if f.ctx.Err() != nil {
			t.Fatal("agents topic not read to its end")
		}
		fs.EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			var b Heartbeat
			if string(r.Key) == name && json.Unmarshal(r.Value, &b) == nil {
				out = append(out, b)
			}
		})
	}
	return out
}

// TestDuplicateNameNotStarted: a second process started with the --name of
// a live agent (other labels) exits with an error before it heartbeats:
// it never takes the specs that name the first one.
func TestDuplicateNameNotStarted(t *testing.T) {
	f := newIDFleet(t)
	first := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	dup := f.agent(t, "web-1", Labels{"role": "dup"})
	select {
	case err := <-dup.done:
		dup.done <- err // for the cleanup
		if err == nil || !strings.Contains(err.Error(), "another agent process named web-1 is running (labels role=web") ||
			!strings.Contains(err.Error(), "agent names must be unique") {
			t.Fatalf("second agent named web-1: %v", err)
		}
	case <-time.After(HeartbeatInterval + nameCheckSlack + 5*time.Second):
		t.Fatal("a second agent named web-1 started")
	}
	for _, b := range f.beats(t, "web-1") {
		if b.Labels["role"] != "web" || b.Instance != first.instance {
			t.Fatalf("a heartbeat of web-1 not from the first process: %+v", b)
		}
	}
}

// TestSpecNamingAgentOfOtherLabels: a spec that names this agent with a
// selector its labels do not match (the submitter chose the name by
// another process's heartbeat) is refused, saying why, and not run.
func TestSpecNamingAgentOfOtherLabels(t *testing.T) {
	f := newIDFleet(t)
	f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	off := f.submit(t, "j-labels", Selector{"role": "dup"}, "web-1")
	var refused Status
	waitFor(t, 15*time.Second, "refusal", func() bool {
		var ok bool
		refused, ok = f.bus.Status(refusedKey("j-labels", "web-1", off))
		if s, ran := f.bus.Status(agentKey("j-labels", "web-1")); ran {
			t.Fatalf("the agent ran a job whose selector its labels do not match: %s %s", s.State, s.Reason)
		}
		return ok
	})
	if !strings.Contains(refused.Reason, "the job's selector role=dup does not match this agent's labels role=web") {
		t.Fatalf("refusal: %s", refused.Reason)
	}
	if s, ran := f.bus.Status(agentKey("j-labels", "web-1")); ran {
		t.Fatalf("the agent ran a job whose selector its labels do not match: %s %s", s.State, s.Reason)
	}
}

// TestTwinProcess: a running agent that reads a heartbeat of its name from
// another process says so loudly and takes no new job while it lasts; a
// stopped heartbeat of that process makes it heartbeat again at once, and
// it does not publish its own stopped heartbeat while the other lives.
func TestTwinProcess(t *testing.T) {
	f := newIDFleet(t)
	a := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	twinBeats := func() (stop func()) {
		ctx, cancel := context.WithCancel(f.ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				f.beat(t, "web-1", Labels{"role": "dup"}, false)
				select {
				case <-ctx.Done():
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
		return func() { cancel(); <-done }
	}
	stopTwin := twinBeats()
	waitFor(t, 10*time.Second, "error about the other process", func() bool {
		return strings.Contains(a.log.String(), "level=ERROR msg=\"another agent process is named web-1 (labels role=dup, addresses 192.0.2.7, version other;")
	})
	off := f.submit(t, "j-twin", Selector{"role": "web"}, "web-1")
	waitFor(t, 15*time.Second, "refusal", func() bool {
		s, ok := f.bus.Status(refusedKey("j-twin", "web-1", off))
		return ok && strings.Contains(s.Reason, "two agent processes are named web-1")
	})
	if _, ran := f.bus.Status(agentKey("j-twin", "web-1")); ran {
		t.Fatal("the agent ran a job while another process used its name")
	}

	stopTwin()
	// Right after a heartbeat of the agent: its next one is due only
	// HeartbeatInterval later.
	prev, _, _ := f.bus.Agent("web-1")
	waitFor(t, 5*time.Second, "heartbeat of the agent", func() bool {
		h, _, _ := f.bus.Agent("web-1")
		return h.Labels["role"] == "web" && !h.At.Equal(prev.At)
	})
	f.beat(t, "web-1", Labels{"role": "dup"}, true)
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, HeartbeatInterval/2, "web-1 alive after the other process's stopped heartbeat", func() bool {
		h, _, _ := f.bus.Agent("web-1")
		return h.Labels["role"] == "web" && f.bus.AgentAlive("web-1", time.Now())
	})

	stopTwin = twinBeats()
	defer stopTwin()
	again := time.Now()
	waitFor(t, 10*time.Second, "the other process seen again", func() bool {
		h, ok := a.twin(time.Now())
		return ok && h.At.After(again)
	})
	a.stop()
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
	a.done <- nil
	for _, b := range f.beats(t, "web-1") {
		if b.Stopped && b.Instance == a.instance {
			t.Fatalf("stopped heartbeat published while another process heartbeats under the name:\n%s", a.log.String())
		}
	}
	if !strings.Contains(a.log.String(), "no stopped heartbeat published: another agent process named web-1") {
		t.Fatalf("log:\n%s", a.log.String())
	}
}

// TestUntrustedCancelReported: a cancel signed with a key the agent does
// not trust is refused under its command ID, with the reason, for the
// canceller to read; a restarted agent does not report it again.
func TestUntrustedCancelReported(t *testing.T) {
	f := newIDFleet(t)
	a := f.agent(t, "web-1", Labels{"role": "web"})
	f.waitAlive(t, "web-1")
	// A job of web-1 not ended (no spec: nothing runs).
	if err := f.bus.PublishStatus(f.ctx, jobKey("j-cancel"), Status{JobID: "j-cancel", Kind: KindRecord, State: Assigned, Agents: []string{"web-1"}}); err != nil {
		t.Fatal(err)
	}
	_, rogue, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cancel := func(cmd string) {
		t.Helper()
		now := time.Now().UTC()
		env, err := Seal("cancel", Cancel{CommandID: cmd, JobID: "j-cancel", IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), Submitter: "rogue"}, rogue)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.bus.Publish(f.ctx, JobsTopic, "cancel/j-cancel", env); err != nil {
			t.Fatal(err)
		}
	}
	refusal := func(cmd string) Status {
		t.Helper()
		var s Status
		waitFor(t, 15*time.Second, "refusal of "+cmd, func() bool {
			var ok bool
			s, ok = f.bus.Status(cancelRefusedKey(cmd, "web-1"))
			return ok
		})
		return s
	}
	cancel("c-1")
	s := refusal("c-1")
	if s.State != Refused || s.JobID != "j-cancel" || s.CommandID != "c-1" || s.Agent != "web-1" ||
		!strings.Contains(s.Reason, "cancel refused: signed by a key this agent does not trust (key "+Fingerprint(rogue.Public().(ed25519.PublicKey))+")") {
		t.Fatalf("refusal: %+v", s)
	}
	a.stop()
	if err := <-a.done; err != nil {
		t.Fatal(err)
	}
	a.done <- nil

	again := f.agent(t, "web-1", Labels{"role": "web"})
	cancel("c-2") // read after c-1: once refused, c-1 was seen
	refusal("c-2")
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(again.log.String(), "cancel refused"); n != 1 || strings.Contains(again.log.String(), "c-1") {
		t.Fatalf("restarted agent: %d refusals logged, want 1 (c-2):\n%s", n, again.log.String())
	}
	if s2, _ := f.bus.Status(cancelRefusedKey("c-1", "web-1")); !s2.At.Equal(s.At) {
		t.Fatalf("refusal of c-1 published again after the restart: %+v", s2)
	}
}

// TestGaveUpNotRefusedAsReplayed: an agent that reads a record spec after
// the submitter marked it FAILED (it did not answer within 10 s: it was
// stopped) does not run it and does not publish that it was "already
// taken by this agent": it never was.
func TestGaveUpNotRefusedAsReplayed(t *testing.T) {
	// A submitter marks its give-up (gave-up); one from before that mark
	// says it only by its reason.
	for _, marked := range []bool{true, false} {
		t.Run(fmt.Sprintf("gave-up=%v", marked), func(t *testing.T) {
			f := newIDFleet(t)
			f.submit(t, "j-silent", Selector{"role": "web"}, "web-1") // at offset 0
			if err := f.bus.PublishStatus(f.ctx, agentKey("j-silent", "web-1"), Status{JobID: "j-silent", Kind: KindRecord, Agent: "web-1", State: Failed,
				Reason: "did not answer within 10s", GaveUp: marked}); err != nil {
				t.Fatal(err)
			}
			a := f.agent(t, "web-1", Labels{"role": "web"}) // woken up: reads the spec now
			waitFor(t, 15*time.Second, "word of the job", func() bool {
				return strings.Contains(a.log.String(), "job not run: the submitter gave up on this agent") ||
					len(f.bus.StatusPrefix(jobKey("j-silent")+"/refused/")) > 0
			})
			if err := f.bus.Sync(f.ctx); err != nil {
				t.Fatal(err)
			}
			for k, s := range f.bus.StatusPrefix(jobKey("j-silent") + "/refused/") {
				t.Fatalf("%s: %s %s", k, s.State, s.Reason)
			}
			if s, _ := f.bus.Status(agentKey("j-silent", "web-1")); s.State != Failed || s.Reason != "did not answer within 10s" {
				t.Fatalf("agent part: %s %s", s.State, s.Reason)
			}
		})
	}
}

func withInstance(h Heartbeat, instance string) Heartbeat {
	h.Instance = instance
	return h
}
