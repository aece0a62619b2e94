package fleet

import (
	"errors"
	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/runbus"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFleetTopicsRefused: a scenario whose data topics (topics: entries)
// are topics replayctl keeps its own state in (replayctl.*) or its own
// window catalog (a kafka.catalog-topic of any name), or whose catalog is
// one of the fleet's topics, is refused by the agents
// (LoadRestricted) and by the submitter (CheckSubmit), saying which topic,
// where, and why; however the name is reached (a --set, a --var).
func TestFleetTopicsRefused(t *testing.T) {
	work := t.TempDir()
	file := filepath.Join(work, "s.yaml")
	scenario := func(kafka, topic string) string {
		return `version: 1
name: t
kafka: {brokers: [embedded]` + kafka + `}
topics:
  traffic: {name: "` + topic + `", create: true}
jobs:
  record:
    source: {pcap: {path: in.pcap}}
    sink: {kafka: {topic: traffic}}
`
	}
	vars := map[string]string{"TOPIC": "replayctl.status", "CATALOG": "team-windows"}
	tests := []struct {
		name, text string
		set        []string
		want       []string // nil: accepted
	}{
		{"a data topic", scenario("", "http-traffic"), nil, nil},
		{"a name like the fleet's", scenario("", "replayctl-jobs"), nil, nil},
		{"another catalog", scenario(", catalog-topic: replayctl.windows-staging", "http-traffic"), nil, nil},
		{"the jobs topic", scenario("", "replayctl.jobs"), nil,
			[]string{`s.yaml:5:3: topics.traffic: Kafka topic "replayctl.jobs" is the fleet's jobs topic (signed job specs and cancels); a job may not read or write the topics named replayctl.*`}},
		{"the status topic", scenario("", "replayctl.status"), nil, []string{`"replayctl.status" is the fleet's status topic`}},
		{"the agents topic", scenario("", "replayctl.agents"), nil, []string{`"replayctl.agents" is the fleet's agents topic`}},
		{"the shard barrier", scenario("", "replayctl.runs"), nil, []string{`"replayctl.runs" is the shard barrier's topic`}},
		{"the window catalog", scenario("", "replayctl.windows"), nil, []string{`"replayctl.windows" is the window catalog's topic`}},
		{"any replayctl.* topic", scenario("", "replayctl.other"), nil, []string{`"replayctl.other" is a topic replayctl keeps its own state in`}},
		{"through --set", scenario("", "http-traffic"), []string{"topics.traffic.name=replayctl.jobs"}, []string{`topics.traffic: Kafka topic "replayctl.jobs" is the fleet's jobs topic`}},
		{"the catalog in the status topic", scenario(", catalog-topic: replayctl.status", "http-traffic"), nil,
			[]string{`kafka.catalog-topic: Kafka topic "replayctl.status" is the fleet's status topic (every job's state and result); windows may not be saved into it`}},
		{"both", scenario(", catalog-topic: replayctl.jobs", "replayctl.status"), nil,
			[]string{`topics.traffic: Kafka topic "replayctl.status"`, `kafka.catalog-topic: Kafka topic "replayctl.jobs"`}},
		{"the scenario's own catalog", scenario(", catalog-topic: team-windows", "team-windows"), nil,
			[]string{`s.yaml:5:3: topics.traffic: Kafka topic "team-windows" is the window catalog's topic (kafka.catalog-topic); a job may not read or write it as traffic (agents refuse it: give the topic or the catalog another name)`}},
		{"its own catalog through --set", scenario(", catalog-topic: team-windows", "http-traffic"), []string{"topics.traffic.name=team-windows"},
			[]string{`topics.traffic: Kafka topic "team-windows" is the window catalog's topic (kafka.catalog-topic)`}},
		{"the catalog moved onto the data topic by --set", scenario("", "team-windows"), []string{"kafka.catalog-topic=team-windows"},
			[]string{`topics.traffic: Kafka topic "team-windows" is the window catalog's topic (kafka.catalog-topic)`}},
		{"another scenario's catalog name", scenario(", catalog-topic: team-windows", "team-windows-2"), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadRestricted(file, []byte(tt.text), tt.set, vars, work)
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("agent refused: %v", err)
			case tt.want != nil && err == nil:
				t.Fatalf("agent accepted, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("agent: %v\nwant %q", err, w)
				}
			}
			_, err = CheckSubmit(SubmitRequest{File: file, Text: []byte(tt.text), Set: tt.set, Job: "record", Selector: Selector{"role": "x"}})
			var inv *InvalidScenarioError
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("submitter refused: %v", err)
			case tt.want != nil && (!errors.As(err, &inv) || len(inv.Problems) != len(tt.want)):
				t.Fatalf("submitter: %v, want %d problem(s)", err, len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("submitter: %v\nwant %q", err, w)
				}
			}
		})
	}
	// A --var the name comes from: only the agent knows it.
	text := scenario("", "${TOPIC}")
	if _, err := LoadRestricted(file, []byte(text), nil, vars, work); err == nil || !strings.Contains(err.Error(), `"replayctl.status" is the fleet's status topic`) {
		t.Errorf("a --var's topic: %v", err)
	}
	text = scenario(`, catalog-topic: "${CATALOG}"`, "team-windows")
	if _, err := LoadRestricted(file, []byte(text), nil, vars, work); err == nil || !strings.Contains(err.Error(), `"team-windows" is the window catalog's topic (kafka.catalog-topic)`) {
		t.Errorf("a --var's catalog: %v", err)
	}
}

