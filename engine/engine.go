// Package engine compiles a scenario into one pipeline per job and runs them:
// a source (capture, pcap, gor file, Kafka window) feeds filters, redaction
// and rewrites, pacing, and a sink (Kafka, HTTP targets, gor file, stdout);
// stats, assertions and reports close each job.
//
// Lifecycle: Compile validates everything that can be known without I/O
// (so `replayctl validate` is Compile without Run); Run starts the broker
// connection when a job needs it, runs the jobs in `needs` order, and stops
// at the first failing job.
package engine

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/redact"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/rewrite"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/stats"
)

// ErrInvalid is wrapped by errors that mean the scenario or the command line
// is invalid (exit code 2), as opposed to a runtime failure.
var ErrInvalid = errors.New("invalid")

// invalidError marks err as meaning ErrInvalid without changing its text.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf formats an error that wraps ErrInvalid.
func invalidf(format string, args ...any) error {
	return invalidError{fmt.Errorf(format, args...)}
}

// AssertionError reports the assertions that failed (exit code 3).
type AssertionError struct {
	Failed []string // "job: expression (detail)"
}

func (e *AssertionError) Error() string {
	return fmt.Sprintf("%d assertion(s) failed:\n  %s", len(e.Failed), strings.Join(e.Failed, "\n  "))
}

// Progress says when to draw a progress bar.
type Progress int

// Progress modes.
const (
	ProgressAuto Progress = iota // on a terminal only
	ProgressAlways
	ProgressNever
)

// ParseProgress parses auto, always or never.
func ParseProgress(s string) (Progress, error) {
	switch s {
	case "", "auto":
		return ProgressAuto, nil
	case "always":
		return ProgressAlways, nil
	case "never":
		return ProgressNever, nil
	}
	return 0, fmt.Errorf("--progress %q: want auto, always or never", s)
}

// Options are the run's settings from the command line.
type Options struct {
	// Jobs restricts the run to these jobs (their needs must already be met).
	Jobs []string
	// DataDir overrides the embedded broker's data directory.
	DataDir string
	// SpoolDir is where a kafka sink's spool goes (a directory per
	// recording under it) when the scenario names none: a fleet agent's
	// --work-dir. Empty: the embedded broker's data dir, or .replayctl/spool
	// in the working directory.
	SpoolDir string
	// Brokers overrides kafka.brokers.
	Brokers []string
	// Overwrite lets save-window replace a saved window of the same name.
	Overwrite bool
	// KeepHistory lets save-window replace a saved window of the same name
	// after saving it as NAME@<its save time>, so that it can still be
	// replayed. It implies Overwrite.
	KeepHistory bool
	// Out receives summaries and the plan; Err receives progress and logs.
	Out, Err io.Writer
	Logger   *slog.Logger
	Verbose  bool
	Progress Progress
	// Shard, when set, runs the plan's one replay job as a shard of a run.
	Shard *ShardOptions

	// Host names the capturing host on recorded messages (default: the OS
	// host name). A fleet agent passes its agent name.
	Host string
	// RecordingID, when set, is the recording ID record jobs write instead
	// of a fresh one (several hosts recording one recording share it).
	RecordingID string
	// NoSaveWindow makes record jobs skip save-window: the caller saves one
	// window for several hosts' records.
	NoSaveWindow bool
	// WindowRanges, when set, restricts window sources to these partitions
	// and offset ranges (a part of the window replayed by one process).
	WindowRanges map[int32]catalog.Range
	// DeniedTopic, when set, is asked about the topic of each window a job
	// reads, as resolved at run time (a saved window's topic comes from the
	// catalog, not the scenario): an error refuses the window. A caller
	// that runs others' scenarios keeps them off its own topics with it.
	DeniedTopic func(topic string) error
	// OnJobDone, when set, receives each job's outcome after its summary.
	OnJobDone func(JobOutcome)
	// OnProgress, when set, receives each running job's progress line
	// every second.
	OnProgress func(job, status string)
	// OnStart, when set, is called once per replay job when its first
	// request's send instant comes: its start-at, or the instant its
	// shards' barrier set (--shard), or at once without either. A replay
	// that sends nothing does not start.
	OnStart func(job string)
	// TimelineOrigin, with a replay job's start-at, is the capture time
	// its start-at stands for (zero: its first timed request's): runs that
	// replay parts of one window (the fleet's shards) pass the window's
	// start, so that they share one timeline, and a part whose first
	// requests have bogus capture times keeps its place on it.
	TimelineOrigin time.Time
	// Resume, when set, makes replay jobs skip the requests before its
	// position ("resume-skipped") while keeping the timeline they would
	// have had: a shard re-run elsewhere resumes where its first run was.
	// The source must emit the same requests in the same order (a window
	// does; a looping replay by duration does not).
	Resume *ResumePoint
	// DuplicatesBefore, with Resume, counts the requests sent again whose
	// scheduled instant is before it ("possible-duplicates"): the earlier
	// run may have sent them already.
	DuplicatesBefore time.Time
	// OnResumePoint, when set, receives every second (with OnProgress) the
	// point before which every request of a replay was answered (what
	// Resume takes).
	OnResumePoint func(ResumePoint)
	// Kafka, when set, replaces the scenario's Kafka connection (brokers,
	// TLS, SASL): a fleet agent uses its own.
	Kafka *kafkaio.Config
}

// saveMode is how save-window treats a taken name.
func (o Options) saveMode() catalog.SaveMode {
	switch {
	case o.KeepHistory:
		return catalog.KeepHistory
	case o.Overwrite:
		return catalog.Overwrite
	}
	return catalog.Create
}

