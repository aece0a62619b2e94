package fleet

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/scenario"
)

// AgentConfig configures an agent.
type AgentConfig struct {
	Name         string
	Labels       Labels
	Allow        []string // record, replay
	Trust        []ed25519.PublicKey
	Vars         map[string]string // the only values ${VAR} sees
	WorkDir      string
	AllowTargets []string // replay targets allowed (host:port patterns)
	Kafka        kafkaio.Config
	Version      string
	Logger       *slog.Logger
	Metrics      *Metrics // nil: none
	// Load loads job scenarios restricted; nil means LoadRestricted.
	Load Loader
	// MaxConcurrent bounds the jobs or shards that run here at once
	// (--max-concurrent; 0 means DefaultMaxConcurrent). One taken beyond it
	// is QUEUED: it waits, in the order taken, for a run to end, and is
	// never dropped (a cancel or the agent's stop ends it CANCELLED).
	MaxConcurrent int
	// MaxRun, when positive, bounds how long one job or shard runs here
	// (--max-run): a run still going then is stopped as a cancel stops it
	// (a record job drains and its window is saved) and ends CANCELLED.
	MaxRun time.Duration
	// MaxSpecTTL bounds how long a spec or cancel it takes may be valid
	// (--max-spec-ttl; 0 means DefaultMaxSpecTTL; from CancelTTL to
	// MaxTTL): one whose ExpiresAt - IssuedAt is longer, or whose IssuedAt
	// lies more than ClockSkew ahead of the agent's clock, is refused. A
	// signed command is runnable by whoever re-publishes it until it
	// expires; this bounds how long a captured one stays so.
	MaxSpecTTL time.Duration
}

// DefaultMaxConcurrent is AgentConfig.MaxConcurrent's default: a record
// job captures and a replay shard sends as fast as its host allows, so a
// few at once already share the host's CPUs and network.
const DefaultMaxConcurrent = 4

// errMaxRun ends a run that reached AgentConfig.MaxRun.
var errMaxRun = errors.New("the agent's --max-run was reached")

// Agent takes signed jobs from the jobs topic and runs them.
type Agent struct {
	cfg AgentConfig
	bus *Bus
	log *slog.Logger
	// secrets masks cfg.Vars' values in what the agent publishes (built
	// once: the values do not change).
	secrets *secretMasks

	mu   sync.Mutex
	runs map[string]*agentRun // by status key, queued ones too
	// active counts the runs that hold a slot (at most MaxConcurrent);
	// queue holds the others, in the order taken.
	active int
	queue  []*agentRun
	specs  map[string]accepted // verified specs by job ID (replay jobs: spare takeover)
	cancel map[string]bool     // job IDs cancelled
	// cancelledBy names who signed each job's cancel, for its reason.
	cancelledBy map[string]string
	// resumable holds the shards this agent was running when it stopped
	// (status keys), until their spec comes by after a restart.
	resumable map[string]bool
	// taken is the agent's own record of the jobs it took, in its work
	// directory: a job runs once, statuses deleted or not.
	taken *takenLedger
	wg    sync.WaitGroup

	// pub is the context of the runs' own publications (their states, the
	// job's final status): not cancelled with a run, but when the agent
	// stops waiting for its runs (stopPublishing).
	pub            context.Context
	stopPublishing context.CancelFunc
	lastBeat       atomic.Pointer[time.Time] // when the latest heartbeat was acknowledged

	// lastSweep and swept are settleStale's: when it last looked, and
	// when it settled each job (the loop's goroutine only).
	lastSweep time.Time
	swept     map[string]time.Time
	// sweptSpecs holds, by job, its spec as read by settleStale (verified
	// or not), so that each pass does not read and verify it again.
	sweptSpecs map[string]sweptSpec

	// instance is this process's random ID, in its heartbeats: two
	// processes given one --name are two instances.
	instance string
	// beatNow asks for a heartbeat at once (another process of this name
	// published a stopped heartbeat).
	beatNow chan struct{}
	// The other process using this agent's name (a.mu): the At of the
	// latest heartbeat of the name looked at, when a live one of the other
	// process was last seen (zero: none), and that heartbeat.
	twinAt, twinSeen, twinLogged time.Time
	twinBeat                     Heartbeat
	// cancelsRefused holds the command IDs of the untrusted cancels this
	// agent reported (a.mu), so that it reports each once.
	cancelsRefused map[string]bool
	// malformedN counts the malformed jobs-topic records read;
	// malformedLogged is when one was last logged (a.mu).
	malformedN      atomic.Int64
	malformedLogged time.Time
	// refusals bounds the refusals of unverified input published
	// (ratelimit.go); suppressedN counts those it held back, and
	// suppressedLogged is when that was last logged (a.mu).
	refusals         *refusalLimit
	suppressedN      atomic.Int64
	suppressedLogged time.Time
	// held are refusals waiting for their job's status (retryHeld), by
	// the offset of the spec they refuse (a.mu).
	held map[int64]heldRefusal

	// beforeLostSync, when set (tests), runs in watchShards once it found
	// a shard's owner lost, right before the Sync that precedes acting on
	// it (failing the shard, or re-running it on a spare).
	beforeLostSync func(jobID string, shard int, owner string)
	// onRerun, when set (tests), receives the duplicate cut-off of a lost
	// shard that watchShards re-runs here (DuplicatesBefore's, less
	// HeartbeatInterval: when the lost owner was last seen).
	onRerun func(jobID string, shard int, lastSeen time.Time)
}

// newInstanceID returns a random ID for one agent process.
func newInstanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type agentRun struct {
	jobID  string
	shard  int // -1 for record jobs
	cancel context.CancelFunc
	// slot is closed when the run may start; granted says it holds one
	// of the agent's MaxConcurrent slots (a.mu).
	slot    chan struct{}
	granted bool
	// queued: it had to wait for a slot when it was taken.
	queued bool
	// writes are the files the run writes, absolute (claimWrites, a.mu).
	writes []string
}

// named is the run as the agent's heartbeat names it.
func (r *agentRun) named() Run {
	out := Run{Job: r.jobID, Queued: !r.granted}
	if r.shard >= 0 {
		shard := r.shard
		out.Shard = &shard
	}
	return out
}

type accepted struct {
	spec   Spec
	offset int64
}

// NewAgent checks the configuration.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Name == "" {
		return nil, errors.New("agent: --name is required")
	}
	if len(cfg.Allow) == 0 {
		return nil, errors.New("agent: --allow record, replay or both")
	}
	for _, k := range cfg.Allow {
		if k != KindRecord && k != KindReplay {
			return nil, fmt.Errorf("agent: --allow %q: want record or replay", k)
		}
	}
	if len(cfg.Trust) == 0 {
		return nil, errors.New("agent: --trust FILE is required (the public keys whose specs it runs)")
	}
	if cfg.WorkDir == "" {
		return nil, errors.New("agent: --work-dir is required")
	}
	if cfg.MaxConcurrent < 0 {
		return nil, fmt.Errorf("agent: --max-concurrent %d: want 1 or more (how many jobs or shards run here at once)", cfg.MaxConcurrent)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.MaxSpecTTL == 0 {
		cfg.MaxSpecTTL = DefaultMaxSpecTTL
	}
	if cfg.MaxSpecTTL < CancelTTL || cfg.MaxSpecTTL > MaxTTL {
		return nil, fmt.Errorf("agent: --max-spec-ttl %s: want %s to %s (jobs submit signs specs for at most %s, jobs cancel its cancels for %s)",
			cfg.MaxSpecTTL, CancelTTL, MaxTTL, MaxTTL, CancelTTL)
	}
	if cfg.MaxRun < 0 {
		return nil, fmt.Errorf("agent: --max-run %s: want a positive duration (or 0: no limit)", cfg.MaxRun)
	}
	if slices.Contains(cfg.Allow, KindReplay) && len(cfg.AllowTargets) == 0 {
		return nil, errors.New("agent: --allow replay needs --allow-targets PATTERN (the targets it may send to)")
	}
	abs, err := filepath.Abs(cfg.WorkDir)
	if err != nil {
		return nil, err
	}
	cfg.WorkDir = abs
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("agent: work dir: %w", err)
	}
	taken, err := openTaken(abs, cfg.Name, time.Now())
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Load == nil {
		cfg.Load = LoadRestricted
	}
	pub, stopPublishing := context.WithCancel(context.Background())
	return &Agent{
		cfg: cfg, log: cfg.Logger.With("agent", cfg.Name), secrets: newSecretMasks(cfg.Vars),
		runs: map[string]*agentRun{}, specs: map[string]accepted{}, cancel: map[string]bool{}, resumable: map[string]bool{},
		pub: pub, stopPublishing: stopPublishing,
		instance: newInstanceID(), beatNow: make(chan struct{}, 1), cancelsRefused: map[string]bool{}, cancelledBy: map[string]string{},
		refusals: newRefusalLimit(refusalBurst, refusalEvery), taken: taken,
	}, nil
}

// Run heartbeats and takes jobs until ctx ends; then it cancels its runs,
// waits for them to report, and says it stopped.
func (a *Agent) Run(ctx context.Context) error {
	bus, err := OpenBus(ctx, a.cfg.Kafka, a.log)
	if err != nil {
		return err
	}
	defer bus.Close()
	a.bus = bus
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = bus.Sync(sctx)
	cancel()
	if err != nil {
		return err
	}
	// Before its first heartbeat: another process may use this name.
	if err := a.checkName(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil // stopped while checking: it never heartbeat
	}
	a.recoverStale(ctx, false)
	hbDone := make(chan struct{})
	hctx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(hbDone); a.heartbeats(hctx) }()
	a.log.Info("agent started", "labels", a.cfg.Labels.String(), "allow", a.cfg.Allow, "instance", a.instance)

	var next int64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	first := true
	for ctx.Err() == nil {
		changed := bus.Changed()
		for _, jr := range bus.Jobs(next) {
			a.handle(ctx, jr)
			next = jr.Offset + 1
		}
		if first {
			a.recoverStale(ctx, true) // shards whose spec did not come by
			first = false
		}
		a.watchTwin(time.Now())
		a.watchShards(ctx)
		a.retryHeld(ctx)
		a.settleStale(time.Now())
		select {
		case <-ctx.Done():
		case <-changed:
		case <-tick.C:
		}
	}
	return a.stop(bus, stopHB, hbDone)
}

