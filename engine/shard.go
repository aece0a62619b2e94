package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine/echo"
	"github.com/replayctl/replayctl/engine/pace"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/runbus"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/shard"
	"github.com/replayctl/replayctl/sources/windowsrc"
	"github.com/replayctl/replayctl/stats"
)

// ShardOptions run a plan's replay job as one shard of a run: the shard's
// part of the window (shard.Plan), started with the other shards on one
// instant (the barrier), its result published for `report merge`.
type ShardOptions struct {
	Spec shard.Spec
	// ArmTimeout bounds the wait for every shard to arm (default
	// DefaultArmTimeout); past it the run fails naming the missing shards.
	ArmTimeout time.Duration
	// Margin is added to the last armed instant to get the start (default
	// DefaultStartMargin): time for every shard to read that last record.
	Margin time.Duration
	// Coordinator carries the barrier and the results; nil means the run
	// topic (RunTopic, default runbus.DefaultTopic) over the run's Kafka
	// connection.
	Coordinator shard.Coordinator
	RunTopic    string
}

// Defaults of ShardOptions.
const (
	DefaultArmTimeout  = 2 * time.Minute
	DefaultStartMargin = time.Second
)

// checkShard checks the --shard selection against the plan: one replay job
// reading a window, and a broker the shards share.
func checkShard(p *Plan) error {
	o := p.opts.Shard
	if err := o.Spec.Validate(); err != nil {
		return invalidError{err}
	}
	if len(p.jobs) != 1 || !p.jobs[0].replay || p.jobs[0].job.Source.Kind != scenario.SourceWindow {
		var names []string
		for _, jp := range p.jobs {
			names = append(names, jp.job.Name)
		}
		why := fmt.Sprintf("this run has jobs %v: name the replay job with --job", names)
		if len(p.opts.Jobs) > 0 {
			why = fmt.Sprintf("--job selects jobs %v: name only the replay job", names)
		}
		if len(p.jobs) == 1 {
			j := p.jobs[0].job
			switch {
			case j.Sink.Kind == scenario.SinkKafka:
				why = fmt.Sprintf("job %q records (it has no window to cut into shards)", j.Name)
			case !p.jobs[0].replay:
				why = fmt.Sprintf("job %q sends no HTTP requests (its sink is %s)", j.Name, j.Sink.Kind)
			default:
				why = fmt.Sprintf("job %q replays a %s source, not a window (only a window's offsets are cut into shards)", j.Name, j.Source.Kind)
			}
		}
		return invalidf("--shard needs a replay job whose source is a window; %s", why)
	}
	if ks := kafkaSettings(p.scn.Kafka, p.opts); o.Coordinator == nil && o.Spec.Count > 1 && ks.Embedded() && !servedDataDir(ks.DataDir) {
		return invalidf("--shard %s: the shards of a run meet on a Kafka broker they all reach, and the embedded broker is private to one process: set kafka.brokers or --brokers (`replayctl broker` serves one)", o.Spec)
	}
	if o.ArmTimeout < 0 || o.Margin < 0 {
		return invalidf("--arm-timeout and --start-margin must not be negative")
	}
	return checkPublishable(p.jobs[0].job)
}