// JobOutcome is what a job did, for callers that publish results.
type JobOutcome struct {
	Job    string
	Replay bool
	// Failed is set when the job returned an error; Interrupted when its
	// context was cancelled.
	Failed, Interrupted bool
	// FailedAssertions lists the job's assertions that were false.
	FailedAssertions []string
	// Record jobs.
	Requests, Responses, Written, NotWritten int64
	// Lost is what a record job could not record, by cause and "total"
	// (catalog.LostTotal), each in its unit (catalog.LossUnit); nil when
	// nothing was lost.
	Lost                      map[string]int64
	Hosts, Destinations       []string
	FirstCapture, LastCapture time.Time
	// Replay jobs.
	Summary stats.Summary
	// SourceGaps says what the replayed window lacks of its recording (a
	// window saved partial, records gone by retention), NotSent which of
	// its requests were not sent and why, a line each (the JSON report's
	// source_gaps and not_sent).
	SourceGaps, NotSent []string
	Window              *catalog.Window
	Counters            map[string]int64
	Elapsed             time.Duration
	// State is the replay's lossless stats (histograms bucket by bucket):
	// States of shards merge exactly (report.Merge).
	State *stats.State
	// Diff is the replay's compare: summary (nil without compare:); the
	// diffs of shards add up (report.Merge), and diff.* assertions of a
	// merged summary read them.
	Diff *compare.DiffSummary
	// Protocols and GRPC are the replay's results by protocol and by gRPC
	// method, each with its lossless state: the shards' add up
	// (report.Merge), and protocols[…] and grpc[…] assertions of a merged
	// summary read them.
	Protocols, GRPC map[string]report.Breakdown
	// Asserts are the job's assert expressions, for a caller that
	// evaluates them on a merged summary: with no secret's value in them
	// (scenario.Expr.Published). AssertsShown are the same as written
	// where a secret went in (scenario.Expr.Shown), for display.
	Asserts, AssertsShown []string
	// OnLoss is the job's on-loss ("fail" or "warn"), for a caller that
	// finds a loss the run could not see (a merge missing a part).
	OnLoss string
}

func (o Options) withDefaults() Options {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Err == nil {
		o.Err = os.Stderr
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(o.Err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return o
}

// Plan is a compiled scenario, ready to run.
type Plan struct {
	scn  *scenario.Scenario
	opts Options
	jobs []*jobPlan
}

// jobPlan is one compiled job.
type jobPlan struct {
	job      *scenario.Job
	replay   bool // the sink sends HTTP requests
	redactor *redact.Redactor
	rewrite  []rewrite.Action
}

// Compile checks what the scenario loader cannot (safety rules, redaction
// settings, rewrite paths, the --job selection) and returns the plan. Errors
// are scenario.Diagnostics with positions, or wrap ErrInvalid.
func Compile(s *scenario.Scenario, opts Options) (*Plan, error) {
	opts = opts.withDefaults()
	jobs, err := scenario.JobOrder(s, opts.Jobs)
	if err != nil {
		return nil, invalidError{err}
	}
	p := &Plan{scn: s, opts: opts}
	var diags scenario.Diagnostics
	for _, j := range jobs {
		jp, ds := compileJob(s, j)
		diags = append(diags, ds...)
		p.jobs = append(p.jobs, jp)
	}
	if len(diags) > 0 {
		return nil, diags
	}
	if opts.Shard != nil {
		if err := checkShard(p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func compileJob(s *scenario.Scenario, j *scenario.Job) (*jobPlan, scenario.Diagnostics) {
	jp := &jobPlan{job: j, replay: j.Sink.Kind == scenario.SinkHTTP}
	var diags scenario.Diagnostics
	add := func(pos scenario.Pos, format string, args ...any) {
		diags = append(diags, scenario.Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...)})
	}
	if jp.replay {
		for _, t := range j.Sink.HTTP.Targets {
			if t.Builtin == "" && s.Safety.Denies(t.URL.Hostname()) {
				add(t.Pos, "target %q (%s) is refused by safety.deny-targets", t.Name, t.URL.Host)
			}
		}
		if h := j.Sink.HTTP; h.MaxConnectionsSet && j.Speed.Max && j.Rate.PerSecond == 0 {
			add(j.Sink.Pos, "job %q: max-connections caps the open model of paced replays; speed: max uses the closed model (workers)", j.Name)
		}
		if h := j.Sink.HTTP; h.MinConnections > 0 && j.Speed.Max && j.Rate.PerSecond == 0 {
			add(j.Sink.Pos, "job %q: min-connections opens the open model's connections ahead for a paced replay; speed: max uses the closed model (workers)", j.Name)
		}
		if c := j.Compare; c != nil && c.Noise != nil && c.Noise.Builtin == "" && s.Safety.Denies(c.Noise.URL.Hostname()) {
			add(c.Noise.Pos, "noise target %q (%s) is refused by safety.deny-targets", c.Noise.Name, c.Noise.URL.Host)
		}
	}
	if !jp.replay {
		// Pacing, compare and report.html on such a job are refused by
		// the loader (scenario.checkReplayOnly), at their keys.
		r, err := redact.New(redactConfig(j.Redact))
		if err != nil {
			add(j.Pos, "job %q: redact: %v", j.Name, err)
		}
		jp.redactor = r
	}
	acts, ds := compileRewrites(j)
	jp.rewrite = acts
	diags = append(diags, ds...)
	return jp, diags
}

func redactConfig(r scenario.Redact) redact.Config {
	return redact.Config{
		Headers:  r.Headers,
		Defaults: r.Defaults,
		Query:    r.Query,
		Form:     r.Form,
		JSON:     r.JSON,
		Patterns: r.PatternsRaw,
		Mode:     r.Mode,
		Mask:     r.Mask,
		Key:      []byte(r.Key),
	}
}

// durationString prints a duration without trailing zero units ("2m", not "2m0s").
func durationString(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