// The stop's bounds, whatever Kafka's state (kafkaio.ProduceBounded
// honours its context even for a record the broker may have read). A run
// ends on its own bounds (a record job drains within kafka.delivery-timeout
// and counts what it could not deliver), and each of its status
// publications waits statusPublishWait at most; Run waits for the runs
// (saying so every stopRunsTell; stopRunsCap at most, then it leaves them
// and fails), then the final heartbeat waits
// finalBeatWait for its ack. With
// no run going, an agent whose Kafka is gone exits about 8 s after SIGTERM.
const (
	statusPublishWait = 10 * time.Second
	stopRunsTell      = 15 * time.Second
	stopRunsCap       = 15 * time.Minute
	finalBeatWait     = 5 * time.Second
)

// stop cancels the runs, waits (bounded) for them to report, stops the
// heartbeats and publishes the final "stopped" heartbeat. What it could
// not do is logged.
func (a *Agent) stop(bus *Bus, stopHB context.CancelFunc, hbDone <-chan struct{}) error {
	stopped := time.Now()
	a.mu.Lock()
	for _, r := range a.runs {
		r.cancel()
	}
	held := slices.Collect(maps.Values(a.held))
	a.held = nil
	a.mu.Unlock()
	for _, h := range held {
		a.suppressed(h.what) // refusals still waiting for their job's status: not published
	}
	defer a.stopPublishing()
	runsDone := make(chan struct{})
	go func() { a.wg.Wait(); close(runsDone) }()
	// A run ends on its own bounds (a record job drains within its
	// kafka.delivery-timeout, however long the scenario sets it): leaving
	// earlier would lose what it still holds. What it waits for is told.
	tick := time.NewTicker(stopRunsTell)
	defer tick.Stop()
	var leftErr error
	giveUp := time.NewTimer(stopRunsCap)
	defer giveUp.Stop()
	for waiting := true; waiting; {
		select {
		case <-runsDone:
			waiting = false
		case <-tick.C:
			a.mu.Lock()
			keys := slices.Sorted(maps.Keys(a.runs))
			a.mu.Unlock()
			a.log.Warn(fmt.Sprintf("stopping: waiting for runs to drain (%s since the stop; a record job ends within its kafka.delivery-timeout)", time.Since(stopped).Round(time.Second)), "runs", keys)
		case <-giveUp.C:
			// A run that outlives this ignores its context: leaving is
			// the lesser harm, and it is told and fails the exit code.
			a.mu.Lock()
			keys := slices.Sorted(maps.Keys(a.runs))
			a.mu.Unlock()
			leftErr = fmt.Errorf("stopped with runs not drained after %s: %s (what they still held is lost; their final status may be missing)", stopRunsCap, strings.Join(keys, ", "))
			a.log.Error(leftErr.Error())
			waiting = false
		}
	}
	stopHB()
	<-hbDone
	if twin, ok := a.twin(time.Now()); ok {
		// Its stopped heartbeat would make the other process, still
		// heartbeating under the same name, look stopped.
		a.log.Warn(fmt.Sprintf("no stopped heartbeat published: another agent process named %s (%s) is heartbeating, and the fleet would take it for stopped", a.cfg.Name, describeBeat(twin)))
		a.logStopped(stopped)
		return leftErr
	}
	dctx, dcancel := context.WithTimeout(context.Background(), finalBeatWait)
	defer dcancel()
	h := a.heartbeat()
	h.Stopped = true
	if _, err := bus.Publish(dctx, AgentsTopic, a.cfg.Name, h); err != nil {
		lost := ""
		if last := a.lastBeat.Load(); last != nil {
			lost = " (at " + last.Add(LostAfter).UTC().Format("15:04:05Z") + ")"
		}
		a.log.Warn(fmt.Sprintf("could not publish the final heartbeat: %v; the fleet will see this agent as lost, not stopped, %s after its last heartbeat%s", err, LostAfter, lost))
	}
	a.logStopped(stopped)
	return leftErr
}

// logStopped says the agent stopped, and what it held back.
func (a *Agent) logStopped(stopped time.Time) {
	args := []any{"after", time.Since(stopped).Round(time.Millisecond)}
	if n := a.suppressedN.Load(); n > 0 {
		args = append(args, "refusals-not-published", n)
	}
	if n := a.malformedN.Load(); n > 0 {
		args = append(args, "malformed-records", n)
	}
	a.log.Info("agent stopped", args...)
}

// recoverStale marks runs this agent left unfinished (it was killed) as
// failed, so that nobody waits for them. A replay shard is first kept for
// resumeShard (onlyFail false); the pass after the jobs topic was read once
// (onlyFail true) fails those whose spec did not come by. The first pass
// also settles again the jobs of this agent's ended runs that did not end:
// the process was killed while it settled them.
func (a *Agent) recoverStale(ctx context.Context, onlyFail bool) {
	settling := map[string]bool{} // jobs settled below, once each
	settle := func(s Status) {
		// From its spec as signed (a status alone may be anyone's).
		if spec, ok := a.specAt(s.JobID, s.SpecOffset); ok && !settling[spec.JobID] {
			settling[spec.JobID] = true
			a.settle(spec)
		}
	}
	for key, s := range a.bus.StatusPrefix("job/") {
		if s.Agent != a.cfg.Name || s.State == Lost || strings.Contains(key, "/refused/") || strings.Contains(key, "/lost/") {
			continue
		}
		if !strings.Contains(key, "/agent/") && !strings.Contains(key, "/shard/") {
			continue
		}
		if s.State.Final() {
			// The run ended (or was marked FAILED by a start before this
			// one), its job did not: the process that ran it was killed
			// (kill -9, a crash) between the two writes.
			if js, ok := a.bus.Status(jobKey(s.JobID)); !onlyFail && ok && !js.State.Final() {
				settle(s)
			}
			continue
		}
		if onlyFail && !a.resumable[key] {
			continue
		}
		delete(a.resumable, key)
		if s.Shard != nil && !onlyFail {
			// A replay shard resumes here from its resume point when its
			// spec comes by (resumeShard); failed after the first pass.
			a.resumable[key] = true
			continue
		}
		s.State, s.Reason, s.At = Failed, "agent "+a.cfg.Name+" restarted while the run was "+string(s.State), time.Time{}
		if err := a.bus.PublishStatus(ctx, key, s); err != nil {
			a.log.Warn("marking an unfinished run failed", "key", key, "err", err)
			continue
		}
		// That run may have been the job's last part: settle the job.
		settle(s)
	}
}

// settle runs finishJob off the caller's path, as a run ending does: at
// start, recoverStale runs before the first heartbeat, and each settlement
// may wait (Sync, then up to assignWait for a submitter's ASSIGNED), so
// that an agent restarted with many stale runs looked dead for as long.
// stop waits for it as for a run, and, as a run's own publications, it
// goes on past the agent's stop (on a.pub, bounded by finishJob's own
// timeout): the run is FAILED already, and a restart would not look at it
// again, so a settlement cut short by a SIGTERM left the job unsettled.
func (a *Agent) settle(spec Spec) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.finishJob(a.pub, spec)
	}()
}

// specAt is the spec of job id at offset of the jobs topic, when it is
// there and verifies.
func (a *Agent) specAt(id string, offset int64) (Spec, bool) {
	jr, ok := a.bus.JobAt(offset)
	if !ok {
		return Spec{}, false
	}
	var spec Spec
	if err := jr.Envelope.Open(a.cfg.Trust, &spec); err != nil || spec.JobID != id {
		return Spec{}, false
	}
	return spec, true
}

func (a *Agent) heartbeat() Heartbeat {
	h := Heartbeat{
		Name: a.cfg.Name, Labels: a.cfg.Labels, Version: a.cfg.Version, Allow: a.cfg.Allow,
		Addrs: hostAddrs(), At: time.Now().UTC(), Instance: a.instance,
	}
	a.mu.Lock()
	// Runs: those going, by key, then those queued, in their turn.
	for _, key := range slices.Sorted(maps.Keys(a.runs)) {
		r := a.runs[key]
		if h.Job == "" || r.granted {
			h.Job, h.Shard = r.jobID, r.shard // a running one, if any
		}
		if r.granted {
			h.Runs = append(h.Runs, r.named())
		}
	}
	for _, r := range a.queue {
		h.Runs = append(h.Runs, r.named())
	}
	h.Running, h.Queued, h.MaxConcurrent = a.active, len(a.queue), a.cfg.MaxConcurrent
	h.MaxSpecTTL = Duration(a.cfg.MaxSpecTTL)
	a.mu.Unlock()
	return h
}

