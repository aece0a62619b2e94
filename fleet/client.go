package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/user"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/stats"
)

// Client is what the jobs and agents commands use: it reads the fleet
// topics and publishes specs and commands.
type Client struct {
	bus *Bus
	Out io.Writer
	// Submitter, when set, is who signs (recorded in specs and cancels);
	// by default the OS user and host name.
	Submitter string
}

// NewClient is a client over a bus that is already open (a server shares
// one bus between requests, each with its own output).
func NewClient(bus *Bus, out io.Writer) *Client { return &Client{bus: bus, Out: out} }

// Bus returns the client's bus.
func (c *Client) Bus() *Bus { return c.bus }

func (c *Client) submitter() string {
	if c.Submitter != "" {
		return c.Submitter
	}
	return submitter()
}

// Connect opens the bus and reads the topics up to their current end.
func Connect(ctx context.Context, cfg kafkaio.Config, out io.Writer, log *slog.Logger) (*Client, error) {
	bus, err := OpenBus(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.Sync(sctx); err != nil {
		bus.Close()
		return nil, err
	}
	return &Client{bus: bus, Out: out}, nil
}

// Close closes the connection.
func (c *Client) Close() { c.bus.Close() }

// ErrUsage marks errors of the request itself (exit code 2).
var ErrUsage = errors.New("usage")

type usageErr struct{ error }

func (e usageErr) Unwrap() []error { return []error{e.error, ErrUsage} }

func usagef(format string, args ...any) error { return usageErr{fmt.Errorf(format, args...)} }

// SubmitRequest is a job to submit.
type SubmitRequest struct {
	File     string // the scenario's file name
	Text     []byte // the scenario's text
	Job      string
	Selector Selector
	Set      []string
	Shards   int           // replay jobs; 0 means 1
	For      time.Duration // record jobs: stop after
	Key      ed25519.PrivateKey
	JobID    string        // "" for a new one
	TTL      time.Duration // how long agents may take the spec; 0 means 5m
	// Agents, when set, restricts the job to these agents (by name) among
	// those the selector matches.
	Agents []string
}

// NewID returns a fresh ID with a prefix.
func NewID(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b[:])
}

func submitter() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	h, _ := os.Hostname()
	return name + "@" + h
}

