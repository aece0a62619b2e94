package fleet

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"os"
	"os/user"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/scenario"
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
	// Trust, when set, are the keys Show checks a spec's signature
	// against: only a verified spec's submitter is shown as such.
	Trust []ed25519.PublicKey
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
	TTL      time.Duration // how long agents may take the spec; 0 means DefaultTTL, at most MaxTTL
	// Agents, when set, restricts the job to these agents (by name) among
	// those the selector matches.
	Agents []string
}

// ErrConflict marks a job ID already submitted with another spec (the
// API's 409); ErrNoAgent a job that no live agent matching its selector
// allows (the API's 422). Errors marked with either are usage errors too.
var (
	ErrConflict = errors.New("job ID already submitted with another spec")
	ErrNoAgent  = errors.New("no live agent can run the job")
)

// submitErr is a usage error of one more kind (ErrConflict, ErrNoAgent).
type submitErr struct {
	error
	kind error
}

func (e submitErr) Unwrap() []error { return []error{e.error, ErrUsage, e.kind} }

// InvalidScenarioError is a submission whose scenario an agent would refuse
// as invalid whatever its --var values: every problem, FILE:LINE:COL:
// message. It is a usage error.
type InvalidScenarioError struct {
	File     string
	Problems []string
}

func (e *InvalidScenarioError) Error() string {
	return fmt.Sprintf("invalid scenario %s (%s):\n%s", e.File, plural(len(e.Problems), "problem"), strings.Join(e.Problems, "\n"))
}

// Unwrap makes it a usage error.
func (e *InvalidScenarioError) Unwrap() error { return ErrUsage }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// MaxShards is the most shards a replay job is cut into.
const MaxShards = 256

// JobIDPattern is what a job ID given by the submitter must look like.
var JobIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// Checked is what CheckSubmit found of a submission.
type Checked struct {
	Kind string   // KindRecord or KindReplay
	Set  []string // the overrides the agents apply: the request's, then stop.after for For
	// Vars are the ${VAR}s with no default: each agent supplies them (its
	// --var). While there are any, the scenario is loaded but not compiled
	// here (the agents compile it with their values).
	Vars  []string
	shape jobShape
}

// CheckSubmit checks a submission without the fleet: what `replayctl serve`
// answers 400 to and `jobs submit` exits 2 for. The request (checkRequest),
// and the scenario as the agents load it: with the same overrides and no
// environment (a ${VAR} without a default is the agents' --var, not a
// problem), then compiled as `replayctl validate` does when no such var is
// left. Relative paths in the scenario resolve against File's directory. An
// invalid scenario is an *InvalidScenarioError; every error is a usage
// error (ErrUsage).
func CheckSubmit(req SubmitRequest) (Checked, error) {
	if err := checkFields(req); err != nil {
		return Checked{}, err
	}
	file := req.File
	if file == "" {
		file = "scenario.yaml"
	}
	s, problems, vars := loadForSubmit(file, req.Text, submitSet(req))
	if len(problems) > 0 {
		return Checked{Vars: vars}, &InvalidScenarioError{File: file, Problems: problems}
	}
	chk, err := checkRequest(req)
	if err != nil {
		return chk, err
	}
	chk.Vars = vars
	if s != nil {
		if _, err := engine.Compile(s, engine.Options{Jobs: []string{req.Job}}); err != nil {
			var ds scenario.Diagnostics
			if errors.As(err, &ds) {
				problems = make([]string, len(ds))
				for i, d := range ds {
					problems[i] = d.String()
				}
			} else {
				problems = []string{file + ": " + err.Error()}
			}
			return chk, &InvalidScenarioError{File: file, Problems: problems}
		}
	}
	return chk, nil
}

// checkFields checks a request's fields: the job, a selector or agent
// names, the ID's form, the shards (0 means 1), For not negative, TTL (0
// means the default) not negative nor over MaxTTL, every override
// PATH=VALUE.
func checkFields(req SubmitRequest) error {
	switch {
	case req.Job == "":
		return usagef("a job is required (the scenario's job to run)")
	case len(req.Selector) == 0 && len(req.Agents) == 0:
		return usagef("a selector (agent labels: role=web) or agent names are required")
	case req.JobID != "" && !JobIDPattern.MatchString(req.JobID):
		return usagef("job ID %q: letters, digits, '.', '_', '-' (up to 128), starting with a letter or digit", req.JobID)
	case req.Shards < 0 || req.Shards > MaxShards:
		return usagef("shards %d: want 1 to %d", req.Shards, MaxShards)
	case req.For < 0:
		return usagef("for %s: want a positive duration such as 30s or 10m", req.For)
	case req.TTL < 0:
		return usagef("ttl %s: want a positive duration such as 5m (how long agents may take the spec)", req.TTL)
	case req.TTL > MaxTTL:
		return usagef("ttl %s: more than the maximum %s (agents refuse a spec valid for longer than their --max-spec-ttl, %s by default)", req.TTL, MaxTTL, DefaultMaxSpecTTL)
	}
	for _, st := range req.Set {
		if p, _, ok := strings.Cut(st, "="); !ok || p == "" {
			return usagef("--set %q: want PATH=VALUE", st)
		}
	}
	return nil
}

// submitSet is the overrides the agents apply: the request's, then
// stop.after for For.
func submitSet(req SubmitRequest) []string {
	set := slices.Clone(req.Set)
	if req.For > 0 {
		set = append(set, StopAfterSet(req.Job, JobNames(req.Text), req.For))
	}
	return set
}