func (a *Agent) heartbeats(ctx context.Context) {
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	var (
		offset   time.Duration
		measured bool      // offset is the broker's clock minus this agent's
		off      bool      // offset is beyond ClockOffsetWarn (logged)
		prevAt   time.Time // the At of the previous heartbeat
		prevMid  time.Time // the middle of its produce round trip
	)
	for {
		// The agents topic uses LogAppendTime: the previous heartbeat, as
		// read back, carries the broker's time of its append; against the
		// middle of its round trip it gives the clock offset (ms precision).
		// A timestamp its producer set (a broker that does not stamp
		// LogAppendTime) is this agent's own clock: no measure.
		if h, ts, ok := a.bus.Agent(a.cfg.Name); ok && !prevAt.IsZero() && h.At.Equal(prevAt) && !ts.IsZero() {
			offset, measured = 0, a.bus.brokerStamped()
			if measured {
				offset = ts.Sub(prevMid).Truncate(time.Millisecond)
			}
			off = a.logClock(offset, measured, off)
		}
		h := a.heartbeat()
		h.ClockOffset, h.ClockUnmeasured = Duration(offset), !measured
		sent := time.Now()
		_, err := a.bus.Publish(ctx, AgentsTopic, a.cfg.Name, h)
		acked := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			a.log.Warn("heartbeat not published", "err", err)
		} else {
			prevAt, prevMid = h.At, sent.Add(acked.Sub(sent)/2)
			a.lastBeat.Store(&acked)
			a.cfg.Metrics.heartbeat()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.beatNow:
		}
	}
}

// logClock logs when this host's clock goes beyond ClockOffsetWarn of the
// broker's (offset, when measured), and when it comes back (wasOff: it
// was beyond); it returns whether it is beyond. The agent's checks keep
// to its own clock: the broker's only tells that it is off.
func (a *Agent) logClock(offset time.Duration, measured, wasOff bool) bool {
	note := ""
	if measured {
		note = ClockNote(offset)
	}
	switch {
	case note != "" && !wasOff:
		a.log.Warn(note+"; set this host's clock right (NTP)", "clock-offset", offset)
	case note == "" && wasOff:
		a.log.Info(fmt.Sprintf("this host's clock is within %s of the broker's again", ClockOffsetWarn), "clock-offset", offset)
	}
	return note != ""
}

