package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/engine/echo"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/sinks/h2sink"
	"github.com/replayctl/replayctl/stats"
)

// errStop ends a source early when a stop condition is met; it is not a failure.
var errStop = errors.New("stop condition reached")

// ErrInterrupted is returned when the run was stopped by a signal: the job
// that was running drained, flushed and reported; later jobs did not run.
var ErrInterrupted = errors.New("interrupted")

// runner holds what the jobs of one run share.
type runner struct {
	plan  *Plan
	log   *slog.Logger
	kafka *lazyKafka
	echos map[string]*echo.Server // builtin:echo targets by name
	shard *shardRun               // the sharded job's state; nil when not sharded
}

// jobResult is what a job did, for the summary, the report and the asserts.
type jobResult struct {
	job         *scenario.Job
	replay      bool
	summary     stats.Summary // replay jobs
	counters    map[string]int64
	window      *catalog.Window      // read (replay) or saved (record)
	keptAs      string               // record jobs: where --keep-history kept the window replaced
	windowNotes []string             // replay jobs: what the window lacks of its recording
	notSent     []string             // replay jobs: requests of the window not sent, and why
	captureLost map[string]int64     // replay jobs from a pcap or a capture: what it lost, by cause
	diff        *compare.DiffSummary // replay jobs with compare
	state       *stats.State         // replay jobs: the lossless stats
	shard       *shard.Info          // sharded replay jobs
	errText     string               // why the job failed
	started     time.Time
	elapsed     time.Duration
	interrupted bool
	atLimit     bool // record jobs: stopped at stop.requests
	// stoppedBy says which stop condition ended a replay before the end
	// of its input ("stop.requests 50", "stop.after 2s"); "" when none.
	stoppedBy string
	failed    bool // the job returned an error
	// record jobs
	requests, responses, written, notWritten int64
	sinkDesc                                 string
	lost                                     map[string]int64 // by cause, and "total"
	// replay jobs: results by protocol and by gRPC method (breakdown.go)
	protocols      map[string]stats.Summary
	protocolStates map[string]stats.State
	grpc           map[string]h2sink.MethodStats
	hosts, dests   []string
	first, last    int64 // capture times (ns)
}

// outcome is the exported view of a job's result.
func (res *jobResult) outcome(failedAsserts []string) JobOutcome {
	o := JobOutcome{
		Job: res.job.Name, Replay: res.replay, Failed: res.failed, Interrupted: res.interrupted,
		FailedAssertions: failedAsserts,
		Requests:         res.requests, Responses: res.responses, Written: res.written, NotWritten: res.notWritten,
		Hosts: res.hosts, Destinations: res.dests,
		Summary: res.summary, Window: res.window, Counters: res.counters, Elapsed: res.elapsed,
		State: res.state, SourceGaps: res.windowNotes, NotSent: res.notSent, OnLoss: res.job.OnLoss,
		Diff: res.diff,
	}
	o.Protocols, o.GRPC = breakdowns(res)
	if res.lost[catalog.LostTotal] > 0 {
		o.Lost = maps.Clone(res.lost)
	}
	for _, a := range res.job.Assert {
		o.Asserts = append(o.Asserts, publishedExpr(a))
		o.AssertsShown = append(o.AssertsShown, a.Shown())
	}
	if res.first != 0 {
		o.FirstCapture, o.LastCapture = time.Unix(0, res.first).UTC(), time.Unix(0, res.last).UTC()
	}
	return o
}

// Run runs the plan's jobs in order. It stops at the first job that fails.
// A failed assertion does not stop later jobs; Run then returns an
// *AssertionError after all jobs ran.
func (p *Plan) Run(ctx context.Context) error {
	if err := p.checkEnvRefs(); err != nil {
		return err
	}
	if err := recheckReads(p.scn); err != nil {
		return err
	}
	r := &runner{
		plan:  p,
		log:   p.opts.Logger,
		kafka: &lazyKafka{ks: kafkaSettings(p.scn.Kafka, p.opts), log: p.opts.Logger},
		echos: map[string]*echo.Server{},
		shard: newShardRun(p.opts.Shard),
	}
	defer r.close()
	var failed []string
	for i, jp := range p.jobs {
		res, err := r.runJob(ctx, jp)
		if res != nil && ctx.Err() != nil {
			// A signal after the source had ended (while the job waited
			// for responses or acknowledgements) interrupts it too: later
			// jobs must not run, and the run exits 130.
			res.interrupted = true
		}
		if res != nil {
			var loss *LossError
			res.failed = err != nil && !errors.As(err, &loss)
			if err != nil && !(res.replay && loss != nil) {
				// A replay that dropped requests on errors did its work:
				// its not_sent lines say what it did not send. As its
				// report's error, report merge would take it for a shard
				// that failed (the merge incomplete, its asserts unjudged).
				res.errText = err.Error()
			}
			if res.failed && res.lost["total"] > 0 && jp.job.OnLoss != "warn" {
				// A record job that failed (its window not saved, say)
				// after losing messages says both, and the loss keeps its
				// exit code 1 even when Ctrl-C ended its live capture.
				err = errors.Join(err, &LossError{Job: jp.job.Name, Lost: res.lost})
			}
			printSummary(p.opts.Out, res)
			if werr := writeReports(p.opts.Out, p.scn, res); werr != nil {
				return werr
			}
			if err != nil || res.interrupted {
				// A shard that never armed tells the others first: a
				// result read before the run starts means the run ID
				// already ran (shard.Barrier), not why this one gave up.
				r.abortShard(ctx, cmp.Or(err, ErrInterrupted))
			}
			if perr := r.publishShard(ctx, p.scn, res); perr != nil && err == nil {
				err = perr
			}
			bad := checkAssertions(p.opts.Out, res)
			failed = append(failed, bad...)
			if p.opts.OnJobDone != nil {
				p.opts.OnJobDone(res.outcome(bad))
			}
		}
		if err != nil || (res != nil && res.interrupted) {
			r.abortShard(ctx, cmp.Or(err, ErrInterrupted))
		}
		if err != nil {
			return fmt.Errorf("job %s: %w%s", jp.job.Name, err, notRun(p.jobs[i+1:], failed))
		}
		if res != nil && res.interrupted {
			if jp.job.Source.Kind == scenario.SourceCapture && i == len(p.jobs)-1 {
				// A live capture has no end of its own: Ctrl-C is how it
				// ends, and the recording it made is complete.
				break
			}
			return fmt.Errorf("job %s: %w (it drained and reported what it did; later jobs did not run)", jp.job.Name, ErrInterrupted)
		}
	}
	if len(failed) > 0 {
		return &AssertionError{Failed: failed}
	}
	return nil
}