// Submit signs and publishes a job, then waits (up to AnswerTimeout) for
// every chosen agent to take it, reporting those that do not answer. It
// returns the job ID.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	shape, err := shapeOf(req.Text, req.Job, req.Set)
	if err != nil {
		return "", usageErr{err}
	}
	if req.Shards > 1 && shape.Kind != KindReplay {
		return "", usagef("--shards applies to replay jobs; job %q records", req.Job)
	}
	if req.For > 0 && shape.Kind != KindRecord {
		return "", usagef("--for applies to record jobs; job %q replays (its window sets its length)", req.Job)
	}
	if req.JobID != "" {
		if js, ok := c.bus.Status(jobKey(req.JobID)); ok {
			fmt.Fprintf(c.Out, "job %s was already submitted (%s); not submitted again\n", req.JobID, js.State)
			return req.JobID, nil
		}
	}
	now := time.Now().UTC()
	var candidates []string
	for _, h := range c.bus.Agents() {
		if len(req.Agents) > 0 && !slices.Contains(req.Agents, h.Name) {
			continue
		}
		if c.bus.AgentAlive(h.Name, now) && h.Labels.Matches(req.Selector) {
			if shape.Kind == KindReplay && !h.Allows(KindReplay) {
				continue
			}
			candidates = append(candidates, h.Name)
		}
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("no live agent matches %s%s (replayctl agents ls)", req.Selector.String(), map[bool]string{true: " and allows replay"}[shape.Kind == KindReplay])
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = 5 * time.Minute
	}
	spec := Spec{
		JobID: req.JobID, Kind: shape.Kind, Job: req.Job, Scenario: string(req.Text), SHA256: ScenarioHash(string(req.Text)),
		File: req.File, Set: slices.Clone(req.Set), Selector: req.Selector, For: Duration(req.For),
		IssuedAt: now, ExpiresAt: now.Add(ttl), Submitter: c.submitter(),
	}
	if spec.JobID == "" {
		spec.JobID = NewID("job")
	}
	switch shape.Kind {
	case KindRecord:
		spec.Agents = candidates
		if req.For > 0 {
			spec.Set = append(spec.Set, fmt.Sprintf("jobs.%s.stop.after=%s", req.Job, req.For))
		}
		rp := &RecordingPlan{ID: NewID("rec"), Window: shape.Window, Topic: shape.Topic, Start: map[int32]int64{}}
		if shape.Window != "" {
			cat, err := catalog.Open(ctx, c.bus.Plain(), c.bus.Admin(), catalogTopic(string(req.Text)))
			if err != nil {
				return "", err
			}
			if old, err := cat.Get(ctx, shape.Window); err == nil {
				return "", usagef("window %q already exists (saved %s); remove it (replayctl windows rm) or record under another name", shape.Window, old.CreatedAt.Format(time.RFC3339))
			}
			if start, err := catalog.EndOffsets(ctx, c.bus.Admin(), shape.Topic); err == nil {
				rp.Start = start
			}
		}
		spec.Recording = rp
	case KindReplay:
		n := max(req.Shards, 1)
		cat, err := catalog.Open(ctx, c.bus.Plain(), c.bus.Admin(), catalogTopic(string(req.Text)))
		if err != nil {
			return "", err
		}
		w, err := cat.Get(ctx, shape.Window)
		if err != nil {
			return "", usagef("window %q: %v", shape.Window, err)
		}
		shards, err := PlanShards(w, n)
		if err != nil {
			return "", usageErr{err}
		}
		if len(candidates) < n {
			return "", fmt.Errorf("%d shards need %d live agents matching %s that allow replay; %d do: %s", n, n, req.Selector.String(), len(candidates), strings.Join(candidates, ", "))
		}
		spec.Agents = candidates[:n]
		spec.Shards = n
		spec.Replay = &ReplayPlan{Window: w.Name, Topic: w.Topic, Shards: shards, StartAt: now.Add(startLead)}
	}
	env, err := Seal("spec", spec, req.Key)
	if err != nil {
		return "", err
	}
	js := Status{JobID: spec.JobID, Kind: spec.Kind, State: Pending, Agents: spec.Agents}
	if err := c.bus.PublishStatus(ctx, jobKey(spec.JobID), js); err != nil {
		return "", err
	}
	rec, err := c.bus.Publish(ctx, JobsTopic, "spec/"+spec.JobID, env)
	if err != nil {
		return "", err
	}
	if testHookAfterSpec != nil {
		testHookAfterSpec(spec.JobID)
	}
	// An agent that ends the job at once (a refusal) waits for this write
	// before it writes the final status (Agent.awaitAssigned).
	js.State, js.SpecOffset = Assigned, rec.Offset
	if err := c.bus.PublishStatus(ctx, jobKey(spec.JobID), js); err != nil {
		return "", err
	}
	fmt.Fprintf(c.Out, "job %s: %s job %q on %s\n", spec.JobID, spec.Kind, spec.Job, strings.Join(spec.Agents, ", "))
	if spec.Recording != nil {
		fmt.Fprintf(c.Out, "recording %s into topic %s", spec.Recording.ID, spec.Recording.Topic)
		if spec.Recording.Window != "" {
			fmt.Fprintf(c.Out, ", window %q saved when the last agent has flushed", spec.Recording.Window)
		}
		fmt.Fprintln(c.Out)
	}
	if spec.Replay != nil {
		for i, sh := range spec.Replay.Shards {
			fmt.Fprintf(c.Out, "shard %d (%d records, partitions %v) → %s\n", i, sh.Records, slices.Sorted(maps.Keys(sh.Ranges)), spec.Agents[i])
		}
		fmt.Fprintf(c.Out, "every shard starts at %s\n", spec.Replay.StartAt.Format(time.RFC3339Nano))
	}
	c.awaitAnswers(ctx, spec)
	// Every agent may have ended already (refused, say), its final job
	// status written before ASSIGNED above replaced it: settle it again.
	c.finishIfDone(ctx, spec)
	return spec.JobID, nil
}