// hostAddrs lists the host's non-loopback unicast addresses.
func hostAddrs() []string {
	var out []string
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, ad := range addrs {
		if ipn, ok := ad.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}

// nameCheckSlack is how late after HeartbeatInterval a live process's next
// heartbeat may come: at start, a live heartbeat of the agent's name not
// followed by another within both is taken for a process that is gone
// (killed before its stopped heartbeat), so that an agent restarted at
// once still resumes its shards before it is declared lost (LostAfter).
const nameCheckSlack = 1500 * time.Millisecond

// checkName refuses to start when another process heartbeats under this
// agent's name: two processes with one name would both take the specs that
// name it, and each one's heartbeats and statuses would be taken for the
// other's. The latest heartbeat of the name may also be this agent's own
// previous process, killed before its stopped heartbeat: a live process
// heartbeats every HeartbeatInterval, so checkName waits for the next one.
func (a *Agent) checkName(ctx context.Context) error {
	h, ts, ok := a.bus.Agent(a.cfg.Name)
	if !ok {
		return nil
	}
	a.mu.Lock()
	a.twinAt = h.At // the heartbeats to come are what tells
	a.mu.Unlock()
	if !a.bus.AgentAlive(a.cfg.Name, time.Now()) {
		return nil
	}
	limit := HeartbeatInterval + nameCheckSlack
	wait := min(max(time.Until(ts.Add(limit)), time.Second), limit)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		changed := a.bus.Changed()
		cur, _, _ := a.bus.Agent(a.cfg.Name)
		if !cur.At.Equal(h.At) {
			a.mu.Lock()
			a.twinAt = cur.At
			a.mu.Unlock()
			if cur.Stopped {
				return nil // it stopped
			}
			return fmt.Errorf("agent: another agent process named %s is running (%s): it heartbeat %s ago and again now; agent names must be unique in the fleet, so this one does not start (give it another --name, or stop the other first)",
				a.cfg.Name, describeBeat(cur), time.Since(ts).Round(100*time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-timer.C:
			a.log.Info(fmt.Sprintf("the latest heartbeat of %s (%s ago) was not followed by another: its process is gone; starting", a.cfg.Name, time.Since(ts).Round(100*time.Millisecond)))
			return nil
		}
	}
}

// describeBeat tells which process a heartbeat is from, for people.
func describeBeat(h Heartbeat) string {
	addrs := strings.Join(h.Addrs, ",")
	if addrs == "" {
		addrs = "none"
	}
	return fmt.Sprintf("labels %s, addresses %s, version %s", h.Labels.String(), addrs, h.Version)
}

// watchTwin looks at the latest heartbeat of the agent's name: one this
// process did not send is another process's. A live one is logged as an
// error (again every twinLogEvery while it goes on) and, while it goes on,
// this agent takes no new job (twin); a stopped one made the fleet take
// this agent for stopped, so it heartbeats again at once.
func (a *Agent) watchTwin(now time.Time) {
	h, ts, ok := a.bus.Agent(a.cfg.Name)
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.twinSeen.IsZero() && now.Sub(a.twinSeen) >= LostAfter {
		a.log.Warn(fmt.Sprintf("no heartbeat from the other agent process named %s for %s: taking jobs again", a.cfg.Name, LostAfter), "instance", a.instance)
		a.twinSeen, a.twinLogged = time.Time{}, time.Time{}
	}
	if !ok || h.At.Equal(a.twinAt) {
		return
	}
	a.twinAt = h.At
	if h.Instance == a.instance {
		return
	}
	if h.Stopped {
		a.log.Error(fmt.Sprintf("another agent process named %s (%s) published a stopped heartbeat: heartbeating at once, or the fleet would take this one for stopped", a.cfg.Name, describeBeat(h)), "instance", a.instance)
		a.twinSeen, a.twinLogged = time.Time{}, time.Time{}
		select {
		case a.beatNow <- struct{}{}:
		default:
		}
		return
	}
	if now.Sub(ts) >= LostAfter {
		return
	}
	a.twinSeen, a.twinBeat = now, h
	if a.twinLogged.IsZero() || now.Sub(a.twinLogged) >= twinLogEvery {
		a.twinLogged = now
		a.log.Error(fmt.Sprintf("another agent process is named %s (%s; this one: labels %s): agent names must be unique in the fleet; this one takes no new job until one of them stops", a.cfg.Name, describeBeat(h), a.cfg.Labels.String()), "instance", a.instance)
	}
}

// twinLogEvery is how often the error of a second process with the agent's
// name is logged again while it goes on.
const twinLogEvery = 30 * time.Second

// twin returns the heartbeat of the other process using this agent's name,
// when one was seen within LostAfter of now.
func (a *Agent) twin(now time.Time) (Heartbeat, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.twinSeen.IsZero() || now.Sub(a.twinSeen) >= LostAfter {
		return Heartbeat{}, false
	}
	return a.twinBeat, true
}

// checkJobRecord says why a jobs-topic record is malformed ("" when it is
// not): a value that is no envelope, an unknown type, a spec whose payload
// does not decode or has no job ID, or a spec under another key than
// spec/<its job ID> (a copy published to replace another job's spec when
// the topic is compacted). A tombstone is not malformed.
func checkJobRecord(jr JobRecord) string {
	switch {
	case jr.Bad == tombstone:
		return ""
	case jr.Bad != "":
		return "not a job envelope: " + jr.Bad
	}
	switch jr.Envelope.Type {
	case "cancel":
		return "" // refuseCancel reports what it cannot act on
	case "spec":
		var peek Spec
		if err := json.Unmarshal(jr.Envelope.Payload, &peek); err != nil {
			return "spec payload: " + err.Error()
		}
		if !JobIDPattern.MatchString(peek.JobID) {
			// A job ID names a directory under the work dir and the
			// status keys of the job ("a/agent/b", "../x" would not).
			return fmt.Sprintf("spec with job ID %q (want letters, digits, '.', '_', '-', up to 128)", truncate(peek.JobID, 200))
		}
		if jr.Key != "spec/"+peek.JobID {
			return fmt.Sprintf("spec of job %q under key %q (want spec/%s)", peek.JobID, jr.Key, peek.JobID)
		}
		return ""
	}
	return fmt.Sprintf("unknown envelope type %q", jr.Envelope.Type)
}

// malformedLogEvery bounds how often malformed jobs-topic records are
// logged (each is counted: Malformed, and the agent's metrics).
const malformedLogEvery = 10 * time.Second

// Malformed returns how many malformed jobs-topic records this agent read.
func (a *Agent) Malformed() int64 { return a.malformedN.Load() }

func (a *Agent) malformed(jr JobRecord, why string) {
	n := a.malformedN.Add(1)
	a.cfg.Metrics.malformed()
	a.mu.Lock()
	now := time.Now()
	logIt := now.Sub(a.malformedLogged) >= malformedLogEvery
	if logIt {
		a.malformedLogged = now
	}
	a.mu.Unlock()
	if logIt {
		a.log.Warn("malformed record on the jobs topic ignored", "offset", jr.Offset, "key", truncate(jr.Key, 200), "reason", truncate(why, 500), "malformed-so-far", n)
	}
}

// truncate shortens s (untrusted text) for a log line.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// handle looks at one jobs-topic record.
func (a *Agent) handle(ctx context.Context, jr JobRecord) {
	if why := checkJobRecord(jr); why != "" {
		a.malformed(jr, why)
		return
	}
	if jr.Bad != "" {
		return
	}
	switch jr.Envelope.Type {
	case "cancel":
		var c Cancel
		if err := jr.Envelope.Open(a.cfg.Trust, &c); err != nil {
			a.refuseCancel(ctx, jr, err)
			return
		}
		now := time.Now()
		if now.After(c.ExpiresAt) {
			return
		}
		if err := checkValidity(c.IssuedAt, c.ExpiresAt, now, a.cfg.MaxSpecTTL); err != nil {
			a.refuseCancel(ctx, jr, err)
			return
		}
		a.cancelJob(c.JobID, c.Submitter)
	case "spec":
		a.handleSpec(ctx, jr)
	}
}

// cancelRefusedKey is the status key of an agent's refusal of a cancel
// command: `jobs cancel` reads the refusals of its command ID.
func cancelRefusedKey(commandID, agent string) string {
	return cmdKey(commandID) + "/refused/" + agent
}

// refuseCancel publishes why this agent does not obey a cancel (its
// signature), under its command ID, for the canceller to read. Only the
// agents of the job answer, once per command ID (the status topic
// remembers it across restarts), and not for a job already ended or a
// cancel expired: nobody waits for those.
func (a *Agent) refuseCancel(ctx context.Context, jr JobRecord, why error) {
	var c Cancel // unverified: to say what was refused, never to act
	if err := json.Unmarshal(jr.Envelope.Payload, &c); err != nil || c.CommandID == "" || c.JobID == "" {
		a.mu.Lock()
		logged := a.cancelsRefused[jr.Key]
		a.cancelsRefused[jr.Key] = true
		a.mu.Unlock()
		if !logged {
			a.log.Warn("cancel refused (no command ID or job ID to report it under)", "key", jr.Key, "reason", why)
		}
		return
	}
	js, ok := a.bus.Status(jobKey(c.JobID))
	if !ok || js.State.Final() || time.Now().After(c.ExpiresAt) {
		return
	}
	if !slices.Contains(js.Agents, a.cfg.Name) && len(a.myStatuses(c.JobID)) == 0 {
		return // not an agent of the job
	}
	key := cancelRefusedKey(c.CommandID, a.cfg.Name)
	a.mu.Lock()
	done := a.cancelsRefused[c.CommandID]
	a.cancelsRefused[c.CommandID] = true
	a.mu.Unlock()
	if _, published := a.bus.Status(key); done || published {
		return
	}
	if !a.mayPublishRefusal("cancel " + c.CommandID + " of job " + c.JobID) {
		return
	}
	reason := "cancel refused: " + why.Error()
	a.log.Warn("cancel refused", "job", c.JobID, "command", c.CommandID, "reason", why)
	err := a.bus.PublishStatus(ctx, key, Status{JobID: c.JobID, CommandID: c.CommandID, Agent: a.cfg.Name, State: Refused, Reason: reason})
	if err != nil {
		a.log.Warn("cancel refusal not published", "job", c.JobID, "command", c.CommandID, "err", err)
	}
}

func (a *Agent) cancelJob(jobID, by string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cancel[jobID] {
		return
	}
	a.cancel[jobID], a.cancelledBy[jobID] = true, by
	for _, r := range a.runs {
		if r.jobID == jobID {
			a.log.Info("cancelling", "job", jobID, "shard", r.shard)
			r.cancel()
		}
	}
}

// canceller names who cancelled jobID, as its cancel was signed.
func (a *Agent) canceller(jobID string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return cmp.Or(a.cancelledBy[jobID], "jobs cancel")
}

func (a *Agent) cancelled(jobID string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cancel[jobID]
}

// addressed reports whether an (unverified) spec names this agent, or could
// use it as a spare. A name is not enough to run it (handleSpec): this
// agent's labels must match the spec's selector too.
func (a *Agent) addressed(s Spec) (named, spare bool) {
	named = slices.Contains(s.Agents, a.cfg.Name)
	spare = s.Kind == KindReplay && a.cfg.Labels.Matches(s.Selector) && slices.Contains(a.cfg.Allow, KindReplay)
	return named, spare
}

func (a *Agent) handleSpec(ctx context.Context, jr JobRecord) {
	var peek Spec
	if err := json.Unmarshal(jr.Envelope.Payload, &peek); err != nil || peek.JobID == "" {
		return
	}
	named, spare := a.addressed(peek)
	if !named && !spare {
		return
	}
	id := peek.JobID
	// Already handled (this record, before a restart)?
	mine := a.myStatuses(id)
	for _, s := range mine {
		// (A submitter's give-up status names no offset: not a run.)
		if s.SpecOffset == jr.Offset && !gaveUp(s) {
			if !s.State.Final() || s.State == Lost {
				a.rememberSpec(jr, peek)
			}
			if s.Shard != nil {
				a.resumeShard(ctx, jr, *s.Shard)
			}
			return
		}
	}
	verified := false
	refuse := func(reason string) {
		if !named {
			return
		}
		a.cfg.Metrics.refused(reason)
		// Anyone who writes to the jobs topic can publish a spec that
		// does not verify, or a copy of a signed one: their refusals
		// are rate-limited (counted when held back). The record the
		// job's submitter named as its spec is always answered (signed
		// by a key this agent does not trust, say).
		st := Status{JobID: id, Kind: peek.Kind, Agent: a.cfg.Name, State: Refused, Reason: reason, SpecOffset: jr.Offset, Unverified: !verified}
		if (!verified && !a.isJobSpec(id, jr.Offset)) || a.isCopy(id, jr.Offset) {
			what := "spec of job " + id + " at offset " + strconv.FormatInt(jr.Offset, 10)
			if !a.takeRefusalToken() {
				// One read of the job's status (it may have changed since
				// the checks above): a status naming this record makes it
				// the job's own spec, answered; a PENDING one does not name
				// its spec yet, so the refusal waits for it (retryHeld).
				js, ok := a.bus.Status(jobKey(id))
				switch {
				case ok && js.State != Pending && js.SpecOffset == jr.Offset:
				case ok && js.State == Pending && a.holdRefusal(heldRefusal{st: st, peek: peek, what: what, since: time.Now()}):
					return
				default:
					a.suppressed(what)
					return
				}
			}
		}
		a.publishRefusal(ctx, st)
		// An unverified spec says nothing true about the job it names (its
		// agents, kind, shards): anyone who writes to the jobs topic can
		// publish one under a running job's ID. The job is settled from it
		// only when the submitter recorded this very record as the job's
		// spec (a spec signed by a key this agent does not trust).
		if !verified && !a.isJobSpec(id, jr.Offset) {
			return
		}
		a.finishJob(ctx, peek)
	}
	var spec Spec
	if err := jr.Envelope.Open(a.cfg.Trust, &spec); err != nil {
		refuse(err.Error())
		return
	}
	verified = true
	if named && spec.Kind == KindRecord {
		// The submitter marked this agent FAILED when it did not answer in
		// time (it was stopped, say): the others went on without it. That
		// status is this agent's too (in mine), but no run of it. (Not
		// told by SpecOffset 0: a spec may sit at offset 0.)
		if s, ok := a.bus.Status(agentKey(id, a.cfg.Name)); ok && s.State.Final() && gaveUp(s) {
			a.log.Warn("job not run: the submitter gave up on this agent", "job", id, "state", s.State, "reason", s.Reason)
			return
		}
	}
	if err := checkLifetime(spec.IssuedAt, spec.ExpiresAt, time.Now(), a.cfg.MaxSpecTTL); err != nil {
		refuse(err.Error())
		return
	}
	// What this agent did with the job's ID before: refusals of specs
	// that did not verify (anyone may publish one ahead of a job) do not
	// count.
	if i := slices.IndexFunc(mine, func(s Status) bool { return !s.Unverified }); i >= 0 {
		refuse(fmt.Sprintf("replayed: job %s was already taken by this agent (spec at offset %d); a job runs once", id, mine[i].SpecOffset))
		return
	}
	if a.taken.took(id) {
		// Its statuses are gone from the status topic (deleted: anyone
		// who may write it can), not from this agent's memory.
		refuse(fmt.Sprintf("replayed: job %s was already taken by this agent (its work directory records it in %s, though its statuses are gone from %s); a job runs once", id, filepath.Base(a.taken.path), StatusTopic))
		return
	}
	if off, known := specOffset(a.bus, id); known && off != jr.Offset {
		refuse(fmt.Sprintf("replayed: job %s was submitted at offset %d; this copy (offset %d) is refused", id, off, jr.Offset))
		return
	}
	if err := a.checkContent(spec); err != nil {
		refuse(err.Error())
		return
	}
	if named {
		if twin, ok := a.twin(time.Now()); ok {
			refuse(fmt.Sprintf("two agent processes are named %s (this one: labels %s; the other: %s): neither is known to be the one the submitter chose, so this one takes no new job until one of them stops",
				a.cfg.Name, a.cfg.Labels.String(), describeBeat(twin)))
			return
		}
	}
	if !a.cfg.Labels.Matches(spec.Selector) {
		// The spec names this agent, chosen by the labels in heartbeats of
		// its name: another process's, or this one's before a restart.
		refuse(fmt.Sprintf("the job's selector %s does not match this agent's labels %s (the submitter chose %s by the labels of another agent process of that name, or of this one before a restart)",
			spec.Selector.String(), a.cfg.Labels.String(), a.cfg.Name))
		return
	}
	a.rememberSpec(jr, spec)
	if !named {
		return // a spare: it may take a lost shard later
	}
	if err := a.taken.take(id, spec.ExpiresAt); err != nil {
		refuse(err.Error())
		return
	}
	switch spec.Kind {
	case KindRecord:
		a.start(ctx, spec, jr.Offset, -1, 0, nil, time.Time{})
	case KindReplay:
		for i, name := range spec.Agents {
			if name == a.cfg.Name {
				a.start(ctx, spec, jr.Offset, i, 0, nil, time.Time{})
			}
		}
	}
}

// checkContent refuses a spec whose scenario does not match its sha256, or
// of a kind this agent does not allow: what a take checks of the spec's
// content, for a first take (handleSpec) and a resume after a restart.
func (a *Agent) checkContent(spec Spec) error {
	if spec.ScenarioHashMismatch() {
		return errors.New("scenario text does not match its sha256")
	}
	if !slices.Contains(a.cfg.Allow, spec.Kind) {
		return fmt.Errorf("kind %s not allowed on this agent (it allows %s)", spec.Kind, strings.Join(a.cfg.Allow, ", "))
	}
	return nil
}

// isJobSpec reports whether the job's status (the submitter's ASSIGNED)
// names the jobs-topic record at offset as the job's spec. It does not wait
// for ASSIGNED (a forged spec reusing the ID of a job left PENDING would
// hold the agent assignWait each): when it is not there yet, the submitter
// settles the job once every agent answered (Client.finishIfDone).
func (a *Agent) isJobSpec(id string, offset int64) bool {
	off, known := specOffset(a.bus, id)
	return known && off == offset
}

// publishRefusal logs and publishes the refusal st of the spec at
// st.SpecOffset.
func (a *Agent) publishRefusal(ctx context.Context, st Status) {
	a.log.Warn("job refused", "job", st.JobID, "reason", st.Reason)
	if err := a.bus.PublishStatus(ctx, refusedKey(st.JobID, a.cfg.Name, st.SpecOffset), st); err != nil {
		a.log.Warn("refusal not published", "job", st.JobID, "err", err)
	}
}

// gaveUp reports whether s is the status a submitter wrote for an agent
// that did not answer in time: marked so (GaveUp), or, from a submitter
// older than that mark, its reason (no agent writes that one).
func gaveUp(s Status) bool {
	return s.GaveUp || s.State == Failed && s.SpecOffset == 0 && strings.HasPrefix(s.Reason, "did not answer within ")
}

// isCopy reports whether the job's status names another jobs-topic record
// than the one at offset as the job's spec: this one is a copy.
func (a *Agent) isCopy(id string, offset int64) bool {
	off, known := specOffset(a.bus, id)
	return known && off != offset
}

// specOffset returns the jobs-topic offset of a job's spec, as its status
// records it (known once the submitter wrote ASSIGNED: 0 is an offset too).
func specOffset(b *Bus, id string) (int64, bool) {
	js, ok := b.Status(jobKey(id))
	if !ok || js.State == Pending {
		return 0, false
	}
	return js.SpecOffset, true
}

// resumeShard re-runs, after a restart, a shard this agent was running:
// from its last resume point, on the same timeline, as a spare would.
//
// A resume is a new take of the spec (the run that took it ended with the
// process; only the status topic, which anyone who writes to Kafka can
// write, says the shard was this agent's), so the spec's lifetime is
// checked as a fresh claim checks it (checkLifetime, checkContent): a spec
// that expired since, is valid for longer than this agent's --max-spec-ttl
// now, or is of a kind the agent no longer allows, is not resumed, and the
// shard ends FAILED saying why (refuseResume).
func (a *Agent) resumeShard(ctx context.Context, jr JobRecord, shard int) {
	key := shardKey(jobIDOf(jr), shard)
	if !a.resumable[key] {
		return
	}
	// A shard not resumed stays resumable: recoverStale fails it.
	var spec Spec
	if err := jr.Envelope.Open(a.cfg.Trust, &spec); err != nil {
		return
	}
	if !a.cfg.Labels.Matches(spec.Selector) {
		a.log.Warn("shard not resumed: the job's selector does not match this agent's labels (restarted with other labels)", "job", spec.JobID, "shard", shard,
			"selector", spec.Selector.String(), "labels", a.cfg.Labels.String())
		return
	}
	delete(a.resumable, key)
	cur, ok := a.bus.Status(key)
	js, _ := a.bus.Status(jobKey(spec.JobID))
	if !ok || cur.Agent != a.cfg.Name || cur.State.Final() || js.State.Final() || a.cancelled(spec.JobID) {
		return
	}
	err := checkLifetime(spec.IssuedAt, spec.ExpiresAt, time.Now(), a.cfg.MaxSpecTTL)
	if err == nil {
		err = a.checkContent(spec) // restarted with another --allow, say
	}
	if err != nil {
		a.refuseResume(ctx, spec, shard, cur, err)
		return
	}
	lost := Status{JobID: spec.JobID, Kind: spec.Kind, Agent: a.cfg.Name, Shard: &shard, State: Lost, Attempt: cur.Attempt, SpecOffset: jr.Offset,
		Reason: "agent " + a.cfg.Name + " restarted; re-run here"}
	lost.Progress = cur.Progress
	resume := resumeOf(cur.Progress)
	lost.Reason += ", resuming " + resume.String()
	_ = a.bus.PublishStatus(ctx, lostKey(spec.JobID, shard, cur.Attempt), lost)
	a.log.Warn("resuming a shard after a restart", "job", spec.JobID, "shard", shard)
	a.start(ctx, spec, jr.Offset, shard, cur.Attempt+1, resume, cur.At)
}

// refuseResume ends a shard this agent was running when it restarted, and
// does not resume (why): FAILED, with its last progress, saying why, and
// the job with it once its other parts are final. The shard ran, so it is
// no REFUSED part (which never ran).
func (a *Agent) refuseResume(ctx context.Context, spec Spec, shard int, cur Status, why error) {
	reason := fmt.Sprintf("agent %s restarted while the shard was %s and refused to resume it: %v", a.cfg.Name, cur.State, why)
	if errors.Is(why, ErrExpired) {
		reason += " (a resume takes the spec again: submit with a --ttl that covers the replay for a restarted agent to resume it)"
	}
	a.cfg.Metrics.refused(reason)
	a.log.Warn("shard not resumed after a restart", "job", spec.JobID, "shard", shard, "reason", why)
	key := shardKey(spec.JobID, shard)
	st := cur
	st.State, st.Reason, st.At = Failed, a.secrets.mask(reason), time.Time{}
	if err := a.bus.PublishStatus(ctx, key, st); err != nil {
		a.log.Warn("status not published", "key", key, "state", st.State, "err", err)
		return
	}
	a.cfg.Metrics.finished(Failed)
	a.finishJob(ctx, spec)
}

// jobIDOf reads the job ID of a jobs-topic record from its key.
func jobIDOf(jr JobRecord) string {
	_, id, _ := strings.Cut(jr.Key, "/")
	return id
}

// ScenarioHashMismatch reports whether the spec's scenario text does not
// hash to its SHA256.
func (s Spec) ScenarioHashMismatch() bool { return ScenarioHash(s.Scenario) != s.SHA256 }

func (a *Agent) rememberSpec(jr JobRecord, s Spec) {
	if s.Kind != KindReplay {
		return
	}
	a.mu.Lock()
	a.specs[s.JobID] = accepted{spec: s, offset: jr.Offset}
	a.mu.Unlock()
}

// myStatuses returns this agent's status records of a job (refusals too).
func (a *Agent) myStatuses(id string) []Status {
	var out []Status
	for _, s := range a.bus.StatusPrefix(jobKey(id) + "/") {
		if s.Agent == a.cfg.Name {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SpecOffset < out[j].SpecOffset })
	return out
}

func (a *Agent) runKey(id string, shard int) string {
	if shard < 0 {
		return agentKey(id, a.cfg.Name)
	}
	return shardKey(id, shard)
}

// start runs one record job or one replay shard in the background.
//
// resume is nil for a first run; for a re-run it is where to resume (At 0:
// from the start), and what it sends may have been sent before.
func (a *Agent) start(ctx context.Context, spec Spec, offset int64, shard, attempt int, resume *Resume, lastSeen time.Time) {
	key := a.runKey(spec.JobID, shard)
	rctx, cancel := context.WithCancel(ctx)
	a.mu.Lock()
	if _, busy := a.runs[key]; busy {
		a.mu.Unlock()
		cancel()
		return
	}
	r := &agentRun{jobID: spec.JobID, shard: shard, cancel: cancel, slot: make(chan struct{})}
	a.runs[key] = r
	if a.active < a.cfg.MaxConcurrent && len(a.queue) == 0 {
		a.active++
		r.granted = true
		close(r.slot)
		a.cfg.Metrics.running(1)
	} else {
		r.queued = true
		a.queue = append(a.queue, r)
		a.cfg.Metrics.queued(1)
	}
	wasCancelled := a.cancel[spec.JobID]
	a.mu.Unlock()
	if wasCancelled {
		cancel()
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.runs, key)
			a.release(r)
			a.mu.Unlock()
			cancel()
		}()
		a.execute(rctx, spec, offset, shard, attempt, resume, lastSeen, key, r)
	}()
}

