package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks"
	"github.com/replayctl/replayctl/sinks/gorsink"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/sinks/stdoutsink"
	"github.com/replayctl/replayctl/spool"
)

// recordSink is a job's non-HTTP sink and what the window bookkeeping needs.
type recordSink struct {
	sinks.Sink
	desc   string
	topic  string            // kafka sinks
	client *kgo.Client       // kafka sinks, closed after the sink
	kafka  *kafkasink.Sink   // kafka sinks
	health *kafkasink.Health // kafka sinks
	spool  *spool.Spool      // kafka sinks, closed after the sink
	// kept is the oldest capture time (unix ns) the topic keeps for at
	// least retentionMargin; 0 when it keeps records for ever (kafka sinks).
	kept      int64
	retention time.Duration
	topicKey  string
	pos       scenario.Pos
}

// sinkRefusal is an error of the record pipeline's own, not of the source
// that handed the message over.
type sinkRefusal struct{ err error }

func (e *sinkRefusal) Error() string { return e.err.Error() }
func (e *sinkRefusal) Unwrap() error { return e.err }

// retentionMargin is how long a recorded message must outlive its write
// (at most half the topic's retention) before the topic's retention deletes it: a message older than that is
// refused, not written to vanish at the broker's next retention check.
const retentionMargin = time.Hour

// checkRetention refuses a message the topic would delete soon after it is
// written, because its capture time is older than the topic's retention.
func (s *recordSink) checkRetention(m *message.Message, written int64) error {
	if s.kept == 0 || m.Time >= s.kept {
		return nil
	}
	at := time.Unix(0, m.Time).UTC()
	if message.BogusTime(at, time.Now()) {
		// A .gor file's zero or garbage: the Kafka record gets the time it
		// is written (kafkasink.Record), which the retention keeps.
		return nil
	}
	done := "nothing was recorded"
	if written > 0 {
		done = fmt.Sprintf("the %d messages written before it will be deleted too", written)
	}
	return fmt.Errorf("%s: a message captured at %s is older than topic %s keeps records (retention.ms %d: %s): Kafka would delete it, and the recording with it, at its next retention check; %s. "+
		"Give the topic a longer retention (retention.ms -1 keeps records for ever: topics.%s.config.retention.ms: \"-1\" when replayctl creates it, "+
		"or kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config retention.ms=-1), or record into another topic",
		s.pos, at.Format(time.RFC3339), s.topic, s.retention.Milliseconds(), s.retention, done, s.topicKey, s.topic)
}

// deliveryTimeout is the scenario's kafka.delivery-timeout.
func (r *runner) deliveryTimeout() time.Duration {
	if d := r.plan.scn.Kafka.DeliveryTimeout; d > 0 {
		return d
	}
	return scenario.DefaultDeliveryTimeout
}

// defaultMaxBody is the capture's body limit when max-body is not set.
const defaultMaxBody = 1 << 20

// messageOverhead is what a recorded message adds to its body in a Kafka
// record batch, at most: the header block (64 KiB, the capture's limit),
// the payload's first line, the record headers and the batch framing.
const messageOverhead = 64<<10 + 8<<10

// maxProduceBytes bounds one produce request, and so one record: Kafka's
// default socket.request.max.bytes and franz-go's BrokerMaxWriteBytes (a
// batch limit above it is a client configuration error), 100 MiB.
const maxProduceBytes = 100 << 20

// sourceMaxBody is the body limit of a capture or pcap source (ok false for
// sources without one).
func sourceMaxBody(j *scenario.Job) (n int64, ok bool) {
	switch {
	case j.Source.Capture != nil:
		n = j.Source.Capture.MaxBody
	case j.Source.Pcap != nil:
		n = j.Source.Pcap.MaxBody
	default:
		return 0, false
	}
	if n <= 0 {
		n = defaultMaxBody
	}
	return n, true
}