// testHookAfterSpec, set by tests, runs between the spec's publication and
// the job's ASSIGNED status.
var testHookAfterSpec func(jobID string)

// startLead is how far ahead a replay's one start instant is set, so that
// every shard has connected and prefetched before it.
const startLead = 4 * time.Second

// awaitAnswers waits up to AnswerTimeout for every agent to take or refuse
// the job; an agent that does not answer is reported (and, for a record
// job, marked FAILED so that the others' window is saved without it).
func (c *Client) awaitAnswers(ctx context.Context, spec Spec) {
	deadline := time.Now().Add(AnswerTimeout)
	for {
		var silent []int
		for i, name := range spec.Agents {
			key := agentKey(spec.JobID, name)
			if spec.Kind == KindReplay {
				key = shardKey(spec.JobID, i)
			}
			_, ok := c.bus.Status(key)
			refused := len(c.bus.StatusPrefix(jobKey(spec.JobID)+"/refused/"+name+"/")) > 0
			if !ok && !refused {
				silent = append(silent, i)
			}
		}
		if len(silent) == 0 {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			for _, i := range silent {
				name := spec.Agents[i]
				fmt.Fprintf(c.Out, "agent %s did not answer within %s; the others go on\n", name, AnswerTimeout)
				if spec.Kind == KindRecord {
					// Also after an interrupt, but bounded: Kafka may be gone.
					pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
					err := c.bus.PublishStatus(pctx, agentKey(spec.JobID, name), Status{
						JobID: spec.JobID, Kind: spec.Kind, Agent: name, State: Failed,
						Reason: fmt.Sprintf("did not answer within %s", AnswerTimeout),
					})
					cancel()
					if err != nil {
						fmt.Fprintf(c.Out, "could not mark agent %s FAILED (the job waits for it): %v\n", name, err)
					}
				}
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-c.bus.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// finishIfDone publishes a job's final status when every part has ended
// and the job's status is not final: the agents ended before the submitter
// marked the silent ones, or wrote the final status before the submitter's
// ASSIGNED replaced it (nobody else would write it).
func (c *Client) finishIfDone(ctx context.Context, spec Spec) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if c.bus.Sync(sctx) != nil {
		return
	}
	for _, p := range jobParts(c.bus, spec) {
		if !p.State.Final() {
			return
		}
	}
	a := &Agent{cfg: AgentConfig{Name: "submitter"}, bus: c.bus, log: slog.New(slog.DiscardHandler)}
	a.finishJob(sctx, spec)
}

// SpecOf returns a job's spec as published (unverified: for display).
func (c *Client) SpecOf(id string) (Spec, bool) { return c.spec(id) }

// spec returns a job's spec as published (unverified: for display).
func (c *Client) spec(id string) (Spec, bool) {
	var out Spec
	found := false
	for _, jr := range c.bus.Jobs(0) {
		if jr.Key == "spec/"+id && jr.Envelope.Type == "spec" {
			var s Spec
			if err := jsonUnmarshal(jr.Envelope.Payload, &s); err == nil {
				out, found = s, true
				if js, ok := c.bus.Status(jobKey(id)); ok && js.SpecOffset == jr.Offset {
					return s, true
				}
			}
		}
	}
	return out, found
}

// Wait follows a job until it is final, printing progress every second,
// then prints the merged summary. It returns the job's final status.
func (c *Client) Wait(ctx context.Context, id string) (Status, error) {
	last := ""
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		js, ok := c.bus.Status(jobKey(id))
		if !ok {
			return Status{}, usagef("no job %q", id)
		}
		if js.State.Final() {
			c.printJob(id)
			return js, nil
		}
		line := c.progressLine(id)
		if line != last {
			fmt.Fprintln(c.Out, line)
			last = line
		}
		select {
		case <-ctx.Done():
			return js, ctx.Err()
		case <-tick.C:
		}
	}
}

func (c *Client) progressLine(id string) string {
	parts := c.parts(id)
	var b strings.Builder
	fmt.Fprintf(&b, "[%s]", time.Now().Format("15:04:05"))
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		p := parts[k]
		fmt.Fprintf(&b, " %s=%s", partName(p), p.State)
		if p.Progress != nil && p.Progress.Line != "" {
			fmt.Fprintf(&b, " (%s)", p.Progress.Line)
		}
	}
	return b.String()
}

func partName(p Status) string {
	if p.Shard != nil {
		return fmt.Sprintf("shard%d@%s", *p.Shard, p.Agent)
	}
	return p.Agent
}

// parts returns a job's per-agent and per-shard records (not refusals or
// lost records), by key.
func (c *Client) parts(id string) map[string]Status {
	out := map[string]Status{}
	for k, s := range c.bus.StatusPrefix(jobKey(id) + "/") {
		rest := strings.TrimPrefix(k, jobKey(id)+"/")
		if strings.Count(rest, "/") == 1 && (strings.HasPrefix(rest, "agent/") || strings.HasPrefix(rest, "shard/")) {
			out[k] = s
		}
	}
	return out
}

// ExitCode maps a final job state to replayctl's exit codes.
func ExitCode(js Status) int {
	switch js.State {
	case Succeeded:
		return 0
	case AssertFailed:
		return 3
	}
	if strings.Contains(js.Reason, "invalid scenario") || strings.Contains(js.Reason, "production guard") {
		return 2
	}
	return 1
}

// Show prints a job: its spec, its state, every agent's or shard's state,
// refusals with their reasons, lost shards, and the result.
func (c *Client) Show(id string) error {
	if _, ok := c.bus.Status(jobKey(id)); !ok {
		return usagef("no job %q (replayctl jobs ls)", id)
	}
	c.printJob(id)
	return nil
}

func (c *Client) printJob(id string) {
	js, _ := c.bus.Status(jobKey(id))
	w := c.Out
	fmt.Fprintf(w, "job %s  %s  %s\n", id, js.Kind, js.State)
	if spec, ok := c.spec(id); ok {
		fmt.Fprintf(w, "  scenario %s (sha256 %s…) job %q on %s, submitted %s by %s, expires %s\n",
			spec.File, spec.SHA256[:12], spec.Job, spec.Selector.String(), spec.IssuedAt.Format(time.RFC3339), spec.Submitter, spec.ExpiresAt.Format(time.RFC3339))
		if spec.Recording != nil {
			fmt.Fprintf(w, "  recording %s into %s\n", spec.Recording.ID, spec.Recording.Topic)
		}
	}
	if js.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", js.Reason)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  PART\tAGENT\tSTATE\tATTEMPT\tDETAIL")
	all := c.bus.StatusPrefix(jobKey(id) + "/")
	for _, k := range slices.Sorted(maps.Keys(all)) {
		s := all[k]
		part := strings.TrimPrefix(k, jobKey(id)+"/")
		detail := s.Reason
		if r := s.Result; r != nil {
			if s.Kind == KindReplay {
				detail = strings.TrimSpace(fmt.Sprintf("sent %d ok %d errors %d p50 %s p99 %s late-max %s %s", r.Sent, r.OK, r.Errors,
					stats.DurationText(time.Duration(r.LatencyP50)), stats.DurationText(time.Duration(r.LatencyP99)), stats.DurationText(time.Duration(r.LatenessMax)), detail))
			} else {
				detail = strings.TrimSpace(fmt.Sprintf("requests %d responses %d written %d not-written %d %s", r.Requests, r.Responses, r.Written, r.NotWritten, detail))
			}
		}
		if s.Progress != nil && s.Progress.Line != "" && !s.State.Final() {
			if s.State == Lost {
				detail += " (last progress: " + s.Progress.Line + ")"
			} else {
				detail = s.Progress.Line
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", part, s.Agent, s.State, s.Attempt, detail)
	}
	tw.Flush()
	if r := js.Result; r != nil && js.State.Final() {
		if js.Kind == KindRecord {
			fmt.Fprintf(w, "  recorded: %d requests, %d responses, %d written, %d not written\n", r.Requests, r.Responses, r.Written, r.NotWritten)
			for _, h := range slices.Sorted(maps.Keys(r.HostCounts)) {
				fmt.Fprintf(w, "    %s: %d requests\n", h, r.HostCounts[h])
			}
			if r.Window != "" {
				fmt.Fprintf(w, "  window %q saved: one window for every host\n", r.Window)
			}
		} else {
			fmt.Fprintf(w, "  merged: sent %d, ok %d, errors %d", r.Sent, r.OK, r.Errors)
			if len(r.Status) > 0 {
				codes := slices.Sorted(maps.Keys(r.Status))
				var parts []string
				for _, code := range codes {
					parts = append(parts, fmt.Sprintf("%d×%d", code, r.Status[code]))
				}
				fmt.Fprintf(w, ", status %s", strings.Join(parts, " "))
			}
			fmt.Fprintf(w, "\n")
			if s, ok := r.Summary(); ok {
				// Exact: the shards' histograms merged bucket by bucket.
				l := s.Latency
				d := stats.DurationText
				fmt.Fprintf(w, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s (exact, shards merged)\n", d(l.P50), d(l.P90), d(l.P99), d(l.P999), d(l.Max))
				fmt.Fprintf(w, "  lateness  p50 %s  p99 %s  max %s\n", d(s.Lateness.P50), d(s.Lateness.P99), d(s.Lateness.Max))
				fmt.Fprintf(w, "  rate      scheduled %.1f/s  achieved %.1f/s\n", s.Scheduled, s.Achieved)
			} else {
				fmt.Fprintf(w, "  latency max %s, lateness max %s\n", stats.DurationText(time.Duration(r.LatencyMax)), stats.DurationText(time.Duration(r.LatenessMax)))
			}
			// The job's assertions, evaluated on the merged summary.
			for _, a := range r.Asserts {
				line := "ok   " + a
				if i := slices.IndexFunc(r.Failed, func(f string) bool { return strings.Contains(f, a) }); i >= 0 {
					line = "FAIL " + r.Failed[i]
				}
				fmt.Fprintf(w, "  assert %s\n", line)
			}
			for _, k := range slices.Sorted(maps.Keys(r.ErrorClasses)) {
				fmt.Fprintf(w, "    errors %s: %d\n", k, r.ErrorClasses[k])
			}
			for _, k := range []string{"possible-duplicates", "resume-skipped"} {
				if v := r.Counters[k]; v > 0 {
					fmt.Fprintf(w, "  %s: %d\n", k, v)
				}
			}
			if len(r.Asserts) == 0 {
				for _, f := range r.Failed {
					fmt.Fprintf(w, "  assertion failed: %s\n", f)
				}
			}
		}
	}
}

// List prints every job, newest first.
func (c *Client) List() {
	var jobs []Status
	for k, s := range c.bus.StatusPrefix("job/") {
		if strings.Count(k, "/") == 1 {
			jobs = append(jobs, s)
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].At.After(jobs[j].At) })
	tw := tabwriter.NewWriter(c.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tKIND\tSTATE\tAGENTS\tUPDATED\tREASON")
	for _, s := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.JobID, s.Kind, s.State, strings.Join(s.Agents, ","), s.At.Format(time.RFC3339), s.Reason)
	}
	tw.Flush()
}

// Logs prints the output of every run of a job (vars' values masked).
func (c *Client) Logs(id string) error {
	if _, ok := c.bus.Status(jobKey(id)); !ok {
		return usagef("no job %q", id)
	}
	parts := c.parts(id)
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		p := parts[k]
		fmt.Fprintf(c.Out, "==> %s (%s, %s)\n", strings.TrimPrefix(k, jobKey(id)+"/"), p.Agent, p.State)
		fmt.Fprint(c.Out, p.Log)
		if p.Log != "" && !strings.HasSuffix(p.Log, "\n") {
			fmt.Fprintln(c.Out)
		}
	}
	return nil
}