// StopAfterSet is the --set override a submission's For adds: job's
// stop.after, its name quoted where the scenario's job names (jobs) need
// it (scenario.SetKey).
func StopAfterSet(job string, jobs []string, d time.Duration) string {
	return fmt.Sprintf("jobs.%s.stop.after=%s", scenario.SetKey(job, jobs), d)
}

// IsStopAfterSet reports whether s is the override For added for job and
// d, its job's name quoted or not.
func IsStopAfterSet(s, job string, d time.Duration) bool {
	p, v, _ := strings.Cut(s, "=")
	return d > 0 && v == d.String() && strings.Join(scenario.SetPathKeys(p), ".") == "jobs."+job+".stop.after"
}

// JobNames are the names of the jobs of a scenario's text, as far as it
// reads as YAML (none when it does not: SetKey then quotes dotted names
// only).
func JobNames(text []byte) []string {
	info, err := peekScenario(text)
	if err != nil {
		return nil
	}
	return slices.Collect(maps.Keys(info.Jobs))
}

// checkRequest is CheckSubmit without loading the scenario (whose paths
// depend on where its file is, which only the caller knows: jobs submit
// runs CheckSubmit, serve its own check in its scenarios directory): the
// fields, the job's kind and names (shapeOf), --shards only for a replay
// and For only for a record job.
func checkRequest(req SubmitRequest) (Checked, error) {
	if err := checkFields(req); err != nil {
		return Checked{}, err
	}
	if info, err := peekScenario(req.Text); err == nil {
		if _, ok := info.Jobs[req.Job]; !ok {
			return Checked{}, usagef("scenario has no job %q (jobs: %s)", req.Job, strings.Join(slices.Sorted(maps.Keys(info.Jobs)), ", "))
		}
	}
	shape, err := shapeOf(req.Text, req.Job, req.Set)
	if err != nil {
		return Checked{}, usageErr{err}
	}
	chk := Checked{Kind: shape.Kind, Set: submitSet(req), shape: shape}
	if req.Shards > 1 && shape.Kind != KindReplay {
		return chk, usagef("--shards applies to replay jobs; job %q records", req.Job)
	}
	if req.For > 0 && shape.Kind != KindRecord {
		return chk, usagef("--for applies to record jobs; job %q replays (its window sets its length)", req.Job)
	}
	return chk, nil
}

// loadForSubmit loads a scenario as a submitter sees it: with no
// environment at all (the submitter's is not the agents'), so a ${VAR}
// without a default is a value each agent supplies rather than a problem.
// It returns the scenario (nil while such a var is left, or on problems),
// every other problem as FILE:LINE:COL: message, and the vars.
func loadForSubmit(file string, text []byte, set []string) (*scenario.Scenario, []string, []string) {
	var problems []string
	if loc := envCall.FindIndex(text); loc != nil {
		line := 1 + strings.Count(string(text[:loc[0]]), "\n")
		col := 1 + loc[0] - (strings.LastIndexByte(string(text[:loc[0]]), '\n') + 1)
		problems = append(problems, envRefusal(fmt.Sprintf("%s:%d:%d", file, line, col), ""))
	}
	none := func(string) (string, bool) { return "", false }
	unset := map[scenario.Pos]string{} // the agents' --var supply these
	s, err := scenario.LoadBytes(file, text, scenario.Options{Set: set, Env: none, OnUnset: func(pos scenario.Pos, name string) { unset[pos] = name }})
	if err == nil {
		if len(problems) == 0 {
			// env() the text check above does not see (a --set override,
			// a YAML escape): agents refuse every call the scenario has.
			for _, r := range s.EnvRefs {
				problems = append(problems, envRefusal(r.Pos.String(), r.Name))
			}
		}
		// Topics the agents refuse to let a job read or write.
		problems = append(problems, checkTopics(s)...)
		if len(problems) > 0 {
			return nil, problems, nil
		}
		return s, nil, nil
	}
	var ds scenario.Diagnostics
	if !errors.As(err, &ds) {
		return nil, append(problems, file+": "+err.Error()), nil
	}
	var vars []string
	for _, d := range ds {
		if v, ok := unset[d.Pos]; ok {
			if !slices.Contains(vars, v) {
				vars = append(vars, v)
			}
			continue
		}
		problems = append(problems, d.String())
	}
	return nil, problems, vars
}

// specDiff names briefly how a submission differs from a job's spec ("" if
// it does not): the scenario text, the job, the overrides, the selector,
// the shards, For.
func specDiff(old Spec, req SubmitRequest, chk Checked) string {
	var diffs []string
	add := func(what, was, now string) {
		if was != now {
			diffs = append(diffs, fmt.Sprintf("%s %s, now %s", what, orNone(was), orNone(now)))
		}
	}
	if old.SHA256 != ScenarioHash(string(req.Text)) {
		diffs = append(diffs, fmt.Sprintf("scenario text sha256 %.12s…, now %.12s…", old.SHA256, ScenarioHash(string(req.Text))))
	}
	add("job", old.Job, req.Job)
	add("kind", old.Kind, chk.Kind)
	add("selector", old.Selector.String(), req.Selector.String())
	shards := 0
	if chk.Kind == KindReplay {
		shards = max(req.Shards, 1)
	}
	add("shards", strconv.Itoa(old.Shards), strconv.Itoa(shards))
	add("for", durText(time.Duration(old.For)), durText(req.For))
	// The overrides given, without the one For adds (compared above).
	given := func(set []string, job string, d time.Duration) []string {
		return slices.DeleteFunc(slices.Clone(set), func(s string) bool { return IsStopAfterSet(s, job, d) })
	}
	if was, now := given(old.Set, old.Job, time.Duration(old.For)), given(chk.Set, req.Job, req.For); !slices.Equal(was, now) {
		diffs = append(diffs, fmt.Sprintf("--set [%s], now [%s]", strings.Join(was, " "), strings.Join(now, " ")))
	}
	return strings.Join(diffs, "; ")
}