// spoolDir is where a kafka sink's spool keeps its segments: spool.dir, or
// spool/ next to the embedded broker's data, or .replayctl/spool, in a
// directory of the recording's own. root is the directory the spool must
// stay under (it is created through an os.Root on it): the one spool.dir,
// or kafka.data-dir, was checked to be contained in; "" for the defaults
// the command line decides (--data-dir, the working directory).
func (r *runner) spoolDir(j *scenario.Job, recordingID string) (dir, root string, err error) {
	if d := j.Sink.Kafka.Spool.Dir; d.IsSet() {
		// A link put in place since the scenario was loaded is refused.
		if err := d.Recheck(); err != nil {
			return "", "", err
		}
		return filepath.Join(d.Abs, recordingID), d.Root, nil
	}
	if d := r.plan.opts.SpoolDir; d != "" {
		return filepath.Join(d, recordingID), "", nil
	}
	if r.kafka.ks.Embedded() {
		if k := r.plan.scn.Kafka.DataDir; k.IsSet() && k.Abs == r.kafka.ks.DataDir {
			root = k.Root
		}
		return filepath.Join(r.kafka.ks.DataDir, "spool", recordingID), root, nil
	}
	return filepath.Join(".replayctl", "spool", recordingID), "", nil
}

func (r *runner) buildRecordSink(ctx context.Context, j *scenario.Job, recordingID string) (*recordSink, error) {
	switch j.Sink.Kind {
	case scenario.SinkKafka:
		kc, err := r.kafka.get(ctx)
		if err != nil {
			return nil, err
		}
		t := j.Sink.Kafka.Topic
		maxBody, hasMaxBody := sourceMaxBody(j)
		if hasMaxBody && maxBody+messageOverhead > maxProduceBytes {
			return nil, invalidf("%s: the source's max-body (%d bytes) is too large for Kafka: it can be at most %d bytes (one produce request carries at most %d bytes, %d of them for the message's head)", j.Source.Pos, maxBody, maxProduceBytes-messageOverhead, maxProduceBytes, messageOverhead)
		}
		created, err := kc.ensureTopic(ctx, t, maxBody+messageOverhead)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		lim, err := kc.topicLimits(ctx, t.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		if lim.unread != nil {
			r.log.Warn("cannot read the topic's configs (this principal lacks the DescribeConfigs ACL on it): its max.message.bytes is taken as Kafka's default, and its retention.ms is not checked: messages whose capture time is older than the retention would be deleted at once; grant DescribeConfigs on the topic to have both checked",
				"topic", t.Name, "max.message.bytes", lim.maxMessageBytes, "err", lim.unread)
		}
		limit := lim.maxMessageBytes
		if hasMaxBody && maxBody > limit {
			how := "raise the topic's max.message.bytes or lower the source's max-body"
			switch {
			case created:
				how = "remove max.message.bytes from topics." + t.Key + ".config or lower the source's max-body"
			case lim.unread != nil:
				how = "the topic's configs could not be read (this principal lacks the DescribeConfigs ACL on it), so Kafka's default is taken: grant DescribeConfigs, or lower the source's max-body"
			}
			return nil, invalidf("%s: the source's max-body (%d bytes) is above what topic %s takes (max.message.bytes %d): messages near max-body would be refused; %s", j.Source.Pos, maxBody, t.Name, limit, how)
		}
		compression := j.Sink.Kafka.Compression
		if compression == "" {
			compression = r.plan.scn.Kafka.Compression
		}
		timeout := r.deliveryTimeout()
		popts, err := kafkasink.ProducerOpts(compression, timeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		// A batch as large as the topic takes: a record larger than that is
		// refused by the client alone, and counted as too-large.
		health := kafkasink.NewHealth()
		popts = append(popts, kgo.ProducerBatchMaxBytes(int32(min(limit, maxProduceBytes))), kgo.WithHooks(health))
		dir, root, err := r.spoolDir(j, recordingID)
		if err != nil {
			return nil, fmt.Errorf("%s: spool: %w", j.Sink.Pos, err)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(dir), "*", "spool-*.seg")); len(left) > 0 {
			// A recording that did not end cleanly (killed, power loss)
			// left messages it never sent; they are not replayed into
			// this one.
			r.log.Warn("spool segments left by an earlier recording that did not end cleanly; their messages were not sent (remove them when done)",
				"files", len(left), "first", left[0])
		}
		sp, err := spool.Open(dir, spool.Options{MaxBytes: j.Sink.Kafka.Spool.MaxBytes, Root: root})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		cl, err := kgo.NewClient(append(slices.Clone(kc.opts), popts...)...)
		if err != nil {
			_ = sp.Close()
			return nil, fmt.Errorf("kafka producer: %w", err)
		}
		s := kafkasink.New(cl, t.Name, kafkasink.Options{RecordingID: recordingID, Host: r.hostname(), DeliveryTimeout: timeout, Logger: r.log, Spool: sp, Health: health})
		rs := &recordSink{Sink: s, desc: "kafka topic " + t.Name, topic: t.Name, client: cl, kafka: s, health: health, spool: sp,
			retention: lim.retention, topicKey: t.Key, pos: j.Sink.Pos}
		if lim.retention > 0 {
			// A short retention (an hour or less) gets half of it as the
			// margin: a message captured now is always kept.
			margin := min(retentionMargin, lim.retention/2)
			rs.kept = time.Now().Add(margin - lim.retention).UnixNano()
		}
		return rs, nil
	case scenario.SinkGor:
		s, err := gorsink.Open(j.Sink.Gor.Path)
		if err != nil {
			return nil, err
		}
		return &recordSink{Sink: s, desc: "gor file " + j.Sink.Gor.Path.Raw}, nil
	case scenario.SinkStdout:
		s, err := stdoutsink.New(r.plan.opts.Out, j.Sink.Stdout.Format)
		if err != nil {
			return nil, err
		}
		return &recordSink{Sink: s, desc: "stdout"}, nil
	}
	return nil, fmt.Errorf("%s: sink %q cannot take recorded messages", j.Sink.Pos, j.Sink.Kind)
}

// runRecord copies messages from the source to a Kafka, gor or stdout sink:
// filter → sample → rewrite (requests), redact (both kinds) → sink. With
// save-window it snapshots the topic's end offsets before and after and saves
// the window in the catalog.
func (r *runner) runRecord(ctx context.Context, jp *jobPlan) (*jobResult, error) {
	j := jp.job
	res := &jobResult{job: j, started: time.Now()}
	newSource, _, err := r.buildSource(ctx, j)
	if err != nil {
		return nil, err
	}
	recordingID := r.plan.opts.RecordingID
	if recordingID == "" {
		recordingID = "rec-" + time.Now().UTC().Format("20060102T150405Z") + "-" + message.NewID()[:8]
	}
	sink, err := r.buildRecordSink(ctx, j, recordingID)
	if err != nil {
		return nil, err
	}
	sinkClosed := false
	defer func() {
		// Early returns: nothing was written, the sink closes at once.
		if !sinkClosed {
			_ = sink.Close(context.WithoutCancel(ctx))
		}
		sink.release()
	}()
	res.sinkDesc = sink.desc
	var startOffsets map[int32]int64
	if j.SaveWindow != "" && !r.plan.opts.NoSaveWindow {
		kc, _ := r.kafka.get(ctx)
		// Fail early when the name is taken; the save itself decides (see
		// catalog.SaveAs), for jobs that save the same name concurrently.
		if old, err := kc.catalog.Get(ctx, j.SaveWindow); err == nil && r.plan.opts.saveMode() == catalog.Create {
			return nil, invalidf("window %q already exists (saved %s by job %s); use --overwrite to replace it, or --keep-history to keep it as %s", j.SaveWindow, old.CreatedAt.Format(time.RFC3339), old.Job, catalog.HistoryName(old))
		}
		if startOffsets, err = catalog.EndOffsets(ctx, kc.adm, sink.topic); err != nil {
			return nil, fmt.Errorf("window start offsets: %w", err)
		}
	}

	c := newCounters()
	st := newRequestStage(r.plan.scn, j, jp.rewrite, c, r.log)
	src := newSource()
	hosts, dests := map[string]bool{}, map[netip.AddrPort]bool{}
	dropped := newIDSet(100_000) // request IDs not recorded; their responses follow them
	// Writes outlive a Ctrl-C or stop.after: what the source still hands
	// over while it stops (held, sorted messages) must reach the sink. A
	// stalled sink is bounded by its own delivery timeout.
	writeCtx := context.WithoutCancel(ctx)
	var first, last int64
	var nreq, nresp atomic.Int64
	jctx, cancel := jobContext(ctx, j)
	// stop.requests: the source stops once the responses of the requests
	// recorded came (awaiting: the recorded requests not answered yet), or
	// stopGrace after the limit (capture time, or wall time when no packet
	// comes); requests seen meanwhile are counted, not recorded.
	sctx, stopSource := context.WithCancelCause(jctx)
	defer stopSource(nil)
	var awaiting *idSet
	if j.Stop.Requests > 0 && recordsResponses(j.Source) {
		awaiting = newIDSet(100_000)
	}
	var stopping bool
	var stopTime int64
	var graceTimer *time.Timer
	defer func() {
		if graceTimer != nil {
			graceTimer.Stop()
		}
	}()
	emit := func(m *message.Message) error {
		if stopping && m.Time-stopTime > int64(stopGrace) {
			return errStop
		}
		if m.Kind == message.Request {
			if j.Stop.Requests > 0 && nreq.Load() >= j.Stop.Requests {
				c.add("requests-after-stop", 1)
				dropped.add(m.ID)
				if !stopping {
					stopping, stopTime = true, m.Time
					if awaiting == nil || awaiting.len() == 0 {
						return errStop // nothing to wait for
					}
					graceTimer = time.AfterFunc(stopGrace, func() { stopSource(errStop) })
				}
				return nil
			}
			raw, keep := st.process(m)
			if !keep {
				dropped.add(m.ID)
				return nil
			}
			m.Raw = raw
		} else if dropped.take(m.ID) {
			c.add("responses-of-dropped-requests", 1)
			return nil
		}
		if jp.redactor != nil {
			redactFn := jp.redactor.Request
			switch {
			case m.Truncated && m.Kind == message.Request:
				// Cut at max-body: the head is complete, the body is not.
				redactFn = jp.redactor.RequestTruncated
			case m.Truncated:
				redactFn = jp.redactor.ResponseTruncated
			case m.Kind != message.Request:
				redactFn = jp.redactor.Response
			}
			out, counts, err := redactFn(m.Raw)
			if err != nil {
				// A message that cannot be parsed cannot be redacted: it
				// must not leave the host.
				if c.add("unredactable-dropped", 1) <= 5 {
					r.log.Warn("message cannot be redacted; not recorded", "kind", m.Kind, "id", m.ID, "err", scrubRequestValues(err.Error(), m.Raw))
				}
				if m.Kind == message.Request {
					dropped.add(m.ID)
				}
				return nil
			}
			m.Raw = out
			if n := counts.Redacted(); n > 0 {
				c.add("redacted-values", int64(n))
			}
			if counts.Skipped > 0 {
				c.add("redact-skipped-encoded-bodies", int64(counts.Skipped))
			}
			if counts.BodiesCut > 0 {
				c.add("redact-truncated-bodies-cut", int64(counts.BodiesCut))
			}
		}
		if err := sink.checkRetention(m, nreq.Load()+nresp.Load()); err != nil {
			return &sinkRefusal{err}
		}
		if err := sink.Write(writeCtx, m); err != nil {
			return err
		}
		answeredAll := false
		if m.Kind == message.Request {
			n := nreq.Add(1)
			if n == j.Stop.Requests && !stopping {
				// The limit is reached: wait for the answers of what was
				// recorded (stopGrace at most), whether or not more
				// traffic comes to say so.
				stopping, stopTime = true, m.Time
				if awaiting == nil {
					defer stopSource(errStop) // nothing to wait for; this one is recorded
				} else {
					graceTimer = time.AfterFunc(stopGrace, func() { stopSource(errStop) })
				}
			}
			if m.Dst.IsValid() {
				dests[m.Dst] = true
			}
			if m.Truncated {
				c.add("requests-body-cut", 1)
			}
			if awaiting != nil {
				awaiting.add(m.ID)
			}
		} else {
			nresp.Add(1)
			if awaiting != nil && awaiting.take(m.ID) {
				answeredAll = stopping && awaiting.len() == 0
			}
		}
		if m.Host != "" {
			hosts[m.Host] = true
		}
		// A capture time that cannot be real (a .gor file's zero or
		// garbage) is recorded as it is, but does not make the window's.
		// The clock is read again only for one past the job's start.
		if at := time.Unix(0, m.Time); message.BogusTime(at, res.started) && message.BogusTime(at, time.Now()) {
			c.add("bogus-capture-times", 1)
		} else {
			if first == 0 || m.Time < first {
				first = m.Time
			}
			last = max(last, m.Time)
		}
		if answeredAll {
			return errStop
		}
		return nil
	}

	stopProgress := startProgress(r.plan.opts, j.Name, func() string {
		line := fmt.Sprintf("%d requests, %d responses recorded", nreq.Load(), nresp.Load())
		st := src.Stats()
		for _, k := range []string{"kernel-drops", "queue-overflow", "unparsable", "header-too-long", "incomplete", "truncated", "streams-dropped", "bad-records", "bad-payloads"} {
			if st[k] > 0 {
				line += fmt.Sprintf(", %s %d", k, st[k])
			}
		}
		return line + sink.status()
	})
	runErr := src.Run(sctx, emit)
	if runErr != nil && errors.Is(context.Cause(sctx), errStop) && !errors.Is(runErr, errStop) && ctx.Err() == nil {
		runErr = errStop // the grace after stop.requests ended
	}
	if stopping && awaiting != nil && nresp.Load() > 0 {
		// (A source that gave no response at all, a gor file of requests,
		// had none to miss.)
		if n := awaiting.len(); n > 0 {
			c.add("stop-responses-missing", int64(n))
		}
	}
	cancel()
	stopProgress()
	if sink.kafka != nil {
		// What the close waits for, and how long it may still wait.
		stopProgress = startProgress(r.plan.opts, j.Name, sink.closeStatus)
	}
	res.requests, res.responses = nreq.Load(), nresp.Load()
	if dropped.forgotten > 0 {
		// Their responses, if any came later, were recorded.
		c.add("dropped-ids-forgotten", dropped.forgotten)
	}
	interrupted, runErr := sourceEnded(ctx, runErr)
	res.interrupted = interrupted
	res.atLimit = stopping

	// The sink settles every record within its delivery timeout; the
	// drain bound only guards against a sink that does not.
	closeCtx, closeCancel := context.WithTimeout(context.WithoutCancel(ctx), r.deliveryTimeout()+10*time.Second)
	closeErr := sink.Close(closeCtx)
	sinkClosed = true
	closeCancel()
	stopProgress()
	if errors.Is(closeErr, kafkasink.ErrNotDelivered) {
		// Counted as lost (undeliverable, too-large) below, not a failure
		// of the job: the window is saved, marked partial.
		closeErr = nil
	}
	sinkStats := sink.Stats()
	var acked map[int32]int64 // where the records written lie, from their acknowledgements
	if sink.kafka != nil {
		acked = sink.kafka.AckedEnd()
	}
	sink.release()
	// The window is saved with a fresh bound, whatever the flush took.
	dctx, dcancel := drainContext(ctx)
	defer dcancel()
	res.written, res.notWritten = sinkStats["written"], sinkStats["failed"]
	srcStats := src.Stats()
	c.merge("source.", srcStats)
	c.merge("sink.", sinkStats)
	res.counters = c.snapshot()
	if n := res.counters["bogus-capture-times"]; n > 0 {
		r.log.Warn("messages with a bogus capture time recorded as they are", "job", j.Name, "messages", n, "bogus", message.BogusTimeRule,
			"hint", "the window's capture time leaves them out; a paced replay sends each right after the request before it")
	}
	res.lost = lostCounts(res.counters)
	res.elapsed = time.Since(res.started)
	res.hosts, res.dests, res.first, res.last = sortedKeys(hosts), addrStrings(dests), first, last
	// A job that fails saves no window: the error says where the records
	// it wrote lie, and how to replay them.
	where := ""
	if startOffsets != nil {
		where = writtenAt(sink.topic, sink.topicKey, recordingID, startOffsets, acked, res.written)
	}
	var sinkErr *sinkRefusal
	if errors.As(runErr, &sinkErr) {
		return res, fmt.Errorf("%w%s", sinkErr.err, where)
	}
	if runErr != nil {
		return res, fmt.Errorf("source: %w%s", runErr, where)
	}
	if closeErr != nil {
		return res, fmt.Errorf("%w%s", closeErr, where)
	}
	if j.SaveWindow != "" && !r.plan.opts.NoSaveWindow {
		kc, _ := r.kafka.get(dctx)
		endOffsets, err := catalog.EndOffsets(dctx, kc.adm, sink.topic)
		if err != nil {
			return res, fmt.Errorf("window end offsets: %w%s", err, writtenAt(sink.topic, sink.topicKey, recordingID, startOffsets, acked, res.written))
		}
		w := catalog.Window{
			Name:        j.SaveWindow,
			Topic:       sink.topic,
			Partitions:  catalog.Between(startOffsets, endOffsets),
			RecordingID: recordingID,
			Scenario:    r.plan.scn.Name,
			Job:         j.Name,
			Messages:    res.written,
			// What the window holds, not what was captured: the
			// difference is in Lost.
			Requests:     sinkStats["written-requests"],
			Responses:    sinkStats["written-responses"],
			Hosts:        sortedKeys(hosts),
			Destinations: addrStrings(dests),
			CreatedAt:    time.Now().UTC(),
			BogusTimes:   res.counters["bogus-capture-times"],
		}
		if total := res.lost["total"]; total > 0 {
			w.Partial, w.Lost = true, res.lost
		}
		if first != 0 {
			w.StartedAt, w.EndedAt = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		}
		saved, err := kc.catalog.SaveAs(dctx, w, r.plan.opts.saveMode())
		if errors.Is(err, catalog.ErrConflict) || errors.Is(err, catalog.ErrExists) {
			return res, invalidf("save window: %w; this recording stays in topic %s, unnamed", err, windowText(&w))
		}
		if err != nil {
			// Nothing names the records written: say where they lie.
			return res, fmt.Errorf("save window: %w; this recording stays in topic %s, unnamed", err, windowText(&w))
		}
		if saved.KeptAs != "" {
			r.log.Info("previous window kept", "window", saved.KeptAs)
			res.keptAs = saved.KeptAs
		}
		res.window = &w
	}
	if total := res.lost["total"]; total > 0 && j.OnLoss != "warn" {
		return res, &LossError{Job: j.Name, Lost: res.lost}
	}
	return res, nil
}

// LossError reports a record job that lost messages, or a replay that
// could not send requests of its input because of errors (Replay), without
// on-loss: warn (exit code 1). What a record job recorded was saved,
// marked partial.
type LossError struct {
	Job    string
	Lost   map[string]int64 // by cause, and "total"
	Replay bool
	// CaptureLost is what the capture a replay read directly (a pcap, a
	// live capture) lost, by cause (lossCauses): it was never sent.
	CaptureLost map[string]int64
}

func (e *LossError) Error() string {
	if e.Replay {
		var parts []string
		if n := e.Lost[catalog.LostTotal] - e.Lost[notSentAtStop]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d request(s) not sent because of errors: %s", n, notSentErrorsText(e.Lost)))
		}
		if n := e.Lost[notSentAtStop]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d request(s) the live capture had taken not sent: their instants did not come within %s of its stop (%s)", n, liveDrain, notSentAtStop))
		}
		if len(e.CaptureLost) > 0 {
			parts = append(parts, "the capture it replayed lost "+lostText(e.CaptureLost)+": what it lost was never sent")
		}
		return strings.Join(parts, "; ") + "; on-loss: warn accepts that"
	}
	return fmt.Sprintf("the recording is incomplete: %s; the window, if any, is saved marked partial; on-loss: warn accepts losses", lostText(e.Lost))
}