// checkPublishable refuses a sharded job's assertion that its result could
// publish only with a secret's value in it: report merge evaluates the
// published assertions on the merged totals, and one whose secret reaches
// the summary's values (requests.sent >= len("${API_TOKEN}")) has no form
// without it (scenario.Expr.Published). Published as written, the merge
// read "${API_TOKEN}" as the text it is and gave a verdict on it.
func checkPublishable(j *scenario.Job) error {
	var problems []string
	for _, a := range j.Assert {
		if _, err := a.Published(); err != nil {
			problems = append(problems, fmt.Sprintf("%s: assert %s reads a secret, and %v; report merge evaluates a sharded job's assertions on the merged totals from what the shards publish, which never holds a secret's value: compare the secret to a constant there (\"${NAME}\" != \"\"), or leave it out of the assertion", a.Pos, a.Shown(), err))
		}
	}
	if problems != nil {
		return invalidf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// servedDataDir reports whether a `replayctl broker` serves the embedded
// broker's data dir: the shards on this host then meet on it.
func servedDataDir(dir string) bool {
	_, ok := kafkaio.Served(dir)
	return ok
}

// shardRun is the state of the sharded job of a run. Its methods are no-ops
// on a nil *shardRun (an unsharded run).
type shardRun struct {
	opts    ShardOptions
	whole   catalog.Window
	assign  shard.Assignment
	fp      string
	coord   shard.Coordinator
	closeFn func()
	nonce   string

	explicit     time.Time // the job's start-at
	speed        float64   // 0: max
	armed        bool
	armedAt      time.Time
	start        shard.Start
	firstPlanned time.Time
	// t0Note says how the shard was put on the run's timeline when its
	// first request's capture time was bogus and the window had no start
	// to take instead (shard.Info.T0Note).
	t0Note string
}

func newShardRun(o *ShardOptions) *shardRun {
	if o == nil {
		return nil
	}
	so := *o
	if so.ArmTimeout == 0 {
		so.ArmTimeout = DefaultArmTimeout
	}
	if so.Margin == 0 {
		so.Margin = DefaultStartMargin
	}
	return &shardRun{opts: so, nonce: shard.NewNonce()}
}

// restrict cuts the resolved window down to the shard's part.
func (s *shardRun) restrict(r *runner, w catalog.Window, opts windowsrc.Options) (catalog.Window, windowsrc.Options) {
	if s == nil {
		return w, opts
	}
	s.whole = w
	s.fp = shard.Fingerprint(w)
	s.assign = shard.Plan(w, s.opts.Spec.Count)[s.opts.Spec.Index]
	if s.assign.Split() {
		opts.Select = s.assign.Selects
	}
	r.log.Info("shard planned", "run", s.opts.Spec.RunID, "plan", s.assign.String(), "window", w.Name, "fingerprint", s.fp)
	return s.assign.Window(w), opts
}

// rate divides the job's rate cap among the shards.
func (s *shardRun) rate(perSecond float64) float64 {
	if s == nil {
		return perSecond
	}
	return perSecond / float64(s.opts.Spec.Count)
}

// startAt keeps the job's start-at for the barrier: the pacer of a shard
// starts when the barrier says.
func (s *shardRun) startAt(t time.Time, speed float64) time.Time {
	if s == nil {
		return t
	}
	s.explicit, s.speed = t, speed
	return time.Time{}
}

// coordinator opens the run topic on first use.
func (s *shardRun) coordinator(ctx context.Context, r *runner) (shard.Coordinator, error) {
	if s.coord != nil {
		return s.coord, nil
	}
	if s.opts.Coordinator != nil {
		s.coord = s.opts.Coordinator
		return s.coord, nil
	}
	kc, err := r.kafka.get(ctx)
	if err != nil {
		return nil, err
	}
	b, err := runbus.Open(ctx, kc.opts, s.opts.RunTopic, r.log)
	if err != nil {
		return nil, err
	}
	s.coord, s.closeFn = b, b.Close
	return b, nil
}

func (s *shardRun) record(kind string) shard.Record {
	sp := s.opts.Spec
	return shard.Record{Kind: kind, RunID: sp.RunID, Shard: sp.Index, Count: sp.Count, Nonce: s.nonce, Host: hostname(), At: time.Now()}
}

// arm runs once, when the shard holds its first request (captured at t0,
// or none: has false; bogus: its capture time is bogus): it checks that
// the targets answer, publishes "armed", waits for the barrier, puts the
// pacer and the stats on the run's timeline and waits for the start
// instant.
func (s *shardRun) arm(ctx context.Context, r *runner, j *scenario.Job, p *pace.Pacer, rec *stats.Recorder, t0 int64, has, bogus bool) error {
	if s == nil || s.armed {
		return nil
	}
	s.armed = true
	sp := s.opts.Spec
	coord, err := s.coordinator(ctx, r)
	if err != nil {
		return fmt.Errorf("shard %s of run %q: %w", sp, sp.RunID, err)
	}
	if err := s.dialTargets(ctx, r, j); err != nil {
		a := s.record(shard.KindAbort)
		a.Reason = err.Error()
		_ = coord.Abort(context.WithoutCancel(ctx), a)
		return fmt.Errorf("shard %s of run %q: %w", sp, sp.RunID, err)
	}
	self := s.record(shard.KindArmed)
	self.Window, self.Margin, self.StartAt = s.fp, s.opts.Margin, s.explicit
	switch {
	case has:
		self.T0 = t0
	case bogus:
		// A bogus capture time has no place on the timeline: the window's
		// start (its first capture time that is not bogus) has, and it is
		// at or before this shard's first timed request.
		if w := s.whole.StartedAt; !w.IsZero() && !message.BogusTime(w, time.Now()) {
			self.T0 = w.UnixNano()
			r.log.Info("the shard's first request has a bogus capture time: it arms with the window's start as its t0", "run", sp.RunID, "shard", sp.String(), "t0", w.UTC().Format(time.RFC3339Nano))
		}
	}
	s.armedAt = self.At
	r.log.Info("shard armed; waiting for the other shards", "run", sp.RunID, "shard", sp.String())
	start, err := coord.Arm(ctx, self, s.opts.ArmTimeout)
	if err != nil {
		return fmt.Errorf("shard %s: %w", sp, err)
	}
	s.start = start
	if start.T0 != 0 {
		p.Align(start.At, start.T0)
	}
	if bogus && self.T0 == 0 {
		if start.T0 != 0 {
			s.t0Note = fmt.Sprintf("its first request's capture time is bogus (%s) and the window has no start time: it took the other shards' t0; its requests captured before that t0 went at the start", message.BogusTimeRule)
		} else {
			s.t0Note = fmt.Sprintf("no t0: its first request's capture time is bogus (%s), the window has no start time and no other shard had a timed first request: it placed its timed requests from its own first one at the start instant, not on a timeline the shards share (save the window as a recording, which keeps its start time)", message.BogusTimeRule)
		}
		r.log.Warn("the shard armed without a t0: "+s.t0Note, "run", sp.RunID, "shard", sp.String())
	}
	rec.SetOrigin(start.At)
	s.firstPlanned = start.At
	if has && s.speed > 0 && t0 > start.T0 {
		s.firstPlanned = start.At.Add(time.Duration(float64(t0-start.T0) / s.speed))
	}
	if !start.Planned.IsZero() {
		r.log.Warn(start.Postponed+": every shard starts at the last armed instant plus the start margin, together",
			"run", sp.RunID, "start-at", start.Planned.Format(time.RFC3339Nano), "starts", start.At.Format(time.RFC3339Nano), "postponed", start.At.Sub(start.Planned).Round(time.Millisecond))
	}
	if late := time.Since(start.At); late > 0 {
		r.log.Warn("the run's start instant had passed when the barrier completed: the first sends are late", "run", sp.RunID, "late", late.Round(time.Millisecond))
	}
	r.log.Info("run starts", "run", sp.RunID, "at", start.At.Format(time.RFC3339Nano), "in", time.Until(start.At).Round(time.Millisecond))
	return pace.Real{}.SleepUntil(ctx, start.At)
}

// dialTargets opens (and closes) one connection to each target, so that a
// shard that cannot reach its targets fails before the run starts.
func (s *shardRun) dialTargets(ctx context.Context, r *runner, j *scenario.Job) error {
	for _, t := range j.Sink.HTTP.Targets {
		u, err := r.targetURL(t)
		if err != nil {
			return err
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"https": "443"}[u.Scheme]
			if port == "" {
				port = "80"
			}
		}
		timeout := cmpDur(targetTimeout(j.Sink.HTTP, t), 10*time.Second)
		dctx, cancel := context.WithTimeout(ctx, timeout)
		c, err := (&net.Dialer{}).DialContext(dctx, "tcp", net.JoinHostPort(u.Hostname(), port))
		cancel()
		if err != nil {
			return fmt.Errorf("target %s does not answer: %w", t.Name, err)
		}
		_ = c.Close()
	}
	return nil
}

func cmpDur(a, b time.Duration) time.Duration {
	if a > 0 {
		return a
	}
	return b
}

// armIdle arms a shard that ended without a request (an empty part,
// everything filtered, or stop.after before the first request), so the
// other shards do not wait for it.
func (s *shardRun) armIdle(ctx context.Context, r *runner, j *scenario.Job, p *pace.Pacer, rec *stats.Recorder) error {
	if s == nil || s.armed || ctx.Err() != nil {
		return nil
	}
	return s.arm(ctx, r, j, p, rec, 0, false, false)
}

// info describes the shard for its report.
func (s *shardRun) info(sum stats.Summary) *shard.Info {
	if s == nil {
		return nil
	}
	sp := s.opts.Spec
	in := &shard.Info{RunID: sp.RunID, Index: sp.Index, Count: sp.Count, Host: hostname(), Parts: s.assign.Parts,
		Fingerprint: s.fp, ArmedAt: s.armedAt, Start: s.start.At, T0: s.start.T0, PlannedStart: s.start.Planned, Postponed: s.start.Postponed,
		FirstPlanned: s.firstPlanned, FirstSend: sum.FirstSend, T0Note: s.t0Note}
	if in.Parts == nil {
		in.Parts = []shard.Part{}
	}
	if s.whole.Topic != "" {
		w := s.whole
		in.Window = &w
	}
	if !sum.FirstSend.IsZero() && !s.firstPlanned.IsZero() {
		skew := stats.MS(sum.FirstSend.Sub(s.firstPlanned))
		in.SkewMS = &skew
	}
	return in
}

// publish sends the shard's report to the run topic.
func (s *shardRun) publish(ctx context.Context, r *runner, report []byte) error {
	if s == nil {
		return nil
	}
	coord, err := s.coordinator(ctx, r)
	if err != nil {
		return fmt.Errorf("publishing the result of shard %s: %w", s.opts.Spec, err)
	}
	rec := s.record(shard.KindResult)
	rec.Report = report
	if err := coord.Publish(ctx, rec); err != nil {
		return fmt.Errorf("publishing the result of shard %s: %w", s.opts.Spec, err)
	}
	return nil
}

func (s *shardRun) close() {
	if s != nil && s.closeFn != nil {
		s.closeFn()
	}
}

// publishShard publishes a sharded replay job's report (the JSON report,
// whether or not report.json is set) on the run topic.
func (r *runner) publishShard(ctx context.Context, s *scenario.Scenario, res *jobResult) error {
	if r.shard == nil || !res.replay {
		return nil
	}
	data, err := json.Marshal(jobReport(s, res))
	if err != nil {
		return fmt.Errorf("shard result: %w", err)
	}
	pctx, cancel := drainContext(ctx)
	defer cancel()
	if err := r.shard.publish(pctx, r, data); err != nil {
		return err
	}
	fmt.Fprintf(r.plan.opts.Out, "  %-10sshard %s of run %s published on the run topic\n", "result", r.shard.opts.Spec, r.shard.opts.Spec.RunID)
	return nil
}

// abortShard tells the other shards that this one failed before arming, so
// that they fail at once instead of at --arm-timeout.
func (r *runner) abortShard(ctx context.Context, cause error) {
	s := r.shard
	if s == nil || s.armed {
		return
	}
	s.armed = true
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	coord, err := s.coordinator(actx, r)
	if err != nil {
		return
	}
	a := s.record(shard.KindAbort)
	a.Reason = fmt.Sprintf("shard %s failed before arming: %v", s.opts.Spec, cause)
	if err := coord.Abort(actx, a); err != nil {
		r.log.Warn("could not tell the other shards that this one failed", "err", err)
	}
}

// DescribeShard resolves the sharded job's window (it reads the catalog
// and the topic's offsets) and prints what every shard of the run
// replays, marking this one. It sends nothing.
func (p *Plan) DescribeShard(ctx context.Context, w io.Writer) error {
	o := p.opts.Shard
	if o == nil {
		return nil
	}
	r := &runner{plan: p, log: p.opts.Logger, kafka: &lazyKafka{ks: kafkaSettings(p.scn.Kafka, p.opts), log: p.opts.Logger}, echos: map[string]*echo.Server{}}
	defer r.close()
	kc, err := r.kafka.get(ctx)
	if err != nil {
		return err
	}
	j := p.jobs[0].job
	win, _, _, err := r.resolveWindow(ctx, kc, j.Source)
	if err != nil {
		return fmt.Errorf("%s: %w", j.Source.Pos, err)
	}
	// A secret variable's value (in a window or topic name) shows as its
	// ${NAME}, as in the plan.
	var b strings.Builder
	out := w
	defer func() { _, _ = io.WriteString(out, p.scn.MaskSecrets(b.String())) }()
	w = &b
	sp := o.Spec
	fmt.Fprintf(w, "\nrun %q, shard %s (0-based index): window %s, topic %s, %d records, fingerprint %s\n",
		sp.RunID, sp, cmp.Or(win.Name, "(unnamed)"), win.Topic, win.Records(), shard.Fingerprint(win))
	for _, a := range shard.Plan(win, sp.Count) {
		mark := "  "
		if a.Index == sp.Index {
			mark = "→ "
		}
		fmt.Fprintf(w, "  %s%s\n", mark, a)
	}
	if j.Rate.PerSecond > 0 {
		fmt.Fprintf(w, "  rate per shard: %.4g/s (%.4g/s divided among %d shards)\n", j.Rate.PerSecond/float64(sp.Count), j.Rate.PerSecond, sp.Count)
	}
	fmt.Fprintf(w, "  start: when all %d shards armed on topic %s (plus %s), unless start-at; arm timeout %s\n",
		sp.Count, cmp.Or(o.RunTopic, runbus.DefaultTopic), durationString(cmpDur(o.Margin, DefaultStartMargin)), durationString(cmpDur(o.ArmTimeout, DefaultArmTimeout)))
	return nil
}