// claimWrites gives r the files it writes, unless another run of this
// agent writes one of them: it returns that file, as the scenario names
// it, and that run. Relative paths resolve in --work-dir, so two jobs
// naming out.gor would write one file. A run's files are free again when
// it ends (it leaves a.runs).
func (a *Agent) claimWrites(r *agentRun, files []scenario.Path) (string, *agentRun) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, f := range files {
		for _, other := range a.runs {
			if other != r && slices.Contains(other.writes, f.Abs) {
				return f.Raw, other
			}
		}
	}
	for _, f := range files {
		r.writes = append(r.writes, f.Abs)
	}
	return "", nil
}

// grant gives the slots freed to the runs queued first (a.mu held).
func (a *Agent) grant() {
	for a.active < a.cfg.MaxConcurrent && len(a.queue) > 0 {
		r := a.queue[0]
		a.queue = a.queue[1:]
		a.active++
		r.granted = true
		close(r.slot)
		a.cfg.Metrics.queued(-1)
		a.cfg.Metrics.running(1)
	}
}

// release frees an ended run's slot, or its place in the queue, and gives
// the slot to the next (a.mu held).
func (a *Agent) release(r *agentRun) {
	if r.granted {
		r.granted = false
		a.active--
		a.cfg.Metrics.running(-1)
	} else if i := slices.Index(a.queue, r); i >= 0 {
		a.queue = slices.Delete(a.queue, i, i+1)
		a.cfg.Metrics.queued(-1)
	}
	a.grant()
}

