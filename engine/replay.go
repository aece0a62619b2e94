package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine/echo"
	"github.com/replayctl/replayctl/engine/pace"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/sources"
	"github.com/replayctl/replayctl/stats"
)

// targetTimeout is target t's timeout in http sink hs: the sink's timeout,
// when set, overrides every target's own.
func targetTimeout(hs *scenario.HTTPSink, t *scenario.Target) time.Duration {
	if hs.Timeout > 0 {
		return hs.Timeout
	}
	return t.Timeout
}

// sinkTarget is target t, sent to at u, for an http sink: its own TLS
// settings and the given timeout.
func sinkTarget(t *scenario.Target, u *url.URL, timeout time.Duration) httpsink.Target {
	return httpsink.Target{URL: u, Name: t.Name, Timeout: timeout,
		InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName, CAFile: t.CAFile.Abs}
}

// targetURL returns the URL to send to: a builtin target is started on
// first use and shared by the run's jobs.
func (r *runner) targetURL(t *scenario.Target) (*url.URL, error) {
	if t.Builtin == "" {
		return t.URL, nil
	}
	if t.Builtin != "echo" {
		return nil, fmt.Errorf("%s: unknown builtin target %q", t.Pos, t.Builtin)
	}
	e, ok := r.echos[t.Name]
	if !ok {
		var err error
		if e, err = echo.Start(""); err != nil {
			return nil, err
		}
		r.echos[t.Name] = e
		r.log.Info("builtin:echo target started", "target", t.Name, "url", e.URL())
	}
	return url.Parse(e.URL())
}

// targetAddrs resolves a target URL to the IP:port pairs it reaches.
func targetAddrs(ctx context.Context, u *url.URL) ([]netip.AddrPort, error) {
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, err := net.LookupPort("tcp", port)
	if err != nil {
		return nil, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", u.Hostname(), err)
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
	}
	return out, nil
}

// guard enforces the safety rules before the first request: no denied
// target, and no target the traffic was captured from unless allowed.
// (guard.go says what counts as the same address.)
type guard struct {
	ctx context.Context
	h   *hostGuard // nil: allow-capture-hosts
}

func (r *runner) newGuard(ctx context.Context, targets []*scenario.Target, urls []*url.URL, w *catalog.Window) (*guard, error) {
	safety := r.plan.scn.Safety
	g := &guard{ctx: ctx, h: newHostGuard()}
	for i, t := range targets {
		addrs, err := targetAddrs(ctx, urls[i])
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		for _, a := range addrs {
			if t.Builtin == "" && safety.Denies(a.Addr().String()) {
				return nil, invalidf("%s: target %q resolves to %s, refused by safety.deny-targets", t.Pos, t.Name, a.Addr())
			}
			g.h.addTarget(t.Name, a)
		}
		if len(addrs) > 0 {
			g.h.addName(t.Name, urls[i].Hostname(), addrs[0].Port())
		}
	}
	if safety.AllowCaptureHosts {
		g.h = nil
		return g, nil
	}
	if w != nil {
		isLocal := len(w.Hosts) == 0 || slices.Contains(w.Hosts, thisHost())
		for _, d := range w.Destinations {
			ap, err := netip.ParseAddrPort(d)
			if err != nil {
				continue
			}
			if name, hit := g.h.hit(ap, isLocal); hit {
				return nil, invalidf("target %q reaches %s, an address window %q was captured from (on this host, 0.0.0.0, loopback and this host's addresses are one); replaying there could hit production. Set safety.allow-capture-hosts: true if that is intended", name, ap, w.Name)
			}
		}
	}
	return g, nil
}

// check refuses a message captured from one of the targets.
func (g *guard) check(m *message.Message) error {
	if g.h == nil {
		return nil
	}
	if name, where, hit := g.h.messageHit(g.ctx, m); hit {
		return invalidf("target %q reaches %s, where this traffic was captured (its destination, or its Host header); replaying there could hit production. Set safety.allow-capture-hosts: true if that is intended", name, where)
	}
	return nil
}

