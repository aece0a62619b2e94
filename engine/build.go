package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sources"
	"github.com/replayctl/replayctl/sources/capturesrc"
	"github.com/replayctl/replayctl/sources/gorsrc"
	"github.com/replayctl/replayctl/sources/pcapsrc"
	"github.com/replayctl/replayctl/sources/windowsrc"
)

// hostname is the capturing host's name put on recorded messages:
// Options.Host, else the OS host name.
func (r *runner) hostname() string {
	if r.plan.opts.Host != "" {
		return r.plan.opts.Host
	}
	return hostname()
}

// hostname is the OS host name ("unknown" when it cannot be read).
func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}

func ports(ps []int) []uint16 {
	out := make([]uint16, 0, len(ps))
	for _, p := range ps {
		out = append(out, uint16(p))
	}
	return out
}

func hostAddrs(hs []string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, h := range hs {
		a, err := netip.ParseAddr(h)
		if err != nil {
			return nil, fmt.Errorf("capture host %q: not an IP address", h)
		}
		out = append(out, a)
	}
	return out, nil
}

// sourceFactory builds a fresh source each time it is called (a looped
// replay reads its source again).
type sourceFactory func() sources.Source

// sourceWindow is the window a replay reads, with what it lacks of its
// recording (a partial save, records gone by retention), told in the
// summary and the report.
type sourceWindow struct {
	catalog.Window
	notes []string
}

// buildSource resolves a job's source. For window sources it resolves the
// window once (saved recording, offsets, time range) and returns it too.
func (r *runner) buildSource(ctx context.Context, j *scenario.Job) (sourceFactory, *sourceWindow, error) {
	src := j.Source
	switch src.Kind {
	case scenario.SourcePcap:
		cfg := capture.Config{Ports: ports(src.Pcap.Ports), Responses: src.Pcap.Responses, MaxBody: src.Pcap.MaxBody, MaxBufferedBytes: src.Pcap.MaxBuffered, Host: r.hostname(), NoDecap: src.Pcap.Decap == "off"}
		path, root := src.Pcap.Path.Abs, src.Pcap.Path.Root
		if root != "" {
			// A restricted scenario's file, read through an os.Root on
			// the directory it was checked to be under.
			f, err := sources.OpenIn(root, path)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: pcap source: %w", src.Pos, err)
			}
			f.Close()
			return func() sources.Source { return pcapsrc.NewWithin(root, path, cfg) }, nil, nil
		}
		if _, err := os.Stat(path); err != nil {
			return nil, nil, fmt.Errorf("%s: pcap source: %w", src.Pos, err)
		}
		return func() sources.Source { return pcapsrc.New(path, cfg) }, nil, nil
	case scenario.SourceGor:
		path, root := src.Gor.Path.Abs, src.Gor.Path.Root
		newGor := func() *gorsrc.Source {
			if root != "" {
				// As a pcap's: through an os.Root on its directory.
				return gorsrc.NewWithin(root, path, r.log)
			}
			return gorsrc.New(path, r.log)
		}
		// A missing file is told at the scenario's line, before the job
		// starts, as a pcap's is.
		if err := newGor().Check(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.Pos, err)
		}
		return func() sources.Source { return newGor() }, nil, nil
	case scenario.SourceCapture:
		c := src.Capture
		hosts, err := hostAddrs(c.Hosts)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.Pos, err)
		}
		cfg := capture.LiveConfig{
			Config:      capture.Config{Ports: ports(c.Ports), Hosts: hosts, Responses: c.Responses, MaxBody: c.MaxBody, MaxBufferedBytes: c.MaxBuffered, Host: r.hostname(), NoDecap: c.Decap == "off"},
			Snaplen:     c.Snaplen,
			RingSize:    c.RingSize,
			Promiscuous: c.Promiscuous,
		}
		iface := c.Interface
		return func() sources.Source { return capturesrc.New(iface, cfg) }, nil, nil
	case scenario.SourceWindow:
		kc, err := r.kafka.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		w, opts, notes, err := r.resolveWindow(ctx, kc, src)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", src.Pos, err)
		}
		opts.Logger = r.log
		w, opts = r.shard.restrict(r, w, opts)
		if r.plan.opts.WindowRanges != nil {
			w = restrictWindow(w, r.plan.opts.WindowRanges)
		}
		clientOpts := kc.opts
		return func() sources.Source { return windowsrc.New(clientOpts, w, opts) }, &sourceWindow{Window: w, notes: notes}, nil
	}
	return nil, nil, fmt.Errorf("%s: unknown source kind %q", src.Pos, src.Kind)
}

