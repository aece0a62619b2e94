package serve

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio"
)

// Event is one record of the status topic about a job, as the events
// stream sends it: every state change and every progress report, in topic
// order (the offset is the event ID).
type Event struct {
	Offset   int64         `json:"offset"`
	Type     string        `json:"type"` // state or progress
	Key      string        `json:"key"`
	Part     string        `json:"part"` // "job", "shard/0", "agent/web-1", "refused/…", "shard/0/lost/0"
	Agent    string        `json:"agent,omitempty"`
	Shard    *int          `json:"shard,omitempty"`
	State    fleet.State   `json:"state"`
	Reason   string        `json:"reason,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	At       time.Time     `json:"at"`
	Progress *PartProgress `json:"progress,omitempty"`
	Result   *fleet.Result `json:"result,omitempty"`
	// LostText is what the result says the recording lost (lostText), as
	// GET /v1/jobs/{id} gives it for the job and each part.
	LostText string `json:"lost_text,omitempty"`
	// ResumeSkipped is how many requests a resumed shard did not send
	// again (resumeSkipped), as GET /v1/jobs/{id} gives it for each part;
	// a part's only (the job's merged counters add its shards' up, which
	// its result's partial lines say shard by shard).
	ResumeSkipped int64 `json:"resume_skipped,omitempty"`
	// PossibleDuplicates is how many requests a resumed shard sent that
	// its lost run may have sent too (possibleDuplicates), a part's only.
	PossibleDuplicates int64 `json:"possible_duplicates,omitempty"`
	// JobState is the job's state once this record is read, as GET
	// /v1/jobs/{id} gives it (liveState): the events stream sets it.
	JobState fleet.State `json:"job_state,omitempty"`
}

// PartProgress is a run's progress with its figures read out.
type PartProgress struct {
	Line  string `json:"line,omitempty"`
	Done  int64  `json:"done"`
	Total int64  `json:"total"` // 0: unknown
	// Estimated marks a shard's total taken as its share of the window.
	Estimated bool `json:"estimated,omitempty"`
}

var (
	doneOfTotal = regexp.MustCompile(`(\d+)/(\d+)`)
	leadingNum  = regexp.MustCompile(`^\s*(\d+) (sent|requests)`)
)

// progressOf reads done and total from a progress record (the agents fill
// Done/Total where they know them, else the figures are in the line).
func progressOf(p *fleet.Progress) *PartProgress {
	if p == nil {
		return nil
	}
	out := &PartProgress{Line: p.Line, Done: p.Done, Total: p.Total}
	if out.Done == 0 && out.Total == 0 {
		if m := doneOfTotal.FindStringSubmatch(p.Line); m != nil {
			out.Done, _ = strconv.ParseInt(m[1], 10, 64)
			out.Total, _ = strconv.ParseInt(m[2], 10, 64)
		} else if m := leadingNum.FindStringSubmatch(p.Line); m != nil {
			out.Done, _ = strconv.ParseInt(m[1], 10, 64)
		}
	}
	return out
}

// statusLog reads the whole status topic in order and keeps, per job, every
// record as an Event (the fleet's Bus keeps only the latest per key, which
// loses the states a job passed through between two reads).
type statusLog struct {
	cl  *kgo.Client
	log *slog.Logger

	mu      sync.Mutex
	changed chan struct{}
	jobs    map[string][]Event
	last    map[string]fleet.State // by key
	pos     int64

	cancel context.CancelFunc
	done   chan struct{}
}

func openStatusLog(cfg kafkaio.Config, log *slog.Logger) (*statusLog, error) {
	opts, err := cfg.Opts()
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts,
		kgo.ConsumeTopics(fleet.StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
	)...)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &statusLog{cl: cl, log: log, changed: make(chan struct{}), jobs: map[string][]Event{}, last: map[string]fleet.State{}, cancel: cancel, done: make(chan struct{})}
	go l.read(ctx)
	return l, nil
}

func (l *statusLog) Close() {
	l.cancel()
	<-l.done
	l.cl.Close()
}

func (l *statusLog) read(ctx context.Context) {
	defer close(l.done)
	for {
		fs := l.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.Canceled) {
				l.log.Warn("serve: reading the status topic", "err", e.Err)
			}
		}
		l.mu.Lock()
		fs.EachRecord(l.apply)
		ch := l.changed
		l.changed = make(chan struct{})
		l.mu.Unlock()
		close(ch)
	}
}

// apply adds one record; l.mu is held.
func (l *statusLog) apply(r *kgo.Record) {
	l.pos = r.Offset + 1
	key := string(r.Key)
	if !strings.HasPrefix(key, "job/") || r.Value == nil {
		return
	}
	var s fleet.Status
	if err := json.Unmarshal(r.Value, &s); err != nil {
		return
	}
	rest := strings.TrimPrefix(key, "job/")
	id, part, _ := strings.Cut(rest, "/")
	if part == "" {
		part = "job"
	}
	typ := "progress"
	if prev, ok := l.last[key]; !ok || prev != s.State {
		typ = "state"
	}
	l.last[key] = s.State
	e := Event{
		Offset: r.Offset, Type: typ, Key: key, Part: part, Agent: s.Agent, Shard: s.Shard, State: s.State,
		Reason: s.Reason, Attempt: s.Attempt, At: s.At, Progress: progressOf(s.Progress), Result: s.Result,
		LostText: lostText(s.Result),
	}
	if part != "job" {
		e.ResumeSkipped = resumeSkipped(s.Result)
		e.PossibleDuplicates = possibleDuplicates(s.Result)
	}
	l.jobs[id] = append(l.jobs[id], e)
	if part == "job" && s.State.Final() {
		// A finished job keeps its state changes; its progress reports
		// are history nobody streams live any more.
		evs := l.jobs[id][:0]
		for _, e := range l.jobs[id] {
			if e.Type == "state" {
				evs = append(evs, e)
			}
		}
		l.jobs[id] = slices.Clip(evs)
	}
}

// since returns a job's events after offset after, and a channel closed
// when more arrive.
func (l *statusLog) since(id string, after int64) ([]Event, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Event
	for _, e := range l.jobs[id] {
		if e.Offset > after {
			out = append(out, e)
		}
	}
	return out, l.changed
}