func orNone(s string) string {
	if s == "" || s == "0" {
		return "none"
	}
	return s
}

func durText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

// who is the agents a request addresses, for messages.
func (c *Client) who(req SubmitRequest) string {
	who := req.Selector.String()
	if len(req.Agents) > 0 {
		who = strings.TrimPrefix(who+" among "+strings.Join(req.Agents, ","), " among ")
	}
	return who
}

// candidates returns the live agents that match a request's selector (and
// names) and allow kind, by name, and the others that match, said with
// their state and what they allow (not those silent for ForgetAfter). When
// there is no live one it says which agents match and what they allow (an
// ErrNoAgent usage error): there is no waiting for agents that are not up
// yet.
func (c *Client) candidates(req SubmitRequest, kind string, now time.Time) (live, leftOut []string, err error) {
	var matching []string
	older := 0
	for _, h := range c.bus.Agents() {
		if len(req.Agents) > 0 && !slices.Contains(req.Agents, h.Name) {
			continue
		}
		if !h.Labels.Matches(req.Selector) {
			continue
		}
		alive := c.bus.AgentAlive(h.Name, now)
		if alive && h.Allows(kind) {
			live = append(live, h.Name)
			continue
		}
		seen, _ := c.bus.LastSeen(h.Name)
		if !alive && now.Sub(seen) > ForgetAfter {
			older++
			continue
		}
		state := "alive"
		switch {
		case h.Stopped:
			state = "stopped"
		case !alive:
			state = fmt.Sprintf("lost: no heartbeat for %s", now.Sub(seen).Round(time.Second))
		}
		allow := strings.Join(h.Allow, ", ")
		if allow == "" {
			allow = "nothing"
		}
		matching = append(matching, fmt.Sprintf("%s (%s, allows %s)", h.Name, state, allow))
	}
	const most = 10
	if len(matching) > most {
		matching = append(matching[:most], fmt.Sprintf("%d more", len(matching)-most))
	}
	if len(live) > 0 {
		return live, matching, nil
	}
	if older > 0 {
		matching = append(matching, fmt.Sprintf("%d silent for more than %s", older, ForgetAfter))
	}
	if len(matching) == 0 {
		return nil, nil, submitErr{fmt.Errorf("no agent matches %s (replayctl agents ls)", c.who(req)), ErrNoAgent}
	}
	return nil, nil, submitErr{fmt.Errorf("no live agent matching %s allows %s; matching: %s (replayctl agents ls)", c.who(req), kind, strings.Join(matching, "; ")), ErrNoAgent}
}

// checkTTL refuses (ErrUsage) a spec's TTL longer than the --max-spec-ttl
// that the heartbeat of one of the agents it names states: that agent
// would refuse the spec. (An agent older than that field states none.)
func (c *Client) checkTTL(agents []string, ttl time.Duration) error {
	var over []string
	var lowest time.Duration
	for _, name := range agents {
		h, _, ok := c.bus.Agent(name)
		bound := time.Duration(h.MaxSpecTTL)
		if !ok || bound <= 0 || ttl <= bound {
			continue
		}
		over = append(over, fmt.Sprintf("%s's is %s", name, bound))
		if lowest == 0 || bound < lowest {
			lowest = bound
		}
	}
	if len(over) == 0 {
		return nil
	}
	return usagef("ttl %s: more than the --max-spec-ttl of agents the job would run on (%s); they would refuse the spec: give a ttl of %s or less",
		ttl, strings.Join(over, ", "), lowest)
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
// returns the job ID. See SubmitJob for what it checks first.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (string, error) {
	out, err := c.SubmitJob(ctx, req)
	return out.ID, err
}

// Submitted is the outcome of SubmitJob.
type Submitted struct {
	ID string
	// Existing is set when the request's JobID was already submitted with
	// the same spec: nothing was published (a retry is idempotent).
	Existing bool
	// State is an existing job's state.
	State State
}