// notSentErrorsText renders a replay's requests dropped on errors, by
// cause: "rewrite-errors 3 (the rewrite failed on them)".
func notSentErrorsText(dropped map[string]int64) string {
	var parts []string
	for _, u := range undecodable {
		if n := dropped[u.cause]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", u.cause, n, u.what))
		}
	}
	for _, se := range stageErrors {
		if n := dropped[se.counter]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d (%s)", se.counter, n, se.what))
		}
	}
	return strings.Join(parts, ", ")
}

// writtenAt tells where the records written lie when the window cannot be
// saved: the offsets at the start and after the last acknowledged record,
// as an entry of the scenario's windows: (its topics: key) that replays
// them. The ranges hold whatever else was written to the topic meanwhile
// (another host, another job): the entry keeps only this recording's
// records (only-recording), as a saved window does.
func writtenAt(topic, topicKey, recordingID string, start, acked map[int32]int64, written int64) string {
	if written == 0 || len(acked) == 0 {
		return ""
	}
	parts := slices.Sorted(maps.Keys(acked))
	var b strings.Builder
	fmt.Fprintf(&b, "; the %d record(s) written are in topic %s; this windows: entry replays them: {topic: %s, offsets: {", written, topic, topicKey)
	for i, p := range parts {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "\"%d\": [%d, %d]", p, start[p], acked[p])
	}
	b.WriteString("}")
	if recordingID != "" {
		fmt.Fprintf(&b, ", only-recording: %s", recordingID)
	}
	b.WriteString("}")
	return b.String()
}