// ForgetAfter is how long `agents ls` keeps showing an agent that stopped
// or was lost (all of them with --all).
const ForgetAfter = time.Hour

// Agents prints the agents: name, labels, allowed kinds, version, last
// heartbeat, running job. Agents silent for longer than ForgetAfter are
// left out unless all is set.
func (c *Client) Agents(all bool) {
	now := time.Now()
	tw := tabwriter.NewWriter(c.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLABELS\tALLOW\tVERSION\tLAST HEARTBEAT\tSTATE\tJOB\tCLOCK OFFSET\tADDRESSES")
	hidden := 0
	for _, h := range c.bus.Agents() {
		_, ts, _ := c.bus.Agent(h.Name)
		if !all && now.Sub(ts) > ForgetAfter {
			hidden++
			continue
		}
		state := "alive"
		switch {
		case h.Stopped:
			state = "stopped"
		case !c.bus.AgentAlive(h.Name, now):
			state = "lost"
		}
		job := h.Job
		if job == "" {
			job = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%s\t%s\t%s\n", h.Name, h.Labels.String(), strings.Join(h.Allow, ","), h.Version,
			now.Sub(ts).Truncate(100*time.Millisecond), state, job, time.Duration(h.ClockOffset), strings.Join(h.Addrs, ","))
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(c.Out, "(%d agent(s) silent for more than %s not shown; --all shows them)\n", hidden, ForgetAfter)
	}
}

// CancelJob publishes a signed cancel and waits (up to 10 s) until every
// run of the job has stopped; the outcome is published under the command ID
// (a second cancel with the same ID only reports it).
func (c *Client) CancelJob(ctx context.Context, id, commandID string, key ed25519.PrivateKey) error {
	js, ok := c.bus.Status(jobKey(id))
	if !ok {
		return usagef("no job %q", id)
	}
	if commandID == "" {
		commandID = NewID("cancel")
	}
	if out, ok := c.bus.Status(cmdKey(commandID)); ok && out.State.Final() {
		fmt.Fprintf(c.Out, "command %s already done: %s %s\n", commandID, out.State, out.Reason)
		return nil
	}
	outcome := Status{JobID: id, CommandID: commandID}
	if js.State.Final() {
		outcome.State, outcome.Reason = Succeeded, "job already "+string(js.State)
		fmt.Fprintf(c.Out, "job %s is already %s\n", id, js.State)
		return c.bus.PublishStatus(ctx, cmdKey(commandID), outcome)
	}
	now := time.Now().UTC()
	env, err := Seal("cancel", Cancel{CommandID: commandID, JobID: id, IssuedAt: now, ExpiresAt: now.Add(10 * time.Minute), Submitter: c.submitter()}, key)
	if err != nil {
		return err
	}
	if _, err := c.bus.Publish(ctx, JobsTopic, "cancel/"+id, env); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		running := 0
		for _, p := range c.parts(id) {
			if !p.State.Final() && p.State != Lost {
				running++
			}
		}
		if running == 0 {
			outcome.State, outcome.Reason = Succeeded, "every run stopped"
			break
		}
		if time.Now().After(deadline) {
			outcome.State, outcome.Reason = Failed, fmt.Sprintf("%d run(s) still not stopped after 10s", running)
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.bus.Changed():
		case <-time.After(200 * time.Millisecond):
		}
	}
	if spec, ok := c.spec(id); ok {
		c.finishIfDone(ctx, spec)
	}
	fmt.Fprintf(c.Out, "cancel %s of job %s: %s (%s)\n", commandID, id, outcome.State, outcome.Reason)
	if err := c.bus.PublishStatus(ctx, cmdKey(commandID), outcome); err != nil {
		return err
	}
	if outcome.State != Succeeded {
		return errors.New(outcome.Reason)
	}
	return nil
}
