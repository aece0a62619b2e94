package engine

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/replayctl/replayctl/scenario"
)

// Describe prints the compiled plan: each job's stages with their resolved
// settings. It does no I/O besides writing to w.
func (p *Plan) Describe(w io.Writer) {
	// The values of secret variables are shown as their ${NAME}, wherever
	// the scenario put them.
	var b strings.Builder
	defer func() { _, _ = io.WriteString(w, p.scn.MaskSecrets(b.String())) }()
	p.describe(&b)
}

func (p *Plan) describe(w io.Writer) {
	s := p.scn
	ks := kafkaSettings(s.Kafka, p.opts)
	fmt.Fprintf(w, "scenario %s (%s)\n", s.Name, s.File)
	if ks.Embedded() {
		fmt.Fprintf(w, "kafka: embedded broker, data dir %s, catalog %s\n", ks.DataDir, ks.CatalogTopic)
	} else {
		fmt.Fprintf(w, "kafka: brokers %s, catalog %s\n", strings.Join(ks.Brokers, ","), ks.CatalogTopic)
	}
	for i, jp := range p.jobs {
		j := jp.job
		kind := "record"
		if jp.replay {
			kind = "replay"
		}
		fmt.Fprintf(w, "\njob %d: %s (%s)", i+1, j.Name, kind)
		if len(j.Needs) > 0 {
			fmt.Fprintf(w, ", needs %s", strings.Join(j.Needs, ", "))
		}
		fmt.Fprintln(w)
		stage := func(name, format string, args ...any) {
			fmt.Fprintf(w, "  %-9s %s\n", name, fmt.Sprintf(format, args...))
		}
		stage("source", "%s", describeSource(j.Source))
		if j.Filter != nil {
			stage("filter", "%s", scenario.MaskCondition(j.Filter.Shown()))
		}
		if j.Sample != nil {
			by := "connection"
			if j.Sample.By != nil {
				by = scenario.MaskCondition(j.Sample.By.Shown())
			}
			stage("sample", "keep %g%% by %s", j.Sample.Percent, by)
		}
		if !jp.replay {
			stage("redact", "%s", describeRedact(j.Redact))
		}
		for _, rw := range j.Rewrite {
			stage("rewrite", "%s", describeRewrite(rw))
		}
		if jp.replay {
			stage("pace", "%s", describePace(j))
		}
		stage("sink", "%s", describeSink(j))
		var stops []string
		if j.Stop.After > 0 {
			stops = append(stops, "after "+durationString(j.Stop.After))
		}
		if j.Stop.Requests > 0 {
			stops = append(stops, fmt.Sprintf("after %d requests", j.Stop.Requests))
		}
		if len(stops) == 0 {
			stops = append(stops, "at end of input")
		}
		stage("stop", "%s", strings.Join(stops, ", "))
		if j.SaveWindow != "" {
			stage("window", "save as %q in %s", j.SaveWindow, ks.CatalogTopic)
		}
		if c := j.Compare; c != nil {
			stage("compare", "%s", describeCompare(c))
		}
		if j.Report.JSON.IsSet() {
			stage("report", "json %s", j.Report.JSON.Abs)
		}
		if j.Report.HTML.IsSet() {
			stage("report", "html %s", j.Report.HTML.Abs)
		}
		for _, a := range j.Assert {
			stage("assert", "%s", a.Shown()) // a secret's ${VAR} as written
		}
	}
}