// runReplay sends a source's requests to HTTP targets on the recorded
// timeline: filter → sample → rewrite → pace (speed, rate, max-gap, loop,
// amplify) → sender; results feed the stats (and the comparison).
func (r *runner) runReplay(ctx context.Context, jp *jobPlan) (*jobResult, error) {
	j := jp.job
	hs := j.Sink.HTTP
	res := &jobResult{job: j, replay: true, started: time.Now()}
	newSource, window, err := r.buildSource(ctx, j)
	if err != nil {
		return nil, err
	}
	if window != nil {
		res.window, res.windowNotes = &window.Window, window.notes
	}

	urls := make([]*url.URL, len(hs.Targets))
	targets := make([]httpsink.Target, len(hs.Targets))
	for i, t := range hs.Targets {
		u, err := r.targetURL(t)
		if err != nil {
			return nil, err
		}
		urls[i] = u
		targets[i] = sinkTarget(t, u, targetTimeout(hs, t))
	}
	g, err := r.newGuard(ctx, hs.Targets, urls, res.window)
	if err != nil {
		return nil, err
	}

	speed := 0.0
	if !j.Speed.Max {
		speed = j.Speed.Factor
	}
	var startAt time.Time
	if j.StartAt != nil {
		startAt = j.StartAt.Resolve(time.Now())
	}
	pacer, err := pace.New(pace.Config{Speed: speed, Rate: r.shard.rate(j.Rate.PerSecond), MaxGap: j.MaxGap, StartAt: r.shard.startAt(startAt, speed)})
	if err != nil {
		return nil, invalidf("%s: %w", j.Pos, err)
	}
	if o := r.plan.opts.TimelineOrigin; !o.IsZero() && !startAt.IsZero() && r.shard == nil {
		pacer.Align(startAt, o.UnixNano())
	}
	rec := stats.New(stats.Config{Origin: pacer.Start()})
	c := newCounters()
	cmp, err := newComparison(r, j, c)
	if err != nil {
		return nil, err
	}
	if cmp != nil && len(urls) == 1 && !hs.PreserveHost {
		cmp.sentHost = urls[0].Host
	}
	// The model: a paced replay sends each request at its instant (open
	// model: more connections when all are busy) unless workers is given;
	// speed max keeps a fixed pool of workers busy (closed model).
	open := (!pacer.Max() || j.Rate.PerSecond > 0) && !hs.WorkersSet
	var completed atomic.Int64
	wm := newWatermark()
	ps := &protocolStats{}
	sender, err := newReplaySender(hs, httpsink.Config{
		Targets:        targets,
		Mode:           hs.Mode,
		Workers:        hs.Workers,
		Open:           open,
		MaxConnections: hs.MaxConnections,
		MinConnections: hs.MinConnections,
		Stats:          stats.Config{Origin: pacer.Start()},
		Session:        hs.Session,
		PreserveHost:   hs.PreserveHost,
		KeepResponse:   cmp != nil,
		OnResult: func(res httpsink.Result) {
			if !res.Dropped() { // never sent (Ctrl-C): not a request of the run
				rec.Record(res.Result)
				completed.Add(1)
				wm.done(res.ID)
			}
			if cmp != nil {
				cmp.replayed(res)
			}
		},
	}, ps, r.log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
	}
	if open {
		if n := sender.Stats()["max-connections"]; n > 0 && n < int64(hs.MaxConnections) {
			r.log.Warn("the open model's connections are capped by the file-descriptor limit", "job", j.Name, "max-connections", n, "asked", hs.MaxConnections)
		}
	}
	if open && hs.MinConnections > 0 {
		t0 := time.Now()
		n, asked, err := sender.Preconnect(ctx)
		if err != nil && ctx.Err() == nil {
			// Not fatal: the requests to a target that cannot be reached
			// fail one by one, counted, as they would without this.
			r.log.Warn("could not open every connection ahead", "job", j.Name, "open", n, "asked", asked, "err", err)
		} else {
			r.log.Info("connections opened ahead", "job", j.Name, "open", n, "took", time.Since(t0).Round(time.Millisecond))
		}
	}
	// The job's context carries stop.after: it must also end a wait for
	// the next scheduled send, not only the source.
	jctx, cancel := jobContext(ctx, j)
	defer cancel()
	if j.Loop.For > 0 {
		// loop: {for: D} ends the replay at D, even in the middle of a pass
		// (a long recording would otherwise run far past D).
		var cancelFor context.CancelFunc
		jctx, cancelFor = context.WithTimeout(jctx, j.Loop.For)
		defer cancelFor()
	}
	// sendCtx bounds the wait for a request's instant and its send, and
	// its end (Ctrl-C) stops sending at once: what is queued is dropped
	// (counted), only requests already on the wire are waited for. A live
	// capture holds each request up to its order window (1 s) to hand them
	// over sorted by capture time; when it stops (stop.after, Ctrl-C: how
	// a mirror ends) it hands over those it held. They were captured
	// before the stop, so they are sent on their schedule, as a mirror
	// that ran that long sends them, bounded by liveDrain (they were
	// dropped without a word).
	sendCtx, stopCtx := jctx, ctx
	if j.Source.Capture != nil {
		var cancelSend context.CancelFunc
		sendCtx, cancelSend = context.WithCancel(context.WithoutCancel(ctx))
		defer cancelSend()
		stopCtx = sendCtx
		go func() {
			select {
			case <-jctx.Done():
			case <-sendCtx.Done():
				return
			}
			t := time.NewTimer(liveDrain)
			defer t.Stop()
			select {
			case <-t.C:
				cancelSend()
			case <-sendCtx.Done():
			}
		}()
	}
	stopOnInterrupt := context.AfterFunc(stopCtx, sender.Stop)
	defer stopOnInterrupt()
	if cmp != nil && cmp.ref != nil {
		defer context.AfterFunc(stopCtx, cmp.ref.Stop)()
	}

	st := newRequestStage(r.plan.scn, j, jp.rewrite, c, r.log)
	fanout := 1 // results per request sent
	if hs.Mode != "split" {
		fanout = len(targets)
	}
	var taken int64
	started := false   // the first request's send instant came (OnStart)
	var position int64 // the next request's index in the source's order (see ResumePoint)
	var resumeAt int64 // requests before it were answered by an earlier run
	total := int64(0)
	if window != nil {
		total = window.Requests
		if total == 0 {
			total = window.Records()
		}
	}
	// atStop counts a request a live capture handed over when it stopped
	// that could not be sent (liveDrain ran out), and lets the capture go
	// on handing over the others, each counted so: an error would end
	// its hand-over there, the rest dropped uncounted, and fail the job
	// with the capture's "context canceled".
	atStop := func(err error) error {
		if j.Source.Capture != nil && jctx.Err() != nil {
			c.add(notSentAtStop, 1)
			return nil
		}
		return err
	}
	var refusal error // the capture-host guard's, when it refused a message
	emit := func(m *message.Message) error {
		if m.Kind != message.Request {
			if cmp != nil {
				cmp.recorded(m)
			}
			return nil
		}
		if j.Stop.Requests > 0 && taken >= j.Stop.Requests {
			return errStop
		}
		pos := position
		position++
		wm.handling(m.Time)
		if err := g.check(m); err != nil {
			refusal = err // told as it is, not wrapped in the source's reading error
			return err
		}
		var raw []byte
		var keepHost bool
		keep := !m.Truncated
		if !keep {
			// Its body was cut when recorded (max-body, or a hole): its
			// head promises bytes it does not have, and a target would
			// wait for them (nor can a filter or a rewrite read it).
			// Counted, and told in the summary.
			c.add("not-sent-body-cut", 1)
		} else if err := httpraw.CheckRequest(m.Raw); err != nil {
			// Not one whole HTTP/1.x request (a foreign producer's
			// record, a damaged .gor payload): sent as it is, it would
			// leave the target waiting, and the timeout blamed on it.
			// Counted as a filter counts it, filter or not.
			keep = false
			st.warnRequest("unparsable-requests", "request cannot be parsed; not sent", m, err)
		} else if raw, keep, keepHost = st.processHost(m); keep {
			// Protocol http1: a request from HTTP/2 becomes HTTP/1.1 here,
			// once; one that cannot (gRPC) is counted and told.
			var notSent string
			var err error
			if raw, notSent, err = sender.prepare(raw); notSent != "" {
				keep = false
				if c.add(notSent, 1) == 1 {
					r.log.Warn("a request captured from HTTP/2 is not sent over HTTP/1.x", "job", j.Name, "id", m.ID, "err", scrubRequestValues(err.Error(), m.Raw))
				}
			}
		}
		if !keep {
			wm.handled(pos)
			if cmp != nil {
				cmp.discard(m)
			}
			return nil
		}
		taken++ // a request skipped below was taken by the earlier run
		// A bogus capture time (a .gor file's zero or garbage) gives no
		// place in a paced timeline: the request goes right after the one
		// before it, instead of decades away.
		untimed := speed > 0 && message.BogusTime(time.Unix(0, m.Time), time.Now())
		if pos < resumeAt {
			// Answered in an earlier run: keep the timeline, send nothing.
			if untimed {
				pacer.ScheduleUntimed()
			} else {
				pacer.Schedule(m.Time)
			}
			c.add("resume-skipped", 1)
			wm.handled(pos)
			if cmp != nil {
				cmp.discard(m)
			}
			return nil
		}
		// The barrier waits on ctx: stop.after bounds the sends, not the wait.
		if err := r.shard.arm(ctx, r, j, pacer, rec, m.Time, !untimed, untimed); err != nil {
			return err
		}
		var at time.Time
		if untimed {
			c.add("untimed-requests", 1)
			at, err = pacer.WaitUntimed(sendCtx)
		} else {
			at, err = pacer.Wait(sendCtx, m.Time)
		}
		if err != nil {
			return atStop(err)
		}
		if !started {
			started = true
			if r.plan.opts.OnStart != nil {
				r.plan.opts.OnStart(j.Name)
			}
		}
		if dup := r.plan.opts.DuplicatesBefore; r.plan.opts.Resume != nil && at.Before(dup) {
			c.add("possible-duplicates", int64(max(j.Amplify, 1)))
		}
		if cmp != nil {
			if err := cmp.sent(sendCtx, m, raw, keepHost); err != nil {
				return err
			}
		}
		wm.sent(m.ID, pos, m.Time, max(j.Amplify, 1)*fanout)
		for k := 0; k < max(j.Amplify, 1); k++ {
			if err := sender.Send(sendCtx, httpsink.Request{Raw: raw, KeepHost: keepHost, ConnID: m.ConnID, ID: m.ID, Scheduled: at}); err != nil {
				return atStop(err)
			}
		}
		return nil
	}

	stopProgress := startProgress(r.plan.opts, j.Name, func() string {
		if r.plan.opts.OnResumePoint != nil {
			r.plan.opts.OnResumePoint(wm.value())
		}
		done := completed.Load()
		s := fmt.Sprintf("%d sent", done)
		if total > 0 && j.Loop.For == 0 {
			all := total * int64(max(j.Loop.Count, 1)) * int64(max(j.Amplify, 1))
			s = fmt.Sprintf("%s %d/%d", bar(done, all, 24), done, all)
		}
		return fmt.Sprintf("%s  %.0f req/s  errors %d", s, float64(done)/time.Since(res.started).Seconds(), rec.Summary().Errors)
	})
	var runErr error
	loops := max(j.Loop.Count, 1)
	var passStats map[string]int64 // the source's counters of the last pass
	for i := 0; ; i++ {
		if j.Loop.For > 0 {
			if time.Since(res.started) >= j.Loop.For {
				break
			}
		} else if i >= loops {
			break
		}
		if i > 0 {
			pacer.Rebase()
			c.add("loops", 1)
		}
		src := newSource()
		if i == 0 {
			resumeAt = r.resumePosition(j, src, wm)
		}
		runErr = src.Run(jctx, emit)
		passStats = src.Stats()
		c.addAll("source.", passStats)
		if runErr != nil || jctx.Err() != nil {
			break
		}
	}
	if _, e := sourceEnded(ctx, runErr); e == nil && ctx.Err() == nil {
		if err := r.shard.armIdle(ctx, r, j, pacer, rec); err != nil {
			runErr = err
		}
	}
	stopProgress()
	switch {
	case ctx.Err() != nil:
	case errors.Is(runErr, errStop):
		res.stoppedBy = fmt.Sprintf("stop.requests %d", j.Stop.Requests)
	case j.Stop.After > 0 && errors.Is(jctx.Err(), context.DeadlineExceeded):
		res.stoppedBy = "stop.after " + durationString(j.Stop.After)
	}
	interrupted, runErr := sourceEnded(ctx, runErr)
	if refusal != nil && runErr != nil {
		runErr = refusal
	}
	res.interrupted = interrupted

	dctx, dcancel := drainContext(ctx)
	defer dcancel()
	closeErr := sender.Close(dctx)
	c.merge("sink.", sender.Stats())
	res.protocols, res.protocolStates = ps.parts()
	res.grpc = sender.Methods()
	if cmp != nil {
		res.diff = cmp.finish(dctx)
	}
	res.counters = c.snapshot()
	if n := res.counters["not-sent-body-cut"]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d request(s) not sent: their bodies were cut when recorded (max-body, or bytes the capture lost); sent as recorded, their heads would promise bytes that never come", n))
	}
	if n := res.counters[notSentAtStop]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d captured request(s) not sent: the capture had stopped, and their instants did not come within %s (%s)", n, liveDrain, notSentAtStop))
	}
	if n := res.counters[notSentGRPC]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d gRPC request(s) not sent: protocol http1 cannot carry gRPC, which needs HTTP/2 (use protocol auto or h2)", n))
	}
	if n := res.counters[notSentH2Bad]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d request(s) captured from HTTP/2 not sent: they could not be converted to HTTP/1.1 for protocol http1 (the first one's error is in the log)", n))
	}
	if n := res.counters["source.bad-records"]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d record(s) of the window not sent: they are not GoReplay messages (the first ones are in the log)", n))
	}
	if n := res.counters["source.bad-payloads"]; n > 0 {
		res.notSent = append(res.notSent, fmt.Sprintf("%d payload(s) of the .gor file not sent: they do not decode (the first ones are in the log)", n))
	}
	// Requests dropped because the request or an expression failed on it,
	// and input that does not decode: not the scenario's choice, a loss
	// unless it says on-loss: warn.
	var dropped map[string]int64
	for _, u := range undecodable {
		if n := res.counters[u.counter]; n > 0 {
			if dropped == nil {
				dropped = map[string]int64{}
			}
			dropped[u.cause] = n
			dropped[catalog.LostTotal] += n
		}
	}
	for _, se := range stageErrors {
		if n := res.counters[se.counter]; n > 0 {
			res.notSent = append(res.notSent, fmt.Sprintf("%d request(s) not sent: %s (%s; the first errors are in the log)", n, se.what, se.counter))
			if dropped == nil {
				dropped = map[string]int64{}
			}
			dropped[se.counter] = n
			dropped[catalog.LostTotal] += n
		}
	}
	// A replay straight from a pcap or a live capture: what the capture
	// lost (a file cut short, kernel drops, gaps) was never sent, and no
	// window says partial for it.
	var captureLost map[string]int64
	if j.Source.Pcap != nil || j.Source.Capture != nil {
		// One pass's: a looped pcap loses the same packets each pass.
		if lost := SourceLost(passStats); len(lost) > 0 {
			captureLost, res.captureLost = lost, lost
			each := ""
			if res.counters["loops"] > 0 {
				each = " (on each pass of the loop)"
			}
			res.notSent = append(res.notSent, fmt.Sprintf("the capture lost %s%s: what it lost was never sent", lostText(lost), each))
		}
	}
	if n := res.counters[notSentAtStop]; n > 0 {
		if dropped == nil {
			dropped = map[string]int64{}
		}
		dropped[notSentAtStop] = n
		dropped[catalog.LostTotal] += n
	}
	res.summary = rec.Summary()
	state := rec.State()
	res.state, res.shard = &state, r.shard.info(res.summary)
	res.elapsed = time.Since(res.started)
	if runErr != nil {
		return res, runErr
	}
	if closeErr == nil && ctx.Err() == nil {
		closeErr = noAnswer(j, res.summary)
	}
	if closeErr == nil && ctx.Err() == nil && (dropped != nil || captureLost != nil) && j.OnLoss != "warn" {
		closeErr = &LossError{Job: j.Name, Lost: dropped, Replay: true, CaptureLost: captureLost}
	}
	return res, closeErr
}