// stopGrace is how long a record job stopped by stop.requests waits for
// the responses of the requests it recorded.
const stopGrace = 2 * time.Second

// recordsResponses says whether src hands over responses (a capture or a
// pcap without responses: false does not).
func recordsResponses(src scenario.Source) bool {
	switch {
	case src.Capture != nil:
		return src.Capture.Responses
	case src.Pcap != nil:
		return src.Pcap.Responses
	}
	return true
}

// lossCauses maps the counters that mean "not recorded" to their cause.
// kernel-drops, queue-overflow, file-cut-short, snaplen-cut and
// fragments-incomplete count packets,
// capture-gaps holes in connections, streams-dropped connections,
// h2-hpack-errors HTTP/2 header blocks, the others messages.
var lossCauses = []struct{ counter, cause string }{
	{"sink.spool-full", "spool-full"},
	{"sink.too-large", "too-large"},
	{"sink.undeliverable", "undeliverable"},
	{"source.kernel-drops", "kernel-drops"},
	{"source.queue-overflow", "queue-overflow"},
	{"source.file-cut-short", "file-cut-short"},
	{"source.header-too-long", "header-too-long"},
	{"source.bad-payloads", "bad-payloads"},
	{"source.holes", "capture-gaps"},
	{"source.snaplen-cut", "snaplen-cut"},
	{"source.fragments-incomplete", "fragments-incomplete"},
	{"source.streams-dropped", "streams-dropped"},
	{"source.h2-hpack-errors", "h2-hpack-errors"},
	{"source.h2-unrenderable", "h2-unrenderable"},
	{"source.buffer-cut", "buffer-cut"},
	{"unredactable-dropped", "unredactable"},
	{"unparsable-requests", "unparsable-requests"},
	{"filter-errors", "filter-errors"},
	{"sample-errors", "sample-errors"},
	{"rewrite-errors", "rewrite-errors"},
}

