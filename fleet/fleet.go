// Package fleet runs replayctl jobs on many hosts through Kafka: agents open
// no port, they heartbeat into a compacted topic (replayctl.agents), take
// signed job specs from another (replayctl.jobs) and publish state, progress
// and results to a third (replayctl.status). Any process that reads the
// three topics knows the whole fleet, as Kafka Connect workers do.
//
// Topics (all compacted, one partition, created when missing):
//
//	replayctl.agents  key agent name          value Heartbeat
//	replayctl.jobs    key "spec/<job>"         value Envelope (signed Spec)
//	                  key "cancel/<job>"       value Envelope (signed Cancel)
//	replayctl.status  key "job/<job>"          value Status (the job as a whole)
//	                  key "job/<job>/agent/<a>" value Status (a record job on one agent)
//	                  key "job/<job>/shard/<i>" value Status (a replay shard)
//	                  key "job/<job>/refused/<a>/<offset>" value Status (a refused spec)
//	                  key "cmd/<command>"      value Status (a command's outcome)
//
// engine knows nothing of this package.
package fleet

import (
	"fmt"

	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/stats"
	"maps"
	"slices"
	"strings"
	"time"
)

// Default topic names.
const (
	AgentsTopic = "replayctl.agents"
	JobsTopic   = "replayctl.jobs"
	StatusTopic = "replayctl.status"
)

// HeartbeatInterval is how often agents heartbeat; an agent that misses
// LostAfter heartbeats is lost.
const (
	HeartbeatInterval = 2 * time.Second
	LostAfterBeats    = 3
	// AnswerTimeout is how long a submitter waits for an agent to take a job.
	AnswerTimeout = 10 * time.Second
)

// LostAfter is how long without a heartbeat makes an agent lost.
const LostAfter = LostAfterBeats * HeartbeatInterval

// State is a job's or a shard's state.
type State string

// States, in order; SUCCEEDED to REFUSED are final.
const (
	Pending      State = "PENDING"
	Assigned     State = "ASSIGNED"
	Queued       State = "QUEUED" // taken, waiting for a free run on its agent (--max-concurrent)
	Armed        State = "ARMED"
	Running      State = "RUNNING"
	Succeeded    State = "SUCCEEDED"
	AssertFailed State = "ASSERT_FAILED"
	Failed       State = "FAILED"
	Cancelled    State = "CANCELLED"
	Refused      State = "REFUSED" // a spec an agent would not run (never ran)
	Lost         State = "LOST"    // a shard whose agent stopped heartbeating (re-run elsewhere)
)

// States returns every state a job or a part of one may report, in the
// order above: what lists and filters of states offer.
func States() []State {
	return []State{Pending, Assigned, Queued, Armed, Running, Succeeded, AssertFailed, Failed, Cancelled, Refused, Lost}
}

// Final reports whether s is a state nothing follows.
func (s State) Final() bool {
	switch s {
	case Succeeded, AssertFailed, Failed, Cancelled, Refused:
		return true
	}
	return false
}

// Labels are an agent's key=value labels.
type Labels map[string]string

// ParseLabels reads "role=web,zone=a".
func ParseLabels(s string) (Labels, error) {
	l := Labels{}
	if strings.TrimSpace(s) == "" {
		return l, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("label %q: want key=value", kv)
		}
		l[k] = v
	}
	return l, nil
}

// String prints labels sorted: "role=web,zone=a".
func (l Labels) String() string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// Selector picks agents by labels: every key must have the value.
type Selector = Labels

// Matches reports whether labels satisfy the selector.
func (l Labels) Matches(sel Selector) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}