// notRun tells, after a job failed, the jobs that did not run then and
// the assertions that had failed before it (its error is what the run
// ends with; they were said in the summaries above it only).
func notRun(rest []*jobPlan, failed []string) string {
	var b strings.Builder
	if len(rest) > 0 {
		names := make([]string, len(rest))
		for i, jp := range rest {
			names[i] = jp.job.Name
		}
		fmt.Fprintf(&b, "; not run after it: %s", strings.Join(names, ", "))
	}
	if len(failed) > 0 {
		fmt.Fprintf(&b, "; assertions that failed before it: %s", strings.Join(failed, "; "))
	}
	return b.String()
}

func (r *runner) close() {
	for _, e := range r.echos {
		_ = e.Close()
	}
	r.shard.close()
	r.kafka.close()
}

func (r *runner) runJob(ctx context.Context, jp *jobPlan) (*jobResult, error) {
	if jp.replay {
		return r.runReplay(ctx, jp)
	}
	return r.runRecord(ctx, jp)
}

// jobContext applies stop.after to ctx.
func jobContext(ctx context.Context, j *scenario.Job) (context.Context, context.CancelFunc) {
	if j.Stop.After > 0 {
		return context.WithTimeout(ctx, j.Stop.After)
	}
	return context.WithCancel(ctx)
}

// sourceEnded sorts a source's return: nil when it ended normally (end of
// input, stop condition, stop.after), interrupted when the parent context
// was cancelled, or the error.
func sourceEnded(parent context.Context, err error) (interrupted bool, _ error) {
	switch {
	case err == nil, errors.Is(err, errStop):
		return false, nil
	case parent.Err() != nil:
		return true, nil
	case errors.Is(err, context.DeadlineExceeded):
		return false, nil // stop.after
	}
	return false, err
}

// drainContext bounds the final flush of a job, even after an interrupt.
func drainContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// checkEnvRefs refuses a run whose jobs send a value made with env("NAME")
// of a variable that is not set: it would read "" (an Authorization header
// of "Bearer ", say) without a word. A variable set to "" is accepted, and
// conditions (filter, if) may read an unset one.
func (p *Plan) checkEnvRefs() error {
	runs := map[string]bool{}
	for _, jp := range p.jobs {
		runs[jp.job.Name] = true
	}
	var missing []string
	for _, r := range p.scn.EnvRefs {
		if _, ok := p.scn.LookupEnv(r.Name); !ok && r.Value && (r.Job == "" || runs[r.Job]) {
			missing = append(missing, fmt.Sprintf("%s: env(%q): %s is not set", r.Pos, r.Name, r.Name))
		}
	}
	if len(missing) > 0 {
		return invalidf("%s (env() would read it as \"\"; set it, to an empty value if that is what is meant)", strings.Join(missing, "; "))
	}
	return nil
}

// recheckReads checks again, for a restricted scenario, the files it reads
// outside its jobs' sources (CA files, client certificates, descriptor
// sets): a symbolic link made since Load that leads out of its directory is
// refused before anything runs. (The sources open their files through an
// os.Root; these are read by libraries that take a path.)
func recheckReads(s *scenario.Scenario) error {
	var paths []scenario.Path
	if t := s.Kafka.TLS; t != nil {
		paths = append(paths, t.CAFile, t.CertFile, t.KeyFile)
	}
	for _, t := range s.Targets {
		paths = append(paths, t.CAFile)
	}
	for _, j := range s.Jobs {
		if h := j.Sink.HTTP; h != nil {
			for _, t := range h.Targets {
				paths = append(paths, t.CAFile)
			}
		}
		if c := j.Compare; c != nil {
			paths = append(paths, c.GRPCDescriptors)
			if c.Noise != nil {
				paths = append(paths, c.Noise.CAFile)
			}
		}
	}
	for _, p := range paths {
		if !p.IsSet() {
			continue
		}
		if err := p.Recheck(); err != nil {
			return invalidf("%s not read: a restricted scenario reads only under its directory: %w", p.Raw, err)
		}
	}
	return nil
}