// SourceLost returns the losses by cause that a source's counters (a
// capture's Stats, without the "source." prefix) tell, as a record job's
// summary counts them (lossCauses), without a total: what a process that
// quits without a summary says it lost.
func SourceLost(st map[string]int64) map[string]int64 {
	lost := map[string]int64{}
	for _, lc := range lossCauses {
		if k, ok := strings.CutPrefix(lc.counter, "source."); ok && st[k] > 0 {
			lost[lc.cause] = st[k]
		}
	}
	return lost
}

// lostCounts returns the losses by cause, and their total (each loss once:
// catalog.LossTotal), from a record job's counters. Truncation is not a
// loss: the message is kept, cut.
func lostCounts(c map[string]int64) map[string]int64 {
	lost := map[string]int64{}
	for _, lc := range lossCauses {
		n := c[lc.counter]
		if lc.cause == "undeliverable" {
			n = c["sink.failed"] - c["sink.too-large"]
		}
		if n > 0 {
			lost[lc.cause] = n
		}
	}
	lost[catalog.LostTotal] = catalog.LossTotal(lost)
	return lost
}

// lostText renders the causes with their units (catalog.LossUnit) and
// what they mean: "spool-full 12 messages, kernel-drops 3 packets".
func lostText(lost map[string]int64) string {
	var parts []string
	for _, lc := range lossCauses {
		n := lost[lc.cause]
		if n <= 0 {
			continue
		}
		why := ""
		switch lc.cause {
		case "file-cut-short":
			why = " (the pcap file ends in the middle of it)"
		case "bad-payloads":
			why = " (payloads of the .gor file that do not decode)"
		case "capture-gaps":
			why = " (bytes that were on the wire are not in the capture; the messages around them are kept cut, or skipped)"
		case "snaplen-cut":
			why = " (cut short by the capture's snaplen: their bytes past it are not in the capture; capture with tcpdump -s 0)"
		case "fragments-incomplete":
			why = " (sent in IP fragments of which some are not in the capture: their packet was never whole)"
		case "streams-dropped":
			why = " (not tracked: past the capture's connection limit)"
		case "h2-hpack-errors":
			why = " (HTTP/2 header blocks that do not decode on a connection seen from its start: their messages, and the later ones of that direction, are not recorded)"
		case "buffer-cut":
			why = " (recorded with their body cut because the capture's buffers were full: the capture holds at most the source's max-buffered bytes of messages in progress (256 MiB by default), and a connection's direction max-body + 64 KiB; their bytes past the cut are not in the recording, and a replay does not send them)"
		case "h2-unrenderable":
			why = " (HTTP/2 messages whose fields cannot be written as header lines: a CR or LF in a value, a name that is not a token, no :method)"
		default:
			for _, se := range stageErrors {
				if se.counter == lc.cause {
					why = " (requests dropped: " + se.what + "; the first errors are in the log)"
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%s %s%s", lc.cause, catalog.Count(n, catalog.LossUnit(lc.cause)), why))
	}
	// Causes no counter of this process gives: a fleet recording's
	// hosts-failed, a bad-records of a replay's input.
	others := map[string]int64{}
	for cause, n := range lost {
		if !slices.ContainsFunc(lossCauses, func(lc struct{ counter, cause string }) bool { return lc.cause == cause }) {
			others[cause] = n
		}
	}
	if text := catalog.LostText(others); text != "" {
		parts = append(parts, text)
	}
	return strings.Join(parts, ", ")
}

// release closes the producer client and the spool (after Close).
func (s *recordSink) release() {
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	if s.spool != nil {
		_ = s.spool.Close()
		s.spool = nil
	}
}

// status is the sink's part of the live progress line: the broker's state
// and what is spooled.
func (s *recordSink) status() string {
	if s.kafka == nil {
		return ""
	}
	var line string
	st := s.kafka.Stats()
	if since, down := s.health.Unreachable(); down {
		line += fmt.Sprintf(", broker unreachable for %s (%d records waiting in memory)", time.Since(since).Truncate(time.Second), st["in-flight"])
	}
	if n := st["spool-records"]; n > 0 {
		line += fmt.Sprintf(", %d spooled (%s)", n, ByteText(st["spool-bytes"]))
	}
	if n := st["spool-full"]; n > 0 {
		line += fmt.Sprintf(", %d LOST (spool full)", n)
	}
	return line
}

// closeStatus says what the end of a record job waits for.
func (s *recordSink) closeStatus() string {
	st := s.kafka.Stats()
	line := fmt.Sprintf("waiting for %d records to be acknowledged", st["in-flight"]+st["spool-records"])
	if n := st["spool-records"]; n > 0 {
		line += fmt.Sprintf(" (%d still spooled)", n)
	}
	if d := s.kafka.CloseDeadline(); !d.IsZero() {
		line += fmt.Sprintf(", %s left", max(time.Until(d), 0).Round(time.Second))
	}
	if _, down := s.health.Unreachable(); down {
		line += ", broker unreachable"
	}
	return line
}

// ByteText renders a byte count: "512 B", "3.4 MiB".
func ByteText(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}

// addrStrings returns the addresses as sorted text.
func addrStrings(set map[netip.AddrPort]bool) []string {
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a.String())
	}
	slices.Sort(out)
	return out
}