// Heartbeat is an agent's record in the agents topic.
type Heartbeat struct {
	Name    string    `json:"name"`
	Labels  Labels    `json:"labels"`
	Version string    `json:"version"`
	Allow   []string  `json:"allow"`
	Addrs   []string  `json:"addrs"`
	At      time.Time `json:"at"`
	// ClockOffset is the broker's clock minus the agent's, measured from the
	// broker's timestamp of the agent's previous heartbeat as read back
	// (the agents topic is LogAppendTime).
	ClockOffset Duration `json:"clock-offset"`
	// ClockUnmeasured says the agent could not measure ClockOffset (0
	// then): the heartbeats it read back carry their producer's timestamp,
	// its own clock, not the broker's (a broker that does not stamp
	// LogAppendTime, as the embedded one, or an agents topic created
	// without it), or none was read back yet. False from an agent older
	// than the field, whose ClockOffset may be such a measure.
	ClockUnmeasured bool   `json:"clock-unmeasured,omitempty"`
	Job             string `json:"job,omitempty"` // running job ID
	Shard           int    `json:"shard,omitempty"`
	// Running and Queued count the agent's jobs or shards holding one of
	// its MaxConcurrent slots and those QUEUED for one. MaxConcurrent is
	// the agent's --max-concurrent; 0 in a heartbeat of an agent older
	// than these fields (which then say nothing).
	Running       int `json:"running,omitempty"`
	Queued        int `json:"queued,omitempty"`
	MaxConcurrent int `json:"max-concurrent,omitempty"`
	// Runs are all the agent's runs, going or QUEUED (Running and Queued
	// count them), by job and shard; Job and Shard name one of them, for
	// readers older than this field.
	Runs []Run `json:"runs,omitempty"`
	// MaxSpecTTL is the agent's --max-spec-ttl: a submitter refuses a
	// longer TTL for a job that names it (0 from an older agent).
	MaxSpecTTL Duration `json:"max-spec-ttl,omitempty"`
	Stopped    bool     `json:"stopped,omitempty"` // the agent stopped cleanly
	// Instance is the random ID of the agent's process: two processes
	// given one name have two.
	Instance string `json:"instance,omitempty"`
}

// ClockOffsetWarn is how far off the broker's an agent's clock may be
// before it is flagged (agents ls, the agent's log): half the ClockSkew
// agents allow, so that a submitter and an agent whose clocks are both
// within it of the broker's are within ClockSkew of each other, and no
// spec is refused as issued in the future for their clocks alone.
const ClockOffsetWarn = ClockSkew / 2

// ClockNote says what an agent whose clock is off the broker's by offset
// (the broker's minus the agent's) does to specs, or "" when offset is
// within ClockOffsetWarn. An agent checks a spec's times against its own
// clock (checkLifetime): the broker's is only a reference to compare
// clocks with.
func ClockNote(offset time.Duration) string {
	switch {
	case offset > ClockOffsetWarn:
		return fmt.Sprintf("its clock is %s behind the broker's: a spec from a submitter on the broker's time looks issued %s in its future (refused as issued in the future beyond %s), and it takes a spec until %s after its expiry",
			offset, offset, ClockSkew, offset)
	case offset < -ClockOffsetWarn:
		return fmt.Sprintf("its clock is %s ahead of the broker's: specs expire %s early on it (one submitted with a shorter --ttl is refused as expired)",
			-offset, -offset)
	}
	return ""
}

// Run is one of an agent's runs, as its heartbeat names it.
type Run struct {
	Job    string `json:"job"`
	Shard  *int   `json:"shard,omitempty"`  // a replay's shard; none for a record job
	Queued bool   `json:"queued,omitempty"` // waiting for one of its MaxConcurrent slots
}

// Allows reports whether the agent may run kind.
func (h Heartbeat) Allows(kind string) bool { return slices.Contains(h.Allow, kind) }

// Alive reports whether the agent heartbeated recently at now.
func (h Heartbeat) Alive(now time.Time) bool {
	return !h.Stopped && now.Sub(h.At) < LostAfter
}