// SubmitJob is Submit, telling also whether the job already existed. Before
// it publishes anything it refuses (with ErrUsage) what an agent would
// refuse every time or what cannot run at all: the request's fields, kind
// and names (CheckSubmit without loading the scenario: its caller checks it,
// with CheckSubmit or where its file is), a
// JobID already submitted with another spec (also ErrConflict: the same
// spec again is not submitted again), and a job no live agent matching the
// selector allows (also ErrNoAgent, naming the agents that match and what
// they allow), or a replay with more shards than such agents, and a TTL
// longer than the --max-spec-ttl a chosen agent's heartbeat states.
func (c *Client) SubmitJob(ctx context.Context, req SubmitRequest) (Submitted, error) {
	chk, err := checkRequest(req)
	if err != nil {
		return Submitted{}, err
	}
	shape := chk.shape
	if req.JobID != "" {
		if js, ok := c.bus.Status(jobKey(req.JobID)); ok {
			if old, ok := c.spec(req.JobID); ok {
				if diff := specDiff(old, req, chk); diff != "" {
					return Submitted{}, submitErr{fmt.Errorf("job %s was already submitted (%s) with another spec (%s); another job needs another ID",
						req.JobID, js.State, diff), ErrConflict}
				}
			}
			fmt.Fprintf(c.Out, "job %s was already submitted (%s); not submitted again\n", req.JobID, js.State)
			return Submitted{ID: req.JobID, Existing: true, State: js.State}, nil
		}
	}
	// A heartbeat from before the bus opened is dated by its agent's clock
	// on a broker that keeps its producers' timestamps: which agents are
	// alive is known from their next heartbeats.
	if err := c.bus.AwaitHeartbeats(ctx); err != nil {
		return Submitted{}, err
	}
	now := time.Now().UTC()
	candidates, leftOut, err := c.candidates(req, shape.Kind, now)
	if err != nil {
		return Submitted{}, err
	}
	if shape.Kind == KindReplay && max(req.Shards, 1) > len(candidates) {
		n := max(req.Shards, 1)
		return Submitted{}, submitErr{fmt.Errorf("%d shards need %d live agents matching %s that allow replay; %d do: %s",
			n, n, c.who(req), len(candidates), strings.Join(candidates, ", ")), ErrNoAgent}
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	spec := Spec{
		JobID: req.JobID, Kind: shape.Kind, Job: req.Job, Scenario: string(req.Text), SHA256: ScenarioHash(string(req.Text)),
		File: req.File, Set: slices.Clone(chk.Set), Selector: req.Selector, For: Duration(req.For),
		IssuedAt: now, ExpiresAt: now.Add(ttl), Submitter: c.submitter(),
	}
	if spec.JobID == "" {
		spec.JobID = NewID("job")
	}
	switch shape.Kind {
	case KindRecord:
		spec.Agents = candidates
		rp := &RecordingPlan{ID: NewID("rec"), Window: shape.Window, Topic: shape.Topic, Start: map[int32]int64{}}
		if shape.Window != "" {
			cat, err := catalog.Open(ctx, c.bus.Plain(), c.bus.Admin(), catalogTopic(string(req.Text)))
			if err != nil {
				return Submitted{}, err
			}
			if old, err := cat.Get(ctx, shape.Window); err == nil {
				return Submitted{}, usagef("window %q already exists (saved %s); remove it (replayctl windows rm) or record under another name", shape.Window, old.CreatedAt.Format(time.RFC3339))
			}
			// The window starts where the topic ends now; a topic not
			// created yet starts at 0. Any other error would start it at 0
			// of a topic that has records: refused, not guessed.
			start, err := catalog.EndOffsets(ctx, c.bus.Admin(), shape.Topic)
			switch {
			case err == nil:
				rp.Start = start
			case !errors.Is(err, catalog.ErrNoTopic):
				return Submitted{}, fmt.Errorf("the window's start (the end offsets of topic %s): %w", shape.Topic, err)
			}
		}
		spec.Recording = rp
	case KindReplay:
		n := max(req.Shards, 1)
		cat, err := catalog.Open(ctx, c.bus.Plain(), c.bus.Admin(), catalogTopic(string(req.Text)))
		if err != nil {
			return Submitted{}, err
		}
		w, err := cat.Get(ctx, shape.Window)
		if err != nil {
			return Submitted{}, usagef("window %q: %v", shape.Window, err)
		}
		shards, err := PlanShards(w, n)
		if err != nil {
			return Submitted{}, usageErr{err}
		}
		spec.Agents = candidates[:n]
		spec.Shards = n
		spec.Replay = &ReplayPlan{Window: w.Name, Topic: w.Topic, Shards: shards, StartAt: now.Add(startLead), T0: planT0(w, now)}
	}
	if err := c.checkTTL(spec.Agents, ttl); err != nil {
		return Submitted{}, err
	}
	env, err := Seal("spec", spec, req.Key)
	if err != nil {
		return Submitted{}, err
	}
	js := Status{JobID: spec.JobID, Kind: spec.Kind, State: Pending, Agents: spec.Agents}
	if err := c.bus.PublishStatus(ctx, jobKey(spec.JobID), js); err != nil {
		return Submitted{}, err
	}
	rec, err := c.bus.Publish(ctx, JobsTopic, "spec/"+spec.JobID, env)
	if err != nil {
		return Submitted{}, err
	}
	if testHookAfterSpec != nil {
		testHookAfterSpec(spec.JobID)
	}
	// An agent that ends the job at once (a refusal) waits for this write
	// before it writes the final status (Agent.awaitAssigned).
	js.State, js.SpecOffset = Assigned, rec.Offset
	if err := c.bus.PublishStatus(ctx, jobKey(spec.JobID), js); err != nil {
		return Submitted{}, err
	}
	fmt.Fprintf(c.Out, "job %s: %s job %q on %s\n", spec.JobID, spec.Kind, spec.Job, strings.Join(spec.Agents, ", "))
	if len(leftOut) > 0 {
		// A record job runs on every live agent that matches: one left
		// out records nothing of its host's traffic.
		what := "left out"
		if spec.Kind == KindRecord {
			what = "warning: not recording"
		}
		fmt.Fprintf(c.Out, "%s: %s, matching %s but not live or not allowing %s (replayctl agents ls)\n", what, strings.Join(leftOut, "; "), c.who(req), spec.Kind)
	}
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
		if note := NoTimeline(spec); note != "" {
			fmt.Fprintf(c.Out, "warning: %s\n", note)
		}
	}
	c.awaitAnswers(ctx, spec)
	// Every agent may have ended already (refused, say), its final job
	// status written before ASSIGNED above replaced it: settle it again.
	c.finishIfDone(ctx, spec)
	return Submitted{ID: spec.JobID}, nil
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
						JobID: spec.JobID, Kind: spec.Kind, Agent: name, State: Failed, GaveUp: true,
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
	s, _, ok := c.specRecord(id)
	return s, ok
}