func describeSource(s scenario.Source) string {
	switch s.Kind {
	case scenario.SourcePcap:
		return fmt.Sprintf("pcap %s, ports %v, responses %t", s.Pcap.Path.Abs, s.Pcap.Ports, s.Pcap.Responses)
	case scenario.SourceGor:
		return "gor " + s.Gor.Path.Abs
	case scenario.SourceCapture:
		c := s.Capture
		ring := fmt.Sprintf("%d MiB", c.RingSize>>20)
		if c.RingSize%(1<<20) != 0 {
			ring = fmt.Sprintf("%d KiB", c.RingSize>>10)
		}
		out := fmt.Sprintf("capture on %s, ports %v, responses %t, snaplen %d, ring %s", c.Interface, c.Ports, c.Responses, c.Snaplen, ring)
		if len(c.Hosts) > 0 {
			out += ", hosts " + strings.Join(c.Hosts, ",")
		}
		return out
	case scenario.SourceWindow:
		ref := s.WindowRef
		if ref == nil {
			return fmt.Sprintf("window %q (saved recording, resolved from the catalog at run time)", s.Window)
		}
		switch ref.Kind {
		case scenario.WindowRecording:
			return fmt.Sprintf("window %s = saved recording %q", ref.Name, ref.Recording)
		case scenario.WindowOffsets:
			var parts []string
			for _, p := range sortedPartitions(ref.Offsets) {
				name := fmt.Sprint(p)
				if p == scenario.AllPartitions {
					name = "*"
				}
				parts = append(parts, fmt.Sprintf("%s:[%d,%d)", name, ref.Offsets[p][0], ref.Offsets[p][1]))
			}
			return fmt.Sprintf("window %s = topic %s %s", ref.Name, ref.Topic.Name, strings.Join(parts, " "))
		case scenario.WindowTime:
			to := "now"
			if ref.To != nil {
				to = ref.To.Raw
			}
			return fmt.Sprintf("window %s = topic %s, records from %s to %s", ref.Name, ref.Topic.Name, ref.From.Raw, to)
		case scenario.WindowLast:
			return fmt.Sprintf("window %s = topic %s, the last %s", ref.Name, ref.Topic.Name, durationString(ref.Last))
		}
	}
	return string(s.Kind)
}