// reorderOpt is a window's reorder for windowsrc: unset is its default,
// 0s is off.
func reorderOpt(d *time.Duration) time.Duration {
	switch {
	case d == nil:
		return 0
	case *d == 0:
		return -1
	}
	return *d
}

// deniedTopic is Options.DeniedTopic's verdict on topic (nil without one).
func (r *runner) deniedTopic(topic string) error {
	if r.plan.opts.DeniedTopic == nil {
		return nil
	}
	return r.plan.opts.DeniedTopic(topic)
}

// resolveWindow turns a window source into exact offset ranges, and says
// what the window lacks of its recording (each note also logged).
func (r *runner) resolveWindow(ctx context.Context, kc *kafkaConn, src scenario.Source) (catalog.Window, windowsrc.Options, []string, error) {
	ref := src.WindowRef
	if ref == nil || ref.Kind == scenario.WindowRecording {
		name := src.Window
		opts := windowsrc.Options{}
		if ref != nil {
			name = ref.Recording
			opts.AllowPartial = ref.AllowPartial
			opts.OnlyRecording = ref.OnlyRecording
			opts.Reorder = reorderOpt(ref.Reorder)
		}
		w, err := kc.catalog.Get(ctx, name)
		if errors.Is(err, catalog.ErrNotFound) {
			return catalog.Window{}, opts, nil, r.windowNotFound(ctx, kc, name, err)
		}
		if err != nil {
			return catalog.Window{}, opts, nil, fmt.Errorf("window %q: %w", name, err)
		}
		if err := r.deniedTopic(w.Topic); err != nil {
			return catalog.Window{}, opts, nil, fmt.Errorf("window %q: topic %s: %w", name, w.Topic, err)
		}
		if opts.OnlyRecording == "" {
			// A saved window keeps only its own recording's records, even
			// when other recordings wrote to the topic at the same time.
			opts.OnlyRecording = w.RecordingID
		}
		ranges, notes, err := catalog.Check(ctx, kc.adm, w.Topic, w.Partitions, opts.AllowPartial)
		if err != nil {
			return catalog.Window{}, opts, nil, fmt.Errorf("window %q: %w", name, err)
		}
		if w.Partial {
			notes = append([]string{"saved partial: its recording lost " + lostText(w.Lost)}, notes...)
		}
		for _, n := range notes {
			r.log.Warn("partial window", "window", name, "note", n)
		}
		w.Partitions = ranges
		return w, opts, notes, nil
	}
	opts := windowsrc.Options{AllowPartial: ref.AllowPartial, OnlyRecording: ref.OnlyRecording, Reorder: reorderOpt(ref.Reorder)}
	w := catalog.Window{Name: ref.Name, Topic: ref.Topic.Name}
	if err := r.deniedTopic(w.Topic); err != nil {
		return w, opts, nil, fmt.Errorf("window %q: topic %s: %w", ref.Name, w.Topic, err)
	}
	var ranges map[int32]catalog.Range
	now := time.Now()
	switch ref.Kind {
	case scenario.WindowOffsets:
		ranges = map[int32]catalog.Range{}
		if all, ok := ref.Offsets[scenario.AllPartitions]; ok {
			ends, err := catalog.EndOffsets(ctx, kc.adm, w.Topic)
			if err != nil {
				return w, opts, nil, fmt.Errorf("window %q: partitions of %s: %w", ref.Name, w.Topic, err)
			}
			for p := range ends {
				ranges[p] = catalog.Range{Start: all[0], End: all[1]}
			}
		}
		for p, se := range ref.Offsets {
			if p != scenario.AllPartitions {
				ranges[p] = catalog.Range{Start: se[0], End: se[1]}
			}
		}
	case scenario.WindowTime, scenario.WindowLast:
		from, to := now.Add(-ref.Last), now
		if ref.Kind == scenario.WindowTime {
			from = ref.From.Resolve(now)
			if ref.To != nil {
				to = ref.To.Resolve(now)
			}
		}
		if !from.Before(to) {
			return w, opts, nil, fmt.Errorf("window %q: from %s is not before to %s", ref.Name, from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		rs, err := catalog.ResolveTimeRange(ctx, kc.adm, w.Topic, from, to)
		if err != nil {
			return w, opts, nil, fmt.Errorf("window %q: %w", ref.Name, err)
		}
		ranges = rs
		w.StartedAt, w.EndedAt = from, to
		if selected := (catalog.Window{Partitions: rs}).Records(); selected == 0 {
			r.emptyTimeWindow(ctx, kc, ref.Name, w.Topic, from, to)
		}
	default:
		return w, opts, nil, fmt.Errorf("window %q: unknown kind %q", ref.Name, ref.Kind)
	}
	checked, notes, err := catalog.Check(ctx, kc.adm, w.Topic, ranges, opts.AllowPartial)
	if err != nil {
		return w, opts, nil, fmt.Errorf("window %q: %w", ref.Name, err)
	}
	for _, n := range notes {
		r.log.Warn("partial window", "window", ref.Name, "note", n)
	}
	w.Partitions = checked
	w.Messages = w.Records()
	return w, opts, notes, nil
}

// emptyTimeWindow warns that a time window selects no record of a topic
// that has some: from/to and last go by capture time (a pcap's, a .gor
// file's), not by when the records were written, so a recording written
// a minute ago from last week's pcap is not in "last: 15m".
func (r *runner) emptyTimeWindow(ctx context.Context, kc *kafkaConn, name, topic string, from, to time.Time) {
	starts, err := catalog.StartOffsets(ctx, kc.adm, topic)
	if err != nil {
		return
	}
	ends, err := catalog.EndOffsets(ctx, kc.adm, topic)
	if err != nil {
		return
	}
	var held int64
	for p, end := range ends {
		held += max(end-starts[p], 0)
	}
	if held == 0 {
		return
	}
	r.log.Warn(fmt.Sprintf("window %q selects no record: topic %s holds %d records, none captured between %s and %s (a time window goes by capture time, the pcap's or the .gor file's, not by when the records were written to Kafka; use offsets or a saved window for those)",
		name, topic, held, from.Format(time.RFC3339), to.Format(time.RFC3339)))
}

// windowNotFound explains where a saved window was looked for and which
// windows are there.
func (r *runner) windowNotFound(ctx context.Context, kc *kafkaConn, name string, err error) error {
	msg := fmt.Sprintf("%v (looked in %s", err, kc.where())
	if ws, lerr := kc.catalog.List(ctx); lerr == nil {
		var names []string
		for _, w := range ws {
			names = append(names, w.Name)
		}
		if len(names) == 0 {
			msg += "; it has no saved windows: run the job that records it first, or pass --data-dir/--brokers"
		} else {
			msg += "; saved windows there: " + strings.Join(names, ", ")
		}
	}
	// The scenario names a recording that is not there: a usage problem
	// (exit 2), like an unknown reference, not a runtime failure.
	return invalidf("%s)", msg)
}

// restrictWindow keeps the part of w inside ranges (Options.WindowRanges):
// partitions not named are dropped, named ones are cut to the intersection.
func restrictWindow(w catalog.Window, ranges map[int32]catalog.Range) catalog.Window {
	all := w.Records()
	parts := make(map[int32]catalog.Range, len(ranges))
	for p, r := range w.Partitions {
		x, ok := ranges[p]
		if !ok {
			continue
		}
		cut := catalog.Range{Start: max(r.Start, x.Start), End: min(r.End, x.End)}
		if cut.End < cut.Start {
			cut.End = cut.Start
		}
		parts[p] = cut
	}
	w.Partitions = parts
	if all > 0 {
		// Counts of the part kept, in proportion (exact for requests and
		// responses recorded in pairs).
		kept := w.Records()
		w.Requests = w.Requests * kept / all
		w.Responses = w.Responses * kept / all
		w.Messages = w.Messages * kept / all
	}
	return w
}