// specRecord is spec with the envelope it came in (not verified).
func (c *Client) specRecord(id string) (Spec, Envelope, bool) {
	var out Spec
	var env Envelope
	found := false
	for _, jr := range c.bus.Jobs(0) {
		if jr.Key == "spec/"+id && jr.Envelope.Type == "spec" {
			var s Spec
			if err := jsonUnmarshal(jr.Envelope.Payload, &s); err == nil {
				out, env, found = s, jr.Envelope, true
				if off, known := specOffset(c.bus, id); known && off == jr.Offset {
					return s, env, true
				}
			}
		}
	}
	return out, env, found
}

// submittedBy says who submitted a job as far as its spec's signature
// shows it: anyone who may write to Kafka publishes specs, so the
// submitter a spec names is only a claim until it verifies against the
// client's Trust keys.
func (c *Client) submittedBy(id string, spec Spec, env Envelope) string {
	switch {
	case len(env.Signature) == 0:
		return fmt.Sprintf("%q according to its spec (UNVERIFIED: unsigned spec)", spec.Submitter)
	case len(c.Trust) == 0:
		return fmt.Sprintf("%q according to its spec (signed by key %s; not checked: --trust FILE checks it)", spec.Submitter, Fingerprint(env.Key))
	}
	var signed Spec
	if err := env.Open(c.Trust, &signed); errors.Is(err, ErrUntrustedKey) {
		return fmt.Sprintf("%q according to its spec (UNVERIFIED: signed by key %s, not one of --trust)", spec.Submitter, Fingerprint(env.Key))
	} else if err != nil {
		return fmt.Sprintf("%q according to its spec (UNVERIFIED: %v)", spec.Submitter, err)
	}
	if signed.JobID != id {
		return fmt.Sprintf("%q according to its spec (UNVERIFIED: signed for job %q)", spec.Submitter, signed.JobID)
	}
	return fmt.Sprintf("%s (signature verified: key %s)", signed.Submitter, Fingerprint(env.Key))
}

// Wait follows a job until it is final, printing its parts' progress as
// it changes (looked at every second), then prints the merged summary. It returns the job's final status.
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
		// Printed as it changes: the time it is printed at is no change.
		if line := c.progressLine(id); line != last {
			fmt.Fprintf(c.Out, "[%s]%s\n", time.Now().Format("15:04:05"), line)
			last = line
		}
		if why, ok := c.orphanedAfterSync(ctx, id); ok {
			c.printJob(id)
			return js, fmt.Errorf("job %s is still %s and no live agent is left to end it (%s): start its agent again, which resumes a replay shard, or another that trusts the job, which ends those parts FAILED; or cancel the job; stopped waiting", id, js.State, why)
		}
		select {
		case <-ctx.Done():
			return js, ctx.Err()
		case <-tick.C:
		}
	}
}

// orphaned says, for a job not ended, whether nothing can end it now: the
// agent of every part not ended is gone, for longer than a live agent that
// trusts the job takes to end such a part (settleGrace, and a third of it
// more), and no agent of the fleet is alive; why names them. --wait stops
// there: it waited for good.
func (c *Client) orphaned(id string, now time.Time) (why string, ok bool) {
	wait := settleGrace + settleGrace/3
	if now.Sub(c.bus.OpenedAt()) < wait {
		return "", false // the heartbeats are not all read yet
	}
	for _, h := range c.bus.Agents() {
		if c.bus.AgentAlive(h.Name, now) {
			return "", false
		}
	}
	var gone []string
	parts := c.parts(id)
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		p := parts[k]
		if p.State.Final() {
			continue
		}
		g, ok := AgentGone(c.bus, p, now)
		if !ok || now.Sub(g.LastSeen) < wait {
			return "", false
		}
		gone = append(gone, fmt.Sprintf("%s: agent %s %s ago", partName(p), g.How, now.Sub(g.LastSeen).Truncate(time.Second)))
	}
	if len(gone) == 0 {
		return "", false
	}
	return strings.Join(gone, ", "), true
}