func sortedPartitions(m map[int32][2]int64) []int32 {
	out := make([]int32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func describeRedact(r scenario.Redact) string {
	var what []string
	if r.Defaults {
		what = append(what, "default headers and secret names (query, form, JSON, trailers)")
	}
	add := func(name string, items []string) {
		if len(items) > 0 {
			what = append(what, name+" "+strings.Join(items, ","))
		}
	}
	add("headers", r.Headers)
	add("query", r.Query)
	add("form", r.Form)
	add("json", r.JSON)
	add("patterns", r.PatternsRaw)
	if len(what) == 0 {
		return "off"
	}
	return strings.Join(what, "; ") + " (" + r.Mode + ")"
}

func describeRewrite(rw *scenario.Rewrite) string {
	out := string(rw.Action)
	if rw.Name != "" {
		out += " " + rw.Name
	}
	if rw.JSONPath != "" {
		out += " " + rw.JSONPath
	}
	if rw.Value != nil {
		out += " = " + rw.ShownValue() // a credential's literals masked
	}
	if rw.If != nil {
		out += " if " + scenario.MaskCondition(rw.If.Shown())
	}
	return out
}

func describePace(j *scenario.Job) string {
	var parts []string
	if j.Speed.Max {
		parts = append(parts, "speed max")
	} else {
		parts = append(parts, fmt.Sprintf("speed %gx", j.Speed.Factor))
	}
	if j.Rate.PerSecond > 0 {
		parts = append(parts, fmt.Sprintf("rate cap %g/s", j.Rate.PerSecond))
	}
	if j.Amplify > 1 {
		parts = append(parts, fmt.Sprintf("amplify %dx", j.Amplify))
	}
	if j.Loop.For > 0 {
		parts = append(parts, "loop for "+durationString(j.Loop.For))
	} else if j.Loop.Count > 1 {
		parts = append(parts, fmt.Sprintf("loop %d times", j.Loop.Count))
	}
	if j.MaxGap > 0 {
		parts = append(parts, "max gap "+durationString(j.MaxGap))
	}
	if j.StartAt != nil {
		parts = append(parts, "start at "+j.StartAt.Raw)
	}
	return strings.Join(parts, ", ")
}

func describeSink(j *scenario.Job) string {
	s := j.Sink
	switch s.Kind {
	case scenario.SinkKafka:
		return fmt.Sprintf("kafka topic %s (%d partitions)", s.Kafka.Topic.Name, s.Kafka.Topic.Partitions)
	case scenario.SinkHTTP:
		h := s.HTTP
		// One timeout for all (the sink's, or the targets' when they share
		// it) is said once; different ones each after its target.
		timeout := targetTimeout(h, h.Targets[0])
		for _, t := range h.Targets[1:] {
			if targetTimeout(h, t) != timeout {
				timeout = 0
			}
		}
		var ts []string
		for _, t := range h.Targets {
			u := t.Shown() // no password, no token
			if timeout == 0 {
				u += " (timeout " + durationString(targetTimeout(h, t)) + ")"
			}
			ts = append(ts, fmt.Sprintf("%s %s", t.Name, u))
		}
		out := "http " + strings.Join(ts, ", ")
		if len(h.Targets) > 1 {
			out += ", " + h.Mode
		}
		if (!j.Speed.Max || j.Rate.PerSecond > 0) && !h.WorkersSet {
			out += fmt.Sprintf(", open model (each request at its instant, up to %d connections", h.MaxConnections)
			if h.MinConnections > 0 {
				out += fmt.Sprintf(", %d per target opened ahead", h.MinConnections)
			}
			out += ")"
		} else {
			out += fmt.Sprintf(", closed model (%d workers)", h.Workers)
		}
		if timeout > 0 {
			out += ", timeout " + durationString(timeout)
		}
		if h.Session {
			out += ", sessions"
		}
		if h.Protocol != "" && h.Protocol != scenario.ProtocolAuto {
			out += ", protocol " + h.Protocol
		}
		if h.PreserveHost {
			out += ", preserve host"
		} else {
			out += ", " + describeHost(j.Rewrite)
		}
		return out
	case scenario.SinkGor:
		return "gor " + s.Gor.Path.Abs
	case scenario.SinkStdout:
		f := s.Stdout.Format
		if f == "" {
			f = "payload"
		}
		return "stdout (" + f + ")"
	}
	return string(s.Kind)
}

// describeHost tells which Host an http sink without preserve-host sends:
// the target's, except where a rewrite sets it (set-host, set-header Host):
// that Host is sent as it is.
func describeHost(rws []*scenario.Rewrite) string {
	var setters []string
	always := ""
	for _, rw := range rws {
		var what string
		switch {
		case rw.Action == scenario.SetHost:
			what = string(rw.Action)
		case rw.Action == scenario.SetHeader && strings.EqualFold(rw.Name, "Host"):
			what = string(rw.Action) + " " + rw.Name
		default:
			continue
		}
		setters = append(setters, what)
		if rw.If == nil && always == "" {
			always = what
		}
	}
	switch {
	case always != "":
		return "host set by the rewrite (" + always + "), not the target's"
	case len(setters) > 0:
		return "host rewritten to the target, except where a rewrite sets it (" + strings.Join(setters, ", ") + ")"
	}
	return "host rewritten to the target"
}

func describeCompare(c *scenario.Compare) string {
	var parts []string
	if c.Status {
		parts = append(parts, "status")
	}
	if len(c.Headers) > 0 {
		parts = append(parts, "headers "+strings.Join(c.Headers, ","))
	}
	if c.Body {
		parts = append(parts, "body")
	}
	if len(c.Ignore) > 0 {
		parts = append(parts, "ignoring "+strings.Join(c.Ignore, ","))
	}
	if c.Tolerance > 0 {
		parts = append(parts, fmt.Sprintf("tolerance %g", c.Tolerance))
	}
	if c.Noise != nil {
		parts = append(parts, "noise from target "+c.Noise.Name)
	}
	return strings.Join(parts, ", ")
}