// Status is a record of the status topic.
type Status struct {
	JobID   string    `json:"job-id"`
	Kind    string    `json:"kind,omitempty"`
	Agent   string    `json:"agent,omitempty"`
	Shard   *int      `json:"shard,omitempty"`
	State   State     `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	Agents  []string  `json:"agents,omitempty"` // job records: the agents assigned
	Attempt int       `json:"attempt,omitempty"`
	// SpecOffset is the jobs-topic offset of the spec an agent took, so a
	// restarted agent knows that spec from a replay of it.
	SpecOffset int64 `json:"spec-offset,omitempty"`
	// Unverified marks the refusal of a spec whose signature did not
	// verify: anyone may publish one, so it says nothing of the job whose
	// ID it names (it does not make the job's real spec a replay).
	Unverified bool `json:"unverified,omitempty"`
	// GaveUp marks the status a submitter wrote for an agent that did not
	// answer a record job in time: the others went on without it, and it
	// must not run the job when it wakes.
	GaveUp    bool      `json:"gave-up,omitempty"`
	Progress  *Progress `json:"progress,omitempty"`
	Result    *Result   `json:"result,omitempty"`
	Log       string    `json:"log,omitempty"` // the run's output (vars' values masked)
	CommandID string    `json:"command-id,omitempty"`
}

// Progress is how far an agent is.
type Progress struct {
	Line  string `json:"line,omitempty"` // the run's progress line
	Done  int64  `json:"done"`           // requests recorded or sent
	Total int64  `json:"total"`          // replays: requests in the shard
	// Resume is where a re-run of a replay shard starts, on the same
	// timeline: every request before it was answered.
	Resume *Resume `json:"resume,omitempty"`
}

// Resume is a point in a replay shard's requests, in the order its window
// emits them (fixed for a window and its reorder settings, named by Order;
// capture-time order as far as the reorder buffer could restore it).
type Resume struct {
	// At is the index (from 0) of the first request not known to be
	// answered: the ones before it are not sent again.
	At int64 `json:"at"`
	// Time is that request's capture time (Unix ns) when it was known: for
	// people, not for resuming.
	Time int64 `json:"time,omitempty"`
	// Order is the source's order At counts in (engine.ResumePoint.Order):
	// a re-run whose source has another order starts from the first
	// request instead.
	Order string `json:"order,omitempty"`
}

// resumeOf returns where a re-run of a shard whose last progress was p
// starts: from its resume point, or from the start when none was published.
func resumeOf(p *Progress) *Resume {
	if p == nil || p.Resume == nil {
		return &Resume{}
	}
	return p.Resume
}

// String says where a re-run starts, for a status reason or a log.
func (r *Resume) String() string {
	if r == nil || r.At == 0 {
		return "from the shard's first request"
	}
	answered := fmt.Sprintf("the %d before it were answered", r.At)
	if r.At == 1 {
		answered = "the one before it was answered"
	}
	if r.Time != 0 {
		return fmt.Sprintf("at request %d, captured %s (%s)", r.At+1, time.Unix(0, r.Time).UTC().Format(time.RFC3339Nano), answered)
	}
	return fmt.Sprintf("at request %d (%s)", r.At+1, answered)
}

// Result is what a finished run did.
type Result struct {
	// Record jobs.
	Requests   int64 `json:"requests,omitempty"`
	Responses  int64 `json:"responses,omitempty"`
	Written    int64 `json:"written,omitempty"`
	NotWritten int64 `json:"not-written,omitempty"`
	// Lost is what the recording could not record, by cause and "total"
	// (catalog.LostTotal), each in its unit (catalog.LossUnit): a job's is
	// its agents' added up, and its window is saved partial with it. Nil
	// when nothing was lost.
	Lost map[string]int64 `json:"lost,omitempty"`
	// Replay jobs.
	Sent         int64            `json:"sent,omitempty"`
	OK           int64            `json:"ok,omitempty"`
	Errors       int64            `json:"errors,omitempty"`
	Status       map[int]int64    `json:"status,omitempty"`
	ErrorClasses map[string]int64 `json:"error-classes,omitempty"`
	LatencyP50   Duration         `json:"latency-p50,omitempty"`
	LatencyP90   Duration         `json:"latency-p90,omitempty"`
	LatencyP99   Duration         `json:"latency-p99,omitempty"`
	LatencyMax   Duration         `json:"latency-max,omitempty"`
	LatenessMax  Duration         `json:"lateness-max,omitempty"`
	// Histogram is the latency distribution in 1-2-5 buckets (for display).
	Histogram []stats.LatencyBucket `json:"histogram,omitempty"`
	// SourceGaps says what the replayed window lacks of its recording (a
	// window saved partial: its losses; records gone by retention), NotSent
	// which of its requests were not sent and why, a line each, as a run's
	// JSON report's source_gaps and not_sent; a job's are its shards' (a
	// line only some shards have names them).
	SourceGaps []string `json:"source-gaps,omitempty"`
	NotSent    []string `json:"not-sent,omitempty"`
	// Partial says what a replay job's merged totals miss, a line per
	// shard: the requests a lost run of the shard had answered (its agent
	// killed or restarted), which the re-run did not send again
	// (resume-skipped) and whose results were lost with that run.
	Partial []string `json:"partial,omitempty"`
	// Timeline, on a replay shard's result and its job's, says the job's
	// shards shared no timeline (NoTimeline): its window has no capture
	// time that is not bogus.
	Timeline string `json:"timeline,omitempty"`
	// OnLoss is the job's on-loss as the run read it ("warn" accepts
	// partial totals; "fail", the default, fails the job on them).
	OnLoss string `json:"on-loss,omitempty"`
	// State is the run's lossless stats (histograms bucket by bucket): a
	// job's result is its shards' States merged exactly (report.Merge), so
	// its percentiles are those of one run that sent every request.
	State *stats.State `json:"state,omitempty"`
	// Diff is a replay's compare: summary, without its examples (the
	// bodies and heads of mismatching requests stay in the run's own
	// report, off the status topic): a job's is its shards' added up
	// (report.Merge), which its diff.* assertions read.
	Diff *compare.DiffSummary `json:"diff,omitempty"`
	// Protocols and GRPC are a replay's results by protocol and by gRPC
	// method, each part with its lossless state: a job's are its shards'
	// added up (report.Merge), which its protocols[…] and grpc[…]
	// assertions read.
	Protocols map[string]report.Breakdown `json:"protocols,omitempty"`
	GRPC      map[string]report.Breakdown `json:"grpc,omitempty"`
	// Asserts are the job's assert expressions; a job's assertions are
	// evaluated on the merged summary, never on a shard's own. They hold
	// no secret's value: an assertion that read one (a --var with a
	// secret's name) has the parts that read it evaluated by the run, to
	// true or false (scenario.Expr.Published); AssertsShown then has the
	// assertions as written (${API_TOKEN}), for display (Shown).
	Asserts      []string  `json:"asserts,omitempty"`
	AssertsShown []string  `json:"asserts-shown,omitempty"`
	Failed       []string  `json:"failed-assertions,omitempty"`
	FirstCapture time.Time `json:"first-capture,omitzero"`
	LastCapture  time.Time `json:"last-capture,omitzero"`
	Destinations []string  `json:"destinations,omitempty"`
	// Both.
	Counters map[string]int64 `json:"counters,omitempty"`
	// Job records of record jobs: the window saved for every host.
	Window     string           `json:"window,omitempty"`
	HostCounts map[string]int64 `json:"host-requests,omitempty"`
}

// Shown is the result's assertions as displays print them: as written
// where a secret went in (AssertsShown), else as evaluated (Asserts).
func (r *Result) Shown() []string {
	if r == nil {
		return nil
	}
	if len(r.AssertsShown) == len(r.Asserts) {
		return r.AssertsShown
	}
	return r.Asserts
}

// Key names of the status topic.
func jobKey(id string) string              { return "job/" + id }
func agentKey(id, agent string) string     { return "job/" + id + "/agent/" + agent }
func shardKey(id string, shard int) string { return fmt.Sprintf("job/%s/shard/%d", id, shard) }
func refusedKey(id, agent string, off int64) string {
	return fmt.Sprintf("job/%s/refused/%s/%d", id, agent, off)
}
func cmdKey(id string) string { return "cmd/" + id }