// orphanedAfterSync is orphaned, told only after this process has read
// the topics up to their ends: a reader that fell behind (a broker
// restarted, the network stalled) sees every agent lost.
func (c *Client) orphanedAfterSync(ctx context.Context, id string) (string, bool) {
	if _, ok := c.orphaned(id, time.Now()); !ok {
		return "", false
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.bus.Sync(sctx); err != nil {
		return "", false
	}
	return c.orphaned(id, time.Now())
}

func (c *Client) progressLine(id string) string {
	parts := c.parts(id)
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(parts)) {
		p := parts[k]
		fmt.Fprintf(&b, " %s=%s", partName(p), p.State)
		if p.Progress != nil && p.Progress.Line != "" {
			fmt.Fprintf(&b, " (%s)", p.Progress.Line)
		}
		if gone := c.agentGone(p); gone != "" {
			word, _, _ := strings.Cut(strings.TrimPrefix(gone, " ("), ":")
			b.WriteString(" (" + word + ")") // without the time, which changes every second
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
		// No submitter wrote the job, but agents may have refused spec
		// records published under its ID (unsigned, forged, another
		// key's): their reasons are the only answer whoever published
		// them gets.
		refused := c.bus.StatusPrefix(jobKey(id) + "/refused/")
		if len(refused) == 0 {
			return usagef("no job %q (replayctl jobs ls)", id)
		}
		fmt.Fprintf(c.Out, "no job %s was submitted (it has no status of its own); the specs published under its ID were refused:\n", id)
		for _, k := range slices.Sorted(maps.Keys(refused)) {
			s := refused[k]
			fmt.Fprintf(c.Out, "  %s  %s  %s\n", strings.TrimPrefix(k, jobKey(id)+"/"), s.Agent, s.Reason)
		}
		return usagef("no job %q: its specs were refused", id)
	}
	c.printJob(id)
	return nil
}

func (c *Client) printJob(id string) {
	js, _ := c.bus.Status(jobKey(id))
	w := c.Out
	fmt.Fprintf(w, "job %s  %s  %s\n", id, js.Kind, c.bus.JobLiveState(id, js.State))
	if spec, env, ok := c.specRecord(id); ok {
		on := spec.Selector.String()
		if len(spec.Selector) == 0 {
			// Agents named, not chosen by labels (serve's gor drop-in).
			on = "agents " + strings.Join(spec.Agents, ", ")
		}
		fmt.Fprintf(w, "  scenario %s (sha256 %.12s…) job %q on %s, submitted %s, expires %s\n",
			spec.File, spec.SHA256, spec.Job, on, spec.IssuedAt.Format(time.RFC3339), spec.ExpiresAt.Format(time.RFC3339))
		fmt.Fprintf(w, "  submitted by %s\n", c.submittedBy(id, spec, env))
		if spec.Recording != nil {
			fmt.Fprintf(w, "  recording %s into %s\n", spec.Recording.ID, spec.Recording.Topic)
		}
	}
	if js.Reason != "" {
		fmt.Fprintf(w, "  reason: %s\n", js.Reason)
	}
	// Said while it runs (the spec's plan), and by its result.
	note := ""
	if spec, ok := c.spec(id); ok {
		note = NoTimeline(spec)
	}
	if r := js.Result; note == "" && r != nil {
		note = r.Timeline
	}
	if note != "" {
		fmt.Fprintf(w, "  warning: %s\n", note)
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
				// A resumed shard says how many requests it did not send
				// again (its lost run had answered them), and how many it
				// sent again that its lost run may have sent.
				resumed := ""
				for _, k := range []string{"resume-skipped", "possible-duplicates"} {
					if n := r.Counters[k]; n > 0 {
						resumed += fmt.Sprintf(" %s %d", k, n)
					}
				}
				detail = strings.TrimSpace(fmt.Sprintf("sent %d ok %d errors %d p50 %s p99 %s late-max %s%s %s", r.Sent, r.OK, r.Errors,
					stats.DurationText(time.Duration(r.LatencyP50)), stats.DurationText(time.Duration(r.LatencyP99)), stats.DurationText(time.Duration(r.LatenessMax)), resumed, detail))
			} else {
				detail = strings.TrimSpace(fmt.Sprintf("requests %d responses %d written %d not-written %d%s %s", r.Requests, r.Responses, r.Written, r.NotWritten, lostDetail(r.Lost), detail))
			}
		}
		if s.Progress != nil && s.Progress.Line != "" && !s.State.Final() {
			if s.State == Lost {
				detail += " (last progress: " + s.Progress.Line + ")"
			} else {
				detail = s.Progress.Line
			}
		}
		detail += c.agentGone(s)
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", part, s.Agent, s.State, s.Attempt, detail)
	}
	tw.Flush()
	printResult(w, js)
}

// agentGone says, for a part not ended whose agent is lost or stopped,
// since when (AgentGone).
func (c *Client) agentGone(s Status) string {
	g, ok := AgentGone(c.bus, s, time.Now())
	if !ok {
		return ""
	}
	since := time.Since(g.LastSeen).Truncate(time.Second)
	gone := fmt.Sprintf("AGENT LOST: no heartbeat for %s", since)
	if g.How == GoneStopped {
		gone = fmt.Sprintf("AGENT STOPPED: %s ago", since)
	}
	return fmt.Sprintf(" (%s; a live agent that trusts the job ends this part %s after that)", gone, g.Grace)
}

// How a part's agent is gone (Gone.How).
const (
	GoneLost    = "lost"    // no heartbeat for LostAfter
	GoneStopped = "stopped" // its last heartbeat said it stopped
)

// Gone is how a part's agent is gone and since when.
type Gone struct {
	How      string    // GoneLost or GoneStopped
	LastSeen time.Time // when this process read its latest heartbeat (Bus.LastSeen)
	// Grace is how long after its last part ended a live agent that
	// trusts the job settles it (settleGrace).
	Grace time.Duration
}

// AgentGone says, for a part not ended (s: its status) whose agent is lost
// or stopped at now, how and since when: its state is its agent's last
// word, which a live agent that trusts the job ends settleGrace after that
// (settleStale), and with none, nothing does. What jobs show marks
// (AGENT LOST, AGENT STOPPED) and serve's API and web UI too; false for a
// final or LOST part, one without an agent, one whose agent is alive or
// was never heard from.
func AgentGone(b *Bus, s Status, now time.Time) (Gone, bool) {
	if s.State.Final() || s.State == Lost || s.Agent == "" || b.AgentAlive(s.Agent, now) {
		return Gone{}, false
	}
	seen, ok := b.LastSeen(s.Agent)
	if !ok {
		return Gone{}, false
	}
	g := Gone{How: GoneLost, LastSeen: seen, Grace: settleGrace}
	if h, _, ok := b.Agent(s.Agent); ok && h.Stopped {
		g.How = GoneStopped
	}
	return g, true
}