// awaitSlot waits until a queued run may start; false when ctx ended
// first (a cancel, the agent's stop).
func awaitSlot(ctx context.Context, r *agentRun) bool {
	select {
	case <-r.slot:
		return ctx.Err() == nil
	case <-ctx.Done():
		return false
	}
}

// execute loads, checks and runs one job on this agent, publishing its
// states: ARMED (compiled, connected), RUNNING, then a final state.
//
// Past its checks (what it refuses, it refuses at once), a run beyond the
// agent's MaxConcurrent is QUEUED until a run ends.
func (a *Agent) execute(ctx context.Context, spec Spec, offset int64, shard, attempt int, resume *Resume, lastSeen time.Time, key string, r *agentRun) {
	pub := a.pub // a cancelled run still reports how it ended
	st := Status{JobID: spec.JobID, Kind: spec.Kind, Agent: a.cfg.Name, SpecOffset: offset, Attempt: attempt}
	if shard >= 0 {
		st.Shard = &shard
	}
	logs := newMaskedLog(a.secrets)
	publish := func(s Status) {
		s.At = time.Time{}
		// What is published never shows the agent's --var values: a
		// reason may quote a value read from one (a target's host, an
		// assertion's text).
		s.Reason = logs.mask(s.Reason)
		if s.Result != nil && len(s.Result.Failed) > 0 {
			r := *s.Result
			r.Failed = make([]string, len(s.Result.Failed))
			for i, f := range s.Result.Failed {
				r.Failed[i] = logs.mask(f)
			}
			s.Result = &r
		}
		pctx, cancel := context.WithTimeout(pub, statusPublishWait)
		defer cancel()
		if err := a.bus.PublishStatus(pctx, key, s); err != nil {
			a.log.Warn("status not published", "key", key, "state", s.State, "err", err)
		}
	}
	fail := func(state State, reason string) {
		reason = logs.mask(reason)
		st.State, st.Reason, st.Log = state, reason, logs.String()
		publish(st)
		a.log.Warn("job not run", "job", spec.JobID, "shard", shard, "state", state, "reason", reason)
		a.cfg.Metrics.finished(state)
		a.finishJob(pub, spec)
	}
	set := slices.Clone(spec.Set)
	if spec.Replay != nil {
		set = append(set, shardSets(spec.Job, JobNames([]byte(spec.Scenario)), spec.Replay)...)
	}
	file := spec.File
	if file == "" {
		file = "scenario.yaml"
	}
	// The scenario is loaded as a file of --work-dir: its relative paths,
	// read (a pcap, a gor file, TLS files) or written (reports), resolve
	// there, where the agent's files are.
	s, err := a.cfg.Load(filepath.Join(a.cfg.WorkDir, filepath.Base(file)), []byte(spec.Scenario), set, a.cfg.Vars, a.cfg.WorkDir)
	if err != nil {
		fail(Refused, "invalid scenario: "+logs.mask(err.Error()))
		return
	}
	j := s.Jobs[spec.Job]
	if j == nil {
		fail(Refused, fmt.Sprintf("scenario has no job %q", spec.Job))
		return
	}
	kind := KindRecord
	if j.Sink.Kind == scenario.SinkHTTP {
		kind = KindReplay
	}
	if kind != spec.Kind {
		fail(Refused, fmt.Sprintf("job %q is a %s job, the spec says %s", spec.Job, kind, spec.Kind))
		return
	}
	if name := readsWindow(j.Source); spec.Replay != nil && spec.Replay.Window != "" && name != "" && name != spec.Replay.Window {
		// The shards' offset ranges are those of the plan's window: read
		// in another window's, they would send what the two share (often
		// nothing) and succeed.
		fail(Refused, fmt.Sprintf("the job reads window %q here, the job's signed plan cut its shards from window %q: its offsets are not this window's", name, spec.Replay.Window))
		return
	}
	if kind == KindReplay {
		targets := slices.Clone(j.Sink.HTTP.Targets)
		what := "target"
		if j.Compare != nil && j.Compare.Noise != nil {
			// The noise target is sent every request too.
			targets = append(targets, j.Compare.Noise)
		}
		for i, t := range targets {
			if t.Builtin != "" {
				continue
			}
			if i == len(j.Sink.HTTP.Targets) {
				what = "compare noise target"
			}
			if !TargetAllowed(TargetHostPort(t.URL), a.cfg.AllowTargets) {
				fail(Refused, fmt.Sprintf("%s %q (%s) is outside this agent's --allow-targets (%s)", what, t.Name, t.URL.Host, strings.Join(a.cfg.AllowTargets, ", ")))
				return
			}
		}
	}
	if r.queued {
		// Still waiting? A slot may have come while the scenario was
		// checked: then it is not said to be queued, with stale counts.
		a.mu.Lock()
		granted, running, ahead := r.granted, a.active, max(slices.Index(a.queue, r), 0)
		a.mu.Unlock()
		if !granted {
			st.State = Queued
			st.Reason = fmt.Sprintf("waiting: %d runs going on this agent (its --max-concurrent %d), %d queued ahead of this one", running, a.cfg.MaxConcurrent, ahead)
			publish(st)
			a.log.Info("job queued", "job", spec.JobID, "shard", shard, "running", running, "ahead", ahead)
		}
		if !awaitSlot(ctx, r) {
			if a.cancelled(spec.JobID) {
				fail(Cancelled, cancelledByPrefix+a.canceller(spec.JobID)+queuedSuffix)
			} else {
				fail(Cancelled, "agent stopped while it was queued")
			}
			return
		}
		st.Reason = ""
		a.log.Info("job dequeued", "job", spec.JobID, "shard", shard)
	}
	if path, other := a.claimWrites(r, j.WrittenFiles()); other != nil {
		what := "job " + other.jobID
		if other.shard >= 0 {
			what += fmt.Sprintf(" (shard %d)", other.shard)
		}
		fail(Refused, fmt.Sprintf("it writes %s, which %s is writing on this agent now: two runs would write one file; give it another path (--set) or submit it when that one has ended", path, what))
		return
	}
	var outcome *engine.JobOutcome
	kcfg := a.cfg.Kafka
	opts := engine.Options{
		Jobs:    []string{spec.Job},
		DataDir: filepath.Join(a.cfg.WorkDir, "data"),
		// A broker outage spools under the work dir, as every file of
		// the job: not in the agent's working directory, which other
		// agents of the host may share (their spools of one recording
		// would collide there) and the agent may not be able to write.
		SpoolDir: filepath.Join(a.cfg.WorkDir, "data", "spool"),
		Kafka:    &kcfg,
		Out:      logs,
		Err:      logs,
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Progress: engine.ProgressNever,
		Host:     a.cfg.Name,
		// A saved window's topic comes from the catalog at run time,
		// past the scenario's checks (checkTopics); a signed replay plan
		// names the one its window was on when submitted.
		DeniedTopic: planTopic(spec.Replay, s.Kafka.CatalogTopic),
		OnJobDone: func(o engine.JobOutcome) {
			outcome = &o
		},
	}
	var point atomic.Pointer[engine.ResumePoint]
	opts.OnResumePoint = func(p engine.ResumePoint) { point.Store(&p) }
	// A replay shard is ARMED until its start instant (the spec's one
	// start-at: OnStart), RUNNING from then; a record job runs at once.
	// The progress reports and the start share st (stMu); the start is
	// published off the replay's path (its first request goes now), and
	// before the run's end is (startWG).
	sharded := spec.Replay != nil && shard >= 0 && shard < len(spec.Replay.Shards)
	var (
		stMu    sync.Mutex
		startWG sync.WaitGroup
		started atomic.Bool
	)
	started.Store(!sharded)
	opts.OnStart = func(string) {
		if !sharded || started.Swap(true) {
			return
		}
		startWG.Add(1)
		go func() {
			defer startWG.Done()
			stMu.Lock()
			defer stMu.Unlock()
			st.State = Running
			publish(st)
		}()
	}
	opts.OnProgress = func(job, line string) {
		stMu.Lock()
		defer stMu.Unlock()
		st.State, st.Progress, st.Log = Armed, &Progress{Line: logs.mask(line)}, ""
		if started.Load() {
			st.State = Running
		}
		if p := point.Load(); p != nil {
			st.Progress.Resume = &Resume{At: p.Position, Time: p.Time, Order: p.Order}
		}
		publish(st)
	}
	if resume != nil {
		// The lost agent may have sent until its next heartbeat was due.
		opts.DuplicatesBefore = lastSeen.Add(HeartbeatInterval)
		opts.Resume = &engine.ResumePoint{}
		if j.Loop.Count > 1 || j.Loop.For > 0 {
			fmt.Fprintf(logs, "shard re-run from its start: a looping replay cannot resume mid-way\n")
		} else {
			opts.Resume.Position, opts.Resume.Order = resume.At, resume.Order
			fmt.Fprintf(logs, "shard resumed %s on the same timeline (requests answered before it are not sent again)\n", resume)
		}
	}
	if spec.Recording != nil {
		opts.RecordingID = spec.Recording.ID
		opts.NoSaveWindow = true
	}
	if sharded {
		opts = shardOptions(opts, spec.Replay, spec.Replay.Shards[shard])
		if note := NoTimeline(spec); note != "" {
			fmt.Fprintf(logs, "warning: %s\n", note)
		}
	}
	plan, err := engine.Compile(s, opts)
	if err != nil {
		fail(Refused, "invalid scenario: "+logs.mask(err.Error()))
		return
	}
	st.State = Armed
	publish(st)
	if ctx.Err() != nil {
		fail(Cancelled, "cancelled before it started")
		return
	}
	if !sharded {
		st.State = Running
		publish(st)
	}
	a.log.Info("job running", "job", spec.JobID, "kind", spec.Kind, "shard", shard)
	runCtx, endRun := ctx, context.CancelFunc(func() {})
	if a.cfg.MaxRun > 0 {
		runCtx, endRun = context.WithTimeoutCause(ctx, a.cfg.MaxRun, errMaxRun)
	}
	runErr := plan.Run(runCtx)
	startWG.Wait()
	overRun := ctx.Err() == nil && errors.Is(context.Cause(runCtx), errMaxRun)
	endRun()
	st.Reason, st.Progress = "", nil
	st.Result = resultOf(outcome)
	if st.Result != nil && sharded {
		st.Result.Timeline = NoTimeline(spec)
	}
	var assertErr *engine.AssertionError
	switch {
	case a.cancelled(spec.JobID):
		st.State, st.Reason = Cancelled, cancelledByPrefix+a.canceller(spec.JobID)
	case overRun:
		st.State, st.Reason = Cancelled, fmt.Sprintf("stopped: it ran for this agent's --max-run %s", a.cfg.MaxRun)
	case runErr == nil, errors.Is(runErr, engine.ErrInterrupted) && ctx.Err() != nil:
		st.State = Succeeded
	case errors.As(runErr, &assertErr) && spec.Kind == KindReplay && st.Result != nil && st.Result.State != nil:
		// A shard's own summary is no verdict: the job's assertions are
		// evaluated on the shards' merged summary (finishJob).
		st.State = Succeeded
		st.Result.Failed = nil
	case errors.As(runErr, &assertErr):
		st.State, st.Reason = AssertFailed, strings.Join(assertErr.Failed, "; ")
	case errors.Is(runErr, engine.ErrInvalid):
		st.State, st.Reason = Refused, "production guard or invalid job: "+logs.mask(runErr.Error())
	default:
		st.State, st.Reason = Failed, logs.mask(runErr.Error())
	}
	if ctx.Err() != nil && st.State == Succeeded && !a.cancelled(spec.JobID) {
		st.State, st.Reason = Cancelled, "agent stopped"
	}
	st.Log = logs.String()
	publish(st)
	a.cfg.Metrics.finished(st.State)
	a.log.Info("job finished", "job", spec.JobID, "shard", shard, "state", st.State, "reason", logs.mask(st.Reason))
	a.finishJob(pub, spec)
}