// TestAgentRefusesFleetTopics: an agent refuses a signed job whose
// scenario names the fleet's status topic as a data topic, before it runs,
// and its published reason says which topic and why.
func TestAgentRefusesFleetTopics(t *testing.T) {
	f := newIDFleet(t)
	_, work := f.replayAgent(t, "load-1", nil)
	text := `version: 1
name: into-the-status-topic
topics:
  out: {name: replayctl.status, create: true, config: {retention.ms: "1000"}}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
    sink: {http: {target: t}}
`
	s := f.submitReplay(t, "j-topics", "load-1", text)
	if s.State != Refused || !strings.Contains(s.Reason, `topics.out: Kafka topic "replayctl.status" is the fleet's status topic`) {
		t.Fatalf("shard %s %q, want REFUSED naming the status topic", s.State, s.Reason)
	}
}

// TestAgentRefusesCatalogAsData: an agent refuses a signed job whose data
// topic is the scenario's own window catalog, named as the scenario likes
// (kafka.catalog-topic), as it refuses the replayctl.* topics.
func TestAgentRefusesCatalogAsData(t *testing.T) {
	f := newIDFleet(t)
	_, work := f.replayAgent(t, "load-1", nil)
	text := `version: 1
name: into-the-catalog
kafka: {catalog-topic: team-windows}
topics:
  out: {name: team-windows, create: true}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {gor: {path: ` + filepath.Join(work, "in.gor") + `}}
    sink: {http: {target: t}}
`
	s := f.submitReplay(t, "j-catalog", "load-1", text)
	if s.State != Refused || !strings.Contains(s.Reason, `topics.out: Kafka topic "team-windows" is the window catalog's topic (kafka.catalog-topic)`) {
		t.Fatalf("shard %s %q, want REFUSED naming the catalog's topic", s.State, s.Reason)
	}
}

// TestAgentRefusesWindowOnCatalogTopic: a window of a custom catalog whose
// catalog entry (anyone with write access to Kafka may write one) names
// the catalog's own topic is refused when the agent resolves it at run
// time, as a window on a replayctl.* topic is.
func TestAgentRefusesWindowOnCatalogTopic(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), "team-windows")
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, catalog.Window{Name: "itself", Topic: "team-windows", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}}, true); err != nil {
		t.Fatal(err)
	}
	text := `version: 1
name: from-the-catalog
kafka: {catalog-topic: team-windows}
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {window: itself}
    sink: {http: {target: t}}
`
	s := f.submitReplay(t, "j-itself", "load-1", text)
	want := `window "itself": topic team-windows: the window catalog's topic (kafka.catalog-topic); agents do not read it as traffic`
	if s.State != Failed || !strings.Contains(s.Reason, want) {
		t.Errorf("shard %s %q, want FAILED with %q", s.State, s.Reason, want)
	}
}