// printResult prints a final job's merged result (jobs show): a record
// job's totals and window, a replay's merged figures, diff and assertions.
func printResult(w io.Writer, js Status) {
	if r := js.Result; r != nil && js.State.Final() {
		if js.Kind == KindRecord {
			fmt.Fprintf(w, "  recorded: %d requests, %d responses, %d written, %d not written\n", r.Requests, r.Responses, r.Written, r.NotWritten)
			for _, h := range slices.Sorted(maps.Keys(r.HostCounts)) {
				fmt.Fprintf(w, "    %s: %d requests\n", h, r.HostCounts[h])
			}
			lost := r.Lost[catalog.LostTotal] > 0
			if lost {
				fmt.Fprintf(w, "  LOST: %s\n", catalog.LostText(r.Lost))
			}
			switch {
			case r.Window != "" && lost:
				fmt.Fprintf(w, "  window %q saved PARTIAL: one window for every host, with what they lost\n", r.Window)
			case r.Window != "":
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
			for _, g := range r.SourceGaps {
				fmt.Fprintf(w, "  partial   %s\n", g)
			}
			for _, p := range r.Partial {
				fmt.Fprintf(w, "  partial   %s\n", p)
			}
			for _, n := range r.NotSent {
				fmt.Fprintf(w, "  not sent  %s\n", n)
			}
			if n := r.Counters["sink.dropped-on-stop"]; n > 0 {
				// A cancel, a stop or --max-run ended the shards with
				// requests still queued: the state says stopped, this how
				// much of the window was not sent.
				fmt.Fprintf(w, "  not sent  %d request(s) queued when the run was stopped (sink.dropped-on-stop)\n", n)
			}
			if s, ok := r.Summary(); ok {
				// Exact: the shards' histograms merged bucket by bucket.
				l := s.Latency
				d := stats.DurationText
				exact := "exact, shards merged"
				if len(r.Partial) > 0 {
					exact += "; without the lost runs' results"
				}
				fmt.Fprintf(w, "  latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s (%s)\n", d(l.P50), d(l.P90), d(l.P99), d(l.P999), d(l.Max), exact)
				fmt.Fprintf(w, "  lateness  p50 %s  p99 %s  max %s\n", d(s.Lateness.P50), d(s.Lateness.P99), d(s.Lateness.Max))
				fmt.Fprintf(w, "  rate      scheduled %.1f/s  achieved %.1f/s\n", s.Scheduled, s.Achieved)
			} else {
				fmt.Fprintf(w, "  latency max %s, lateness max %s\n", stats.DurationText(time.Duration(r.LatencyMax)), stats.DurationText(time.Duration(r.LatenessMax)))
			}
			for _, line := range report.BreakdownLines(r.Protocols, r.GRPC) {
				fmt.Fprintf(w, "  %s\n", line)
			}
			if d := r.Diff; d != nil {
				fmt.Fprintf(w, "  diff      compared %d  mismatches %d (%.2f%%)  noise fields %d\n", d.Compared, d.Mismatches, 100*d.Rate, len(d.NoiseFields))
				for _, e := range d.Endpoints {
					if e.Mismatches == 0 {
						continue
					}
					var top []string
					for _, f := range e.TopFields {
						top = append(top, fmt.Sprintf("%s (%d)", f.Field, f.Count))
					}
					fmt.Fprintf(w, "            %s: %d of %d differ: %s\n", e.Endpoint, e.Mismatches, e.Requests, strings.Join(top, ", "))
				}
			}
			// The job's assertions, evaluated on the merged summary; one
			// that holds on the totals of a job that failed or was
			// cancelled (a shard failed, was cancelled or never ran: the
			// totals miss part of the window; or dropped requests on
			// errors) is not said to hold.
			whole := js.State == Succeeded || js.State == AssertFailed
			for _, a := range r.Shown() {
				line := "ok   " + a
				if i := slices.IndexFunc(r.Failed, func(f string) bool { return strings.Contains(f, a) }); i >= 0 {
					line = "FAIL " + r.Failed[i]
				} else if !whole {
					line = "--   " + a + "  (not evaluated: the job " + strings.ToLower(string(js.State)) + ")"
				} else if len(r.Partial) > 0 {
					line += "  (held on partial totals)"
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

// List prints every job, newest submitted first.
func (c *Client) List() {
	var jobs []Status
	all := c.bus.StatusPrefix("job/")
	runs := runStates(all)
	for k, s := range all {
		if strings.Count(k, "/") == 1 {
			jobs = append(jobs, s)
		}
	}
	// Newest submitted first, as serve's History orders them: by where the
	// spec is on the jobs topic (a PENDING job names none yet: it is the
	// newest). By the last update, a job that ended late was listed above
	// the ones submitted after it.
	submitted := func(s Status) int64 {
		if s.State == Pending {
			return math.MaxInt64
		}
		return s.SpecOffset
	}
	slices.SortStableFunc(jobs, func(a, b Status) int {
		return cmp.Or(cmp.Compare(submitted(b), submitted(a)), b.At.Compare(a.At), strings.Compare(a.JobID, b.JobID))
	})
	tw := tabwriter.NewWriter(c.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tKIND\tSTATE\tAGENTS\tUPDATED\tREASON")
	for _, s := range jobs {
		reason := s.Reason
		if r := s.Result; r != nil && r.Lost[catalog.LostTotal] > 0 {
			// A recording that lost anything says so, even SUCCEEDED
			// (on-loss: warn).
			lost := "LOST " + catalog.LostText(r.Lost)
			if reason != "" {
				lost += "; " + reason
			}
			reason = lost
		}
		if r := s.Result; r != nil && len(r.Partial) > 0 {
			// A replay whose totals miss a lost run's results says so,
			// even SUCCEEDED.
			partial := "PARTIAL: " + strings.Join(r.Partial, "; ")
			if reason != "" {
				partial += "; " + reason
			}
			reason = partial
		}
		state := LiveState(s.State, runs[s.JobID]) // RUNNING rather than ASSIGNED while a run runs
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.JobID, s.Kind, state, strings.Join(s.Agents, ","), s.At.Format(time.RFC3339), reason)
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
// heartbeat, running job, runs going and queued, --max-spec-ttl, clock
// offset, addresses. An agent whose clock is off the broker's by more
// than ClockOffsetWarn is flagged, with what that does to specs under the
// table. Agents silent for longer than ForgetAfter are left out unless all
// is set. How long an agent has been silent is on this process's clock
// (Bus.LastSeen), not its heartbeat's record timestamp (the agent's own
// clock on a broker that keeps its producers' timestamps): Agents first
// waits for the next heartbeats of the agents whose latest one is from
// before the bus opened (Bus.AwaitHeartbeats).
func (c *Client) Agents(ctx context.Context, all bool) error {
	if err := c.bus.AwaitHeartbeats(ctx); err != nil {
		return err
	}
	now := time.Now()
	tw := tabwriter.NewWriter(c.Out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tLABELS\tALLOW\tVERSION\tLAST HEARTBEAT\tSTATE\tJOB\tRUNNING\tQUEUED\tMAX SPEC TTL\tCLOCK OFFSET\tADDRESSES")
	hidden, unmeasured := 0, 0
	var off []string
	for _, h := range c.bus.Agents() {
		ts, _ := c.bus.LastSeen(h.Name)
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
		// An agent older than the counts does not say them.
		running, queued := "-", "-"
		if h.MaxConcurrent > 0 {
			running, queued = fmt.Sprintf("%d/%d", h.Running, h.MaxConcurrent), strconv.Itoa(h.Queued)
		}
		// An agent older than its --max-spec-ttl in heartbeats does not say it.
		maxTTL := "-"
		if h.MaxSpecTTL > 0 {
			maxTTL = time.Duration(h.MaxSpecTTL).String()
		}
		clock := time.Duration(h.ClockOffset).String()
		if h.ClockUnmeasured {
			clock = "unmeasured"
			unmeasured++
		} else if note := ClockNote(time.Duration(h.ClockOffset)); note != "" {
			clock += " (OFF)"
			off = append(off, fmt.Sprintf("agent %s: %s; set its clock right (NTP)", h.Name, note))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s ago\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Labels.String(), strings.Join(h.Allow, ","), h.Version,
			now.Sub(ts).Truncate(100*time.Millisecond), state, job, running, queued, maxTTL, clock, strings.Join(h.Addrs, ","))
	}
	tw.Flush()
	for _, o := range off {
		fmt.Fprintln(c.Out, o)
	}
	if unmeasured > 0 {
		fmt.Fprintf(c.Out, "(clock offset unmeasured for %d agent(s): an agent measures it against the broker's timestamps of its heartbeats (the agents topic's LogAppendTime), which it does not have (a topic created ahead of time with CreateTime), or it has not read one back yet; a clock off the broker's is not flagged)\n", unmeasured)
	}
	if hidden > 0 {
		fmt.Fprintf(c.Out, "(%d agent(s) silent for more than %s not shown; --all shows them)\n", hidden, ForgetAfter)
	}
	return nil
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
	env, err := Seal("cancel", Cancel{CommandID: commandID, JobID: id, IssuedAt: now, ExpiresAt: now.Add(CancelTTL), Submitter: c.submitter()}, key)
	if err != nil {
		return err
	}
	if _, err := c.bus.Publish(ctx, JobsTopic, "cancel/"+id, env); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		// An agent that does not obey the cancel (its signature) says why.
		refused := c.bus.StatusPrefix(cmdKey(commandID) + "/refused/")
		running, stuck := 0, 0
		for _, p := range c.parts(id) {
			if !p.State.Final() && p.State != Lost {
				running++
				if _, ok := refused[cmdKey(commandID)+"/refused/"+p.Agent]; ok {
					stuck++
				}
			}
		}
		var why []string
		for _, k := range slices.Sorted(maps.Keys(refused)) {
			why = append(why, refused[k].Agent+": "+refused[k].Reason)
		}
		if running == 0 {
			outcome.State, outcome.Reason = Succeeded, "every run stopped"
			break
		}
		if stuck == running {
			outcome.State, outcome.Reason = Refused, strings.Join(why, "; ")
			break
		}
		if time.Now().After(deadline) {
			// A run whose agent is gone cannot obey: say so, and who ends
			// its part (the live agents, settleGrace after it was lost).
			for _, p := range c.parts(id) {
				if p.State.Final() || p.State == Lost || c.bus.AgentAlive(p.Agent, time.Now()) {
					continue
				}
				gone := "agent " + p.Agent + " is lost"
				if seen, ok := c.bus.LastSeen(p.Agent); ok {
					gone += fmt.Sprintf(" (no heartbeat for %s)", time.Since(seen).Truncate(time.Second))
				}
				why = append(why, gone+": it cannot stop its run; a live agent that trusts the job ends its part FAILED "+settleGrace.String()+" after it was last seen")
			}
			outcome.State, outcome.Reason = Failed, strings.Join(append([]string{fmt.Sprintf("%d run(s) still not stopped after 10s", running)}, why...), "; ")
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

// lostDetail is a record part's losses for its row of jobs show: empty
// when it lost nothing.
func lostDetail(lost map[string]int64) string {
	if lost[catalog.LostTotal] <= 0 {
		return ""
	}
	return " LOST " + catalog.LostText(lost)
}