// liveDrain bounds how long a replay from a live capture goes on sending
// the requests the capture held when it stopped (its order window, 1 s by
// default, and a target that is slow to take them).
var liveDrain = 10 * time.Second

// notSentAtStop counts the requests a live capture handed over when it
// stopped that liveDrain cut.
const notSentAtStop = "not-sent-at-stop"

// noAnswer fails a replay in which requests were sent and not one got a
// response (a target down, a wrong address), unless the job has asserts:
// they decide what such a run means. Without them the run would pass
// having measured nothing.
func noAnswer(j *scenario.Job, s stats.Summary) error {
	if s.Sent == 0 || s.OK > 0 || len(j.Assert) > 0 {
		return nil
	}
	classes := make([]string, 0, len(s.ErrorClasses))
	for _, c := range slices.Sorted(maps.Keys(s.ErrorClasses)) {
		classes = append(classes, fmt.Sprintf("%s %d", c, s.ErrorClasses[c]))
	}
	return fmt.Errorf("none of the %d requests got a response (%s): the target did not answer, nothing was measured; a job that means to test that says so with an assert, such as 'errors.rate == 1'",
		s.Sent, strings.Join(classes, ", "))
}

// resumePosition returns the position the replay resumes at
// (Options.Resume) for its source src, and notes src's order in wm: a
// resume point counted in another order (other reorder settings, another
// version) is not used, the run starts from its first request.
func (r *runner) resumePosition(j *scenario.Job, src sources.Source, wm *watermark) int64 {
	order := ""
	if o, ok := src.(sources.Ordered); ok {
		order = o.Order()
	}
	wm.setOrder(order)
	resume := r.plan.opts.Resume
	if resume == nil || resume.Position == 0 {
		return 0
	}
	if resume.Order != order {
		r.log.Warn("resume point not used: it counts requests in another order of the source; the replay starts from its first request",
			"job", j.Name, "resume-at", resume.Position, "its-order", orNone(resume.Order), "source-order", orNone(order))
		return 0
	}
	return resume.Position
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