// cancelledWhileRunning reports whether a record job's part was stopped by
// the job's cancel while it ran (it has its result: it drained), not one
// cancelled before it started or while queued, nor one this agent stopped
// alone (its --max-run, its own stop), which leaves its host out of the
// rest of the recording.
func cancelledWhileRunning(p Status) bool {
	return p.State == Cancelled && p.Result != nil && strings.HasPrefix(p.Reason, cancelledByPrefix) && !strings.HasSuffix(p.Reason, queuedSuffix)
}

// The reasons of parts a cancel ended (runJob).
const (
	cancelledByPrefix = "cancelled by "
	queuedSuffix      = " while it was queued"
)

func resultOf(o *engine.JobOutcome) *Result {
	if o == nil {
		return nil
	}
	r := &Result{Counters: o.Counters, Failed: o.FailedAssertions, OnLoss: o.OnLoss}
	if o.Replay {
		s := o.Summary
		r.Sent, r.OK, r.Errors, r.Status, r.ErrorClasses = s.Sent, s.OK, s.Errors, s.Status, s.ErrorClasses
		r.LatencyP50, r.LatencyP90, r.LatencyP99 = Duration(s.Latency.P50), Duration(s.Latency.P90), Duration(s.Latency.P99)
		r.LatencyMax, r.LatenessMax = Duration(s.Latency.Max), Duration(s.Lateness.Max)
		r.Histogram, r.State, r.Asserts = s.Histogram, o.State, o.Asserts
		if !slices.Equal(o.AssertsShown, o.Asserts) {
			r.AssertsShown = o.AssertsShown
		}
		r.Diff = withoutExamples(o.Diff)
		r.Protocols, r.GRPC = o.Protocols, o.GRPC
		r.SourceGaps, r.NotSent = o.SourceGaps, o.NotSent
	} else {
		r.Requests, r.Responses, r.Written, r.NotWritten, r.Lost = o.Requests, o.Responses, o.Written, o.NotWritten, o.Lost
		r.FirstCapture, r.LastCapture, r.Destinations = o.FirstCapture, o.LastCapture, o.Destinations
	}
	return r
}

// acceptsLoss reports whether the job's runs read on-loss: warn (every
// part with a result: they run one scenario; one of an agent older than
// this replayctl, saying nothing, does not accept).
func acceptsLoss(parts []Status) bool {
	seen := false
	for _, p := range parts {
		if p.Result == nil {
			continue
		}
		if p.Result.OnLoss != "warn" {
			return false
		}
		seen = true
	}
	return seen
}

// finishJob is called by every run that ends: the run that finds every part
// of the job final publishes the job's own final status (and, for a record
// job, saves its one window). Two runs ending together may both do it; the
// window save is idempotent.
func (a *Agent) finishJob(ctx context.Context, spec Spec) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := a.bus.Sync(sctx); err != nil {
		a.log.Warn("job status not settled", "job", spec.JobID, "err", err)
		return
	}
	a.awaitAssigned(sctx, spec.JobID)
	if js, ok := a.bus.Status(jobKey(spec.JobID)); ok && js.State.Final() {
		return
	}
	parts := jobParts(a.bus, spec)
	for _, p := range parts {
		if !p.State.Final() {
			return
		}
	}
	js := Status{JobID: spec.JobID, Kind: spec.Kind, Agents: spec.Agents, Agent: a.cfg.Name}
	if prev, ok := a.bus.Status(jobKey(spec.JobID)); ok {
		js.SpecOffset = prev.SpecOffset
	}
	js.State, js.Reason = overall(parts)
	res := &Result{HostCounts: map[string]int64{}}
	ran := false
	for _, p := range parts {
		if p.Result == nil {
			continue
		}
		ran = true
		mergeResult(res, p.Result)
		if spec.Kind == KindRecord {
			res.HostCounts[p.Agent] += p.Result.Requests
		}
	}
	if ran && spec.Kind == KindReplay {
		merged, err := MergeShards(spec.Job, parts)
		var differ *AssertsDifferError
		switch {
		case errors.As(err, &differ):
			// No verdict: the totals are shown, the job fails and says
			// which assertion read what on which shard.
			res = merged
			res.Partial = append(lostResults(a.bus, spec.JobID, parts), diffsMissing(parts)...)
			if js.State == Succeeded {
				js.State, js.Reason = Failed, differ.Error()
			} else {
				js.Reason += "; " + differ.Error()
			}
		case err != nil:
			js.State, js.Reason = Failed, "shard results not merged: "+err.Error()
		default:
			res = merged
			res.Partial = append(lostResults(a.bus, spec.JobID, parts), diffsMissing(parts)...)
			switch {
			case js.State == Succeeded && len(res.Partial) > 0 && !acceptsLoss(parts):
				// Loud about loss: totals that miss results fail the job,
				// as a run's own loss fails it, unless the job says
				// on-loss: warn; an assertion that failed on them too
				// does not hide it (a run that lost anything exits 1
				// whatever its assertions say), and is told after it.
				js.State, js.Reason = Failed, "the merged results are partial: "+strings.Join(res.Partial, "; ")+"; on-loss: warn accepts partial totals"
				if len(res.Failed) > 0 {
					js.Reason += "; assertions failed on them: " + strings.Join(res.Failed, "; ")
				}
			case js.State == Succeeded && len(res.Failed) > 0:
				js.State, js.Reason = AssertFailed, strings.Join(res.Failed, "; ")
			}
		}
	}
	if ran && spec.Kind == KindRecord {
		// A host whose part did not succeed (failed, lost, refused)
		// recorded part of its traffic or none: the recording lacks it,
		// and its window says so (partial). One the job's cancel stopped
		// while it ran drained what it had captured, as every host did
		// then: the window ends there, lacking nothing of it (what it
		// could not write, its result's lost says).
		var failed int64
		for _, p := range parts {
			if p.State != Succeeded && !cancelledWhileRunning(p) {
				failed++
			}
		}
		if failed > 0 {
			if res.Lost == nil {
				res.Lost = map[string]int64{}
			}
			res.Lost[catalog.HostsFailed] = failed
			res.Lost[catalog.LostTotal] = catalog.LossTotal(res.Lost)
		}
	}
	if ran && spec.Kind == KindRecord && spec.Recording != nil && spec.Recording.Window != "" {
		name, err := a.saveWindow(sctx, spec, parts, res)
		if err != nil {
			js.State, js.Reason = Failed, "window not saved: "+err.Error()
		} else {
			res.Window = name
		}
	}
	// The merged assertions' verdicts and the parts' reasons may quote
	// values of this agent's --var (the parts' own are masked by theirs).
	js.Reason = a.secrets.mask(js.Reason)
	for i, f := range res.Failed {
		res.Failed[i] = a.secrets.mask(f)
	}
	if spec.Kind == KindReplay && ran {
		res.Timeline = NoTimeline(spec)
	}
	js.Result = res
	if err := a.bus.PublishStatus(sctx, jobKey(spec.JobID), js); err != nil {
		a.log.Warn("job status not published", "job", spec.JobID, "err", err)
	}
}

// assignWait bounds how long a job's final status waits for the
// submitter's ASSIGNED (see awaitAssigned).
const assignWait = 10 * time.Second

