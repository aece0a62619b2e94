package engine

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
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
)

// deliveryTimeout bounds how long a recorded message may wait to be
// acknowledged by Kafka before it is counted as not delivered.
const deliveryTimeout = 30 * time.Second

// recordSink is a job's non-HTTP sink and what the window bookkeeping needs.
type recordSink struct {
	sinks.Sink
	desc   string
	topic  string      // kafka sinks
	client *kgo.Client // kafka sinks, closed after the sink
}

func (r *runner) buildRecordSink(ctx context.Context, j *scenario.Job, recordingID string) (*recordSink, error) {
	switch j.Sink.Kind {
	case scenario.SinkKafka:
		kc, err := r.kafka.get(ctx)
		if err != nil {
			return nil, err
		}
		t := j.Sink.Kafka.Topic
		if err := kc.ensureTopic(ctx, t); err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		compression := j.Sink.Kafka.Compression
		if compression == "" {
			compression = r.plan.scn.Kafka.Compression
		}
		popts, err := kafkasink.ProducerOpts(compression, deliveryTimeout)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", j.Sink.Pos, err)
		}
		cl, err := kgo.NewClient(append(slices.Clone(kc.opts), popts...)...)
		if err != nil {
			return nil, fmt.Errorf("kafka producer: %w", err)
		}
		s := kafkasink.New(cl, t.Name, kafkasink.Options{RecordingID: recordingID, Host: r.hostname(), DeliveryTimeout: deliveryTimeout, Logger: r.log})
		return &recordSink{Sink: s, desc: "kafka topic " + t.Name, topic: t.Name, client: cl}, nil
	case scenario.SinkGor:
		s, err := gorsink.Create(j.Sink.Gor.Path.Abs)
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
	res.sinkDesc = sink.desc
	var startOffsets map[int32]int64
	if j.SaveWindow != "" && !r.plan.opts.NoSaveWindow {
		kc, _ := r.kafka.get(ctx)
		if old, err := kc.catalog.Get(ctx, j.SaveWindow); err == nil {
			switch {
			case !r.plan.opts.Overwrite:
				return nil, invalidf("window %q already exists (saved %s by job %s); use --overwrite to replace it, or --keep-history to keep it as %s", j.SaveWindow, old.CreatedAt.Format(time.RFC3339), old.Job, historyName(old))
			case r.plan.opts.KeepHistory:
				kept := old
				kept.Name = historyName(old)
				if err := kc.catalog.Save(ctx, kept, true); err != nil {
					return nil, fmt.Errorf("keep window %q as %q: %w", old.Name, kept.Name, err)
				}
				r.log.Info("previous window kept", "window", kept.Name)
			}
		}
		if startOffsets, err = catalog.EndOffsets(ctx, kc.adm, sink.topic); err != nil {
			return nil, fmt.Errorf("window start offsets: %w", err)
		}
	}

	c := newCounters()
	st := newRequestStage(j, jp.rewrite, c, r.log)
	src := newSource()
	hosts, dests := map[string]bool{}, map[netip.AddrPort]bool{}
	dropped := newIDSet(100_000) // request IDs not recorded; their responses follow them
	// Writes outlive a Ctrl-C or stop.after: what the source still hands
	// over while it stops (held, sorted messages) must reach the sink. A
	// stalled sink is bounded by its own delivery timeout.
	writeCtx := context.WithoutCancel(ctx)
	var first, last int64
	var nreq, nresp atomic.Int64
	emit := func(m *message.Message) error {
		if m.Kind == message.Request {
			if j.Stop.Requests > 0 && nreq.Load() >= j.Stop.Requests {
				return errStop
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
			if m.Kind != message.Request {
				redactFn = jp.redactor.Response
			}
			out, counts, err := redactFn(m.Raw)
			if err != nil {
				// A message that cannot be parsed cannot be redacted: it
				// must not leave the host.
				if c.add("unredactable-dropped", 1) <= 5 {
					r.log.Warn("message cannot be redacted; not recorded", "kind", m.Kind, "id", m.ID, "err", err)
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
		}
		if err := sink.Write(writeCtx, m); err != nil {
			return err
		}
		if m.Kind == message.Request {
			nreq.Add(1)
			if m.Dst.IsValid() {
				dests[m.Dst] = true
			}
		} else {
			nresp.Add(1)
		}
		if m.Host != "" {
			hosts[m.Host] = true
		}
		if first == 0 || m.Time < first {
			first = m.Time
		}
		last = max(last, m.Time)
		return nil
	}

	jctx, cancel := jobContext(ctx, j)
	stopProgress := startProgress(r.plan.opts, j.Name, func() string {
		line := fmt.Sprintf("%d requests, %d responses recorded", nreq.Load(), nresp.Load())
		st := src.Stats()
		for _, k := range []string{"kernel-drops", "unparsable", "incomplete", "truncated", "streams-dropped", "bad-records", "bad-payloads"} {
			if st[k] > 0 {
				line += fmt.Sprintf(", %s %d", k, st[k])
			}
		}
		return line
	})
	runErr := src.Run(jctx, emit)
	cancel()
	stopProgress()
	res.requests, res.responses = nreq.Load(), nresp.Load()
	if dropped.forgotten > 0 {
		// Their responses, if any came later, were recorded.
		c.add("dropped-ids-forgotten", dropped.forgotten)
	}
	interrupted, runErr := sourceEnded(ctx, runErr)
	res.interrupted = interrupted

	// The sink settles every record within its delivery timeout; the
	// drain bound only guards against a sink that does not.
	closeCtx, closeCancel := context.WithTimeout(context.WithoutCancel(ctx), deliveryTimeout+10*time.Second)
	closeErr := sink.Close(closeCtx)
	closeCancel()
	if sink.client != nil {
		sink.client.Close()
	}
	sinkStats := sink.Stats()
	// The window is saved with a fresh bound, whatever the flush took.
	dctx, dcancel := drainContext(ctx)
	defer dcancel()
	res.written, res.notWritten = sinkStats["written"], sinkStats["failed"]
	c.merge("source.", src.Stats())
	c.merge("sink.", sinkStats)
	res.counters = c.snapshot()
	res.elapsed = time.Since(res.started)
	res.hosts, res.dests, res.first, res.last = sortedKeys(hosts), addrStrings(dests), first, last
	if runErr != nil {
		return res, fmt.Errorf("source: %w", runErr)
	}
	if closeErr != nil {
		return res, closeErr
	}
	if j.SaveWindow != "" && !r.plan.opts.NoSaveWindow {
		kc, _ := r.kafka.get(dctx)
		endOffsets, err := catalog.EndOffsets(dctx, kc.adm, sink.topic)
		if err != nil {
			return res, fmt.Errorf("window end offsets: %w", err)
		}
		w := catalog.Window{
			Name:         j.SaveWindow,
			Topic:        sink.topic,
			Partitions:   catalog.Between(startOffsets, endOffsets),
			RecordingID:  recordingID,
			Scenario:     r.plan.scn.Name,
			Job:          j.Name,
			Messages:     res.written,
			Requests:     res.requests,
			Responses:    res.responses,
			Hosts:        sortedKeys(hosts),
			Destinations: addrStrings(dests),
			CreatedAt:    time.Now().UTC(),
		}
		if first != 0 {
			w.StartedAt, w.EndedAt = time.Unix(0, first).UTC(), time.Unix(0, last).UTC()
		}
		if err := kc.catalog.Save(dctx, w, r.plan.opts.Overwrite); err != nil {
			return res, fmt.Errorf("save window: %w", err)
		}
		res.window = &w
	}
	return res, nil
}

// historyName is the name a replaced window is kept under with --keep-history.
func historyName(w catalog.Window) string {
	return w.Name + "@" + w.CreatedAt.UTC().Format("20060102T150405Z")
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