// TestAgentRefusesWindowOnFleetTopic: a saved window whose topic is one of
// the fleet's (a catalog entry anyone with write access to Kafka may
// write) is refused when the agent resolves it at run time: the scenario
// names only the window, so its load-time checks cannot see the topic.
func TestAgentRefusesWindowOnFleetTopic(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []catalog.Window{
		{Name: "sneaky", Topic: StatusTopic, Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}},
		{Name: "offsets", Topic: "__consumer_offsets", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}},
	} {
		if err := cat.Save(f.ctx, w, true); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ window, want string }{
		{"sneaky", `window "sneaky": topic replayctl.status: the fleet's status topic (every job's state and result); agents do not read the topics named replayctl.*`},
		{"offsets", `window "offsets": topic __consumer_offsets: one of Kafka's internal topics; agents do not read them`},
	} {
		text := `version: 1
name: from-a-window
targets:
  t: {url: "http://127.0.0.1:9"}
jobs:
  replay:
    source: {window: ` + c.window + `}
    sink: {http: {target: t}}
`
		s := f.submitReplay(t, "j-"+c.window, "load-1", text)
		if s.State != Failed || !strings.Contains(s.Reason, c.want) {
			t.Errorf("shard %s %q, want FAILED with %q", s.State, s.Reason, c.want)
		}
	}
}

// TestAgentKeepsToThePlanTopic: a replay's signed plan names the topic its
// window was on when submitted; a catalog entry rewritten since (anyone
// with write access to Kafka may write one) to point at another topic is
// refused, not read at the signed offsets.
func TestAgentKeepsToThePlanTopic(t *testing.T) {
	f := newIDFleet(t)
	f.replayAgent(t, "load-1", nil)
	cat, err := catalog.Open(f.ctx, f.bus.Plain(), f.bus.Admin(), catalog.DefaultTopic)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(f.ctx, catalog.Window{Name: "w", Topic: "someone-elses-topic", Partitions: map[int32]catalog.Range{0: {Start: 0, End: 10}}}, true); err != nil {
		t.Fatal(err)
	}
	text := "version: 1\nname: w\ntargets:\n  t: {url: \"http://127.0.0.1:9\"}\njobs:\n  replay:\n    source: {window: w}\n    sink: {http: {target: t}}\n"
	spec := replaySpec("j-plan", "load-1", text)
	spec.Replay = &ReplayPlan{Window: "w", Topic: "legit", StartAt: time.Now().Add(time.Second),
		Shards: []ShardPlan{{Index: 0, Ranges: map[int32]catalog.Range{0: {Start: 0, End: 10}}, Records: 10}}}
	f.publishSpec(t, spec)
	s := f.finalShard(t, "j-plan")
	want := `window "w": topic someone-elses-topic: the job's signed plan reads the topic legit (window w): its catalog entry changed since the job was submitted`
	if s.State != Failed || !strings.Contains(s.Reason, want) {
		t.Errorf("shard %s %q, want FAILED with %q", s.State, s.Reason, want)
	}
}

// TestReservedTopics: replayctl's own topics (the fleet's, the shard
// barrier's, the catalog's) and Kafka's internal ones are reserved: agents
// and serve's gor compat read none of them.
func TestReservedTopics(t *testing.T) {
	if ReservedTopicPrefix != "replayctl." {
		t.Errorf("reserved prefix %q", ReservedTopicPrefix)
	}
	for _, c := range []struct {
		topic    string
		reserved bool
	}{
		{AgentsTopic, true},
		{JobsTopic, true},
		{StatusTopic, true},
		{runbus.DefaultTopic, true},
		{catalog.DefaultTopic, true},
		{"replayctl.anything-later", true},
		{"__consumer_offsets", true},
		{"__transaction_state", true},
		{"traffic", false},
		{"replayctl", false},
		{"replayctl-http", false},
		{"Replayctl.jobs", false}, // another topic: names are case-sensitive
		{"app.replayctl.jobs", false},
		{"_schemas", false},
	} {
		if got := ReservedTopic(c.topic); got != c.reserved {
			t.Errorf("ReservedTopic(%q) = %v, want %v", c.topic, got, c.reserved)
		}
	}
}