// awaitAssigned waits, up to assignWait, while the job's status is the
// submitter's first write (PENDING): its second (ASSIGNED, written once the
// spec is on the jobs topic) would replace a final status written before
// it, and the job would never end. A submitter that died between the two
// does not hold the job longer than that.
func (a *Agent) awaitAssigned(ctx context.Context, jobID string) {
	deadline := time.NewTimer(assignWait)
	defer deadline.Stop()
	for {
		changed := a.bus.Changed()
		if js, ok := a.bus.Status(jobKey(jobID)); !ok || js.State != Pending {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			a.log.Warn("the submitter did not mark the job ASSIGNED; writing its final status anyway", "job", jobID, "waited", assignWait)
			return
		case <-ctx.Done():
			return
		}
	}
}

// jobParts returns a job's current per-agent or per-shard statuses; a part
// not yet reported is PENDING. An agent's refusal counts only when it
// refused the job's spec (the offset in the job's status, once known), not
// a copy or a forgery published under the job's ID later.
func jobParts(b *Bus, spec Spec) []Status {
	var out []Status
	off, known := specOffset(b, spec.JobID)
	refusal := func(name string) (Status, bool) {
		var s Status
		ok := false
		for _, r := range b.StatusPrefix(jobKey(spec.JobID) + "/refused/" + name + "/") {
			if !known || r.SpecOffset == off {
				s, ok = r, true
			}
		}
		return s, ok
	}
	if spec.Kind == KindRecord {
		for _, name := range spec.Agents {
			s, ok := b.Status(agentKey(spec.JobID, name))
			if !ok {
				// A refusal is this agent's final word.
				s, ok = refusal(name)
			}
			if !ok {
				s = Status{JobID: spec.JobID, Agent: name, State: Pending}
			}
			out = append(out, s)
		}
		return out
	}
	for i, name := range spec.Agents {
		s, ok := b.Status(shardKey(spec.JobID, i))
		if !ok {
			s, ok = refusal(name)
		}
		if !ok {
			s = Status{JobID: spec.JobID, Agent: name, State: Pending}
		}
		out = append(out, s)
	}
	return out
}

// overall is a job's state from its parts' final states.
func overall(parts []Status) (State, string) {
	rank := map[State]int{Succeeded: 0, AssertFailed: 1, Cancelled: 2, Refused: 3, Failed: 4}
	worst, why := Succeeded, []string{}
	for _, p := range parts {
		if rank[p.State] > rank[worst] {
			worst = p.State
		}
		if p.State != Succeeded && p.Reason != "" {
			who := p.Agent
			if p.Shard != nil {
				who = fmt.Sprintf("shard %d on %s", *p.Shard, p.Agent)
			}
			why = append(why, who+": "+p.Reason)
		}
	}
	if worst == Refused {
		worst = Failed
	}
	return worst, strings.Join(why, "; ")
}

// mergeResult adds a record job's per-agent results (replay results are
// merged exactly by MergeShards).
func mergeResult(dst, r *Result) {
	dst.Requests += r.Requests
	dst.Responses += r.Responses
	dst.Written += r.Written
	dst.NotWritten += r.NotWritten
	for cause, n := range r.Lost {
		if dst.Lost == nil {
			dst.Lost = map[string]int64{}
		}
		dst.Lost[cause] += n
	}
	for k, v := range r.Counters {
		if dst.Counters == nil {
			dst.Counters = map[string]int64{}
		}
		report.AddCounter(dst.Counters, k, v)
	}
	if !r.FirstCapture.IsZero() && (dst.FirstCapture.IsZero() || r.FirstCapture.Before(dst.FirstCapture)) {
		dst.FirstCapture = r.FirstCapture
	}
	if r.LastCapture.After(dst.LastCapture) {
		dst.LastCapture = r.LastCapture
	}
	for _, d := range r.Destinations {
		if !slices.Contains(dst.Destinations, d) {
			dst.Destinations = append(dst.Destinations, d)
		}
	}
}

// saveWindow saves the one window of a multi-host recording: from the
// offsets the submitter took before any agent wrote to the end offsets now
// that every agent flushed.
func (a *Agent) saveWindow(ctx context.Context, spec Spec, parts []Status, res *Result) (string, error) {
	rp := spec.Recording
	cat, err := catalog.Open(ctx, a.bus.Plain(), a.bus.Admin(), catalogTopic(spec.Scenario))
	if err != nil {
		return "", err
	}
	if old, err := cat.Get(ctx, rp.Window); err == nil {
		if old.RecordingID == rp.ID {
			return rp.Window, nil // saved by another agent that finished at the same time
		}
		return "", fmt.Errorf("window %q already exists (recording %s)", rp.Window, old.RecordingID)
	}
	end, err := catalog.EndOffsets(ctx, a.bus.Admin(), rp.Topic)
	if err != nil {
		return "", err
	}
	w := catalog.Window{
		Name: rp.Window, Topic: rp.Topic, Partitions: catalog.Between(rp.Start, end),
		RecordingID: rp.ID, Job: spec.Job, Requests: res.Requests, Responses: res.Responses, Messages: res.Written,
		HostRequests: res.HostCounts, StartedAt: res.FirstCapture, EndedAt: res.LastCapture,
		// As `replayctl run` saves it: the agents' counts added up.
		BogusTimes:   res.Counters["bogus-capture-times"],
		Destinations: slices.Sorted(slices.Values(res.Destinations)), CreatedAt: time.Now().UTC(),
	}
	for _, p := range parts {
		if p.Result != nil && p.Result.Requests > 0 {
			w.Hosts = append(w.Hosts, p.Agent)
		}
	}
	if res.Lost[catalog.LostTotal] > 0 {
		// One host's losses make the whole recording partial, as a
		// window saved by `replayctl run` is.
		w.Partial, w.Lost = true, maps.Clone(res.Lost)
	}

	// The other agents of the recording may be saving it at this moment.
	if err := cat.SaveOnce(ctx, w); err != nil {
		return "", err
	}
	a.log.Info("window saved", "window", rp.Window, "hosts", w.Hosts, "requests", w.Requests)
	return rp.Window, nil
}

// catalogTopic reads kafka.catalog-topic from a scenario's text (the
// default when absent or unreadable).
func catalogTopic(text string) string {
	if info, err := peekScenario([]byte(text)); err == nil && info.Kafka.CatalogTopic != "" {
		return info.Kafka.CatalogTopic
	}
	return catalog.DefaultTopic
}

// secretMasks are the forms of an agent's --var values that its published
// text never shows: each value as written, and escaped the ways a log line,
// JSON or a URL may show it, longest first. The values are fixed for the
// agent's life, so NewAgent builds them once. A nil *secretMasks masks
// nothing.
type secretMasks struct {
	masks   []string
	longest int // the longest mask's length
}

func newSecretMasks(vars map[string]string) *secretMasks {
	m := &secretMasks{}
	seen := map[string]bool{}
	for _, v := range vars {
		if len(v) < 4 {
			continue
		}
		q := strconv.Quote(v)
		j, _ := json.Marshal(v)
		// Its forms as an expression, JSON or a URL writes it, and as
		// base64 and hex encode it; every form in any letter case (an
		// expression's upper() or lower() of it, in an error's text).
		forms := []string{v, strings.ToUpper(v), strings.ToLower(v), q[1 : len(q)-1], string(j[1 : len(j)-1]), url.QueryEscape(v), url.PathEscape(v),
			base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
			base64.URLEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))}
		for _, f := range forms {
			f = lowerASCII(f)
			if !seen[f] {
				seen[f] = true
				m.masks = append(m.masks, f)
				m.longest = max(m.longest, len(f))
			}
		}
	}
	sort.Slice(m.masks, func(i, j int) bool { return len(m.masks[i]) > len(m.masks[j]) })
	return m
}

// mask replaces every form of a --var value in s, in any ASCII letter
// case.
func (m *secretMasks) mask(s string) string {
	if m == nil || len(m.masks) == 0 {
		return s
	}
	low := lowerASCII(s) // the same length as s: offsets match
	for _, f := range m.masks {
		if !strings.Contains(low, f) {
			continue
		}
		var b, bl strings.Builder
		for {
			i := strings.Index(low, f)
			if i < 0 {
				break
			}
			b.WriteString(s[:i])
			b.WriteString("***")
			bl.WriteString(low[:i])
			bl.WriteString("***")
			s, low = s[i+len(f):], low[i+len(f):]
		}
		b.WriteString(s)
		bl.WriteString(low)
		s, low = b.String(), bl.String()
	}
	return s
}

// lowerASCII lowers the ASCII letters of s only, so that it keeps its
// length (strings.ToLower does not, for some other letters).
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// maskedLog collects a run's output with the agent's --var values masked
// (secretMasks). The size limit never cuts a value in two unmasked halves:
// the text is kept whole a little past the limit, masked, then cut, and a
// cut that ends in the start of a value drops that start.
type maskedLog struct {
	*secretMasks
	mu        sync.Mutex
	buf       bytes.Buffer
	truncated bool
}

const maxLog = 64 << 10

func newMaskedLog(m *secretMasks) *maskedLog {
	if m == nil {
		m = &secretMasks{}
	}
	return &maskedLog{secretMasks: m}
}

func (l *maskedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit := maxLog + l.longest
	if room := limit - l.buf.Len(); room > 0 {
		l.buf.Write(p[:min(len(p), room)])
		if len(p) > room {
			l.truncated = true
		}
	} else if len(p) > 0 {
		l.truncated = true
	}
	return len(p), nil
}

func (l *maskedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.mask(l.buf.String())
	if !l.truncated && len(s) <= maxLog {
		return s
	}
	s = s[:min(len(s), maxLog)]
	// The cut may end inside a value, in any letter case: drop its start.
	low := lowerASCII(s)
	for _, m := range l.masks {
		for k := len(m) - 1; k > 0; k-- {
			if strings.HasSuffix(low, m[:k]) {
				low = low[:len(low)-k]
				s = s[:len(s)-k]
				break
			}
		}
	}
	return s + "\n[log truncated]\n"
}
