package serve

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/shquote"
	"github.com/replayctl/replayctl/scenario"
)

// JobView is a job as the API shows it: its spec's public parts, its state
// and every part (agent or shard) with its progress. Its State is its
// status record's, except while that says PENDING or ASSIGNED and a run of
// the job is going: then how far its runs got, QUEUED, ARMED or RUNNING
// (liveState).
type JobView struct {
	ID        string            `json:"id"`
	Kind      string            `json:"kind"`
	State     fleet.State       `json:"state"`
	Reason    string            `json:"reason,omitempty"`
	Updated   time.Time         `json:"updated"`
	Scenario  string            `json:"scenario,omitempty"`
	Job       string            `json:"job,omitempty"`
	Selector  map[string]string `json:"selector,omitempty"`
	Agents    []string          `json:"agents,omitempty"`
	Shards    int               `json:"shards,omitempty"`
	Set       []string          `json:"set,omitempty"`
	Window    string            `json:"window,omitempty"`
	Recording string            `json:"recording,omitempty"`
	// Submitter is the spec's submitter once its signature verified
	// (Verified); anyone who may write to Kafka publishes specs, so an
	// unverified one's is only ClaimedSubmitter.
	Submitter string `json:"submitter,omitempty"`
	// Verified: the spec's signature verified against a key this serve
	// trusts (its own --key, the --trust keys), for this job ID. Signer is
	// that key's fingerprint; Unverified says why not.
	Verified         bool   `json:"verified"`
	Signer           string `json:"signer,omitempty"`
	Unverified       string `json:"unverified,omitempty"`
	ClaimedSubmitter string `json:"claimed_submitter,omitempty"`
	// Rerunnable: serve's own key signed the spec, so POST …/rerun may
	// sign it again (it signs no other).
	Rerunnable bool `json:"rerunnable"`
	// IssuedAt is the time the spec says it was issued: its signer's
	// word when Verified, anyone's otherwise. Jobs are listed by
	// SpecOffset, the place of the spec shown on the jobs topic, which
	// the broker gives (nil: no spec).
	IssuedAt   time.Time     `json:"issued_at,omitzero"`
	SpecOffset *int64        `json:"spec_offset,omitempty"`
	Parts      []PartView    `json:"parts"`
	Result     *fleet.Result `json:"result,omitempty"`
	// PublishedAt is the timestamp of the spec's record on the jobs
	// topic, which History shows as the job's time: the broker's clock
	// when it appended the record where PublishedAtType is LogAppendTime
	// (the jobs topic fleet creates), else the publisher's client's
	// (CreateTime: an older jobs topic, a broker that does not stamp).
	PublishedAt     time.Time `json:"published_at,omitzero"`
	PublishedAtType string    `json:"published_at_type,omitempty"`
	// LostText is what a record job lost, all hosts added up (lostText).
	LostText string `json:"lost_text,omitempty"`
	// Timeline says a replay job's shards share no timeline (fleet.NoTimeline:
	// its window has no capture time that is not bogus), from its plan
	// while it runs, else its result's (result.timeline).
	Timeline string `json:"timeline,omitempty"`
	Command  string `json:"command,omitempty"` // the equivalent replayctl command line
	// AgentGone says that PartsAgentGone parts of the job, not final, have
	// an agent that is gone (PartView.AgentGone): "lost" when any one's is
	// lost, else "stopped". History shows it beside the job's state.
	AgentGone      string `json:"agent_gone,omitempty"`
	PartsAgentGone int    `json:"parts_agent_gone,omitempty"`
}

// gone counts a part whose agent is gone how (PartView.AgentGone; "":
// not gone).
func (v *JobView) gone(how string) {
	if how == "" {
		return
	}
	v.PartsAgentGone++
	if v.AgentGone != fleet.GoneLost {
		v.AgentGone = how
	}
}

// PartView is one agent's run of a record job, or one shard of a replay.
type PartView struct {
	Part     string        `json:"part"`
	Agent    string        `json:"agent,omitempty"`
	Shard    *int          `json:"shard,omitempty"`
	State    fleet.State   `json:"state"`
	Reason   string        `json:"reason,omitempty"`
	Attempt  int           `json:"attempt,omitempty"`
	Progress *PartProgress `json:"progress,omitempty"`
	Result   *fleet.Result `json:"result,omitempty"`
	// LostText is what this part (an agent's part of a recording) lost
	// (lostText).
	LostText string `json:"lost_text,omitempty"`
	// ResumeSkipped is how many requests a resumed replay shard did not
	// send again, its lost run having answered them (resumeSkipped).
	ResumeSkipped int64 `json:"resume_skipped,omitempty"`
	// PossibleDuplicates is how many requests a resumed replay shard sent
	// again that its lost run may have sent too (possibleDuplicates).
	PossibleDuplicates int64 `json:"possible_duplicates,omitempty"`
	// AgentGone says, for a part not final whose agent is gone, how:
	// "lost" (no heartbeat for fleet.LostAfter) or "stopped" (its last
	// heartbeat said so), as jobs show marks it (fleet.AgentGone): its
	// state is its agent's last word, which a live agent that trusts the
	// job ends AgentGraceS seconds after AgentLastSeen, and with none,
	// nothing does. AgentLastSeen is when serve read the agent's latest
	// heartbeat, on its own clock, AgentSilentMS how long before the
	// answer (a browser's clock is not serve's).
	AgentGone     string    `json:"agent_gone,omitempty"`
	AgentLastSeen time.Time `json:"agent_last_seen,omitzero"`
	AgentSilentMS int64     `json:"agent_silent_ms,omitempty"`
	AgentGraceS   float64   `json:"agent_grace_s,omitempty"`
}

// agentGone marks p when its agent is gone at now (fleet.AgentGone).
func (s *Server) agentGone(p *PartView, st fleet.Status, now time.Time) {
	if g, ok := fleet.AgentGone(s.bus, st, now); ok {
		p.AgentGone, p.AgentLastSeen, p.AgentGraceS = g.How, g.LastSeen.UTC(), g.Grace.Seconds()
		p.AgentSilentMS = max(now.Sub(g.LastSeen), 0).Milliseconds()
	}
}

// resumeSkipped is how many requests a replay shard re-run after its run
// was lost (its agent killed or restarted) skipped, from its resume point
// on: the lost run had answered them, and their results were lost with it.
// Its result's counter resume-skipped; 0 for a run that was not resumed
// and while the shard runs (a run reports its counters when it ends).
func resumeSkipped(r *fleet.Result) int64 {
	if r == nil {
		return 0
	}
	return r.Counters["resume-skipped"]
}

// possibleDuplicates is how many requests a replay shard re-run after its
// run was lost sent that the lost run may have sent as well: those
// scheduled after its resume point and before the lost run was last seen
// alive (its result's counter possible-duplicates). The target may have
// had them twice. 0 for a run that was not resumed and while it runs.
func possibleDuplicates(r *fleet.Result) int64 {
	if r == nil {
		return 0
	}
	return r.Counters["possible-duplicates"]
}

// lostText is what a recording lost, by cause in its unit, as jobs show
// prints it on its LOST line (catalog.LostText): "kernel-drops 3 packets,
// spool-full 12 messages"; empty when it lost nothing. The web UI shows it
// as it is, so the units have one source.
func lostText(r *fleet.Result) string {
	if r == nil {
		return ""
	}
	text := catalog.LostText(r.Lost)
	if n := r.Lost[catalog.LostTotal]; text == "" && n > 0 {
		text = fmt.Sprintf("causes not recorded (total %d)", n)
	}
	return text
}

// jobSpec is the record of a job's spec on the jobs topic and what serve
// read of it (specCache): spec decoded, without its scenario text (full
// reads it), not verified yet (verifiedSpec).
type jobSpec struct {
	rec  fleet.JobRecord
	spec fleet.Spec
}

// full is the spec with its scenario text, which the view kept leaves
// out, read again from its record: for what needs the text (a rerun, a
// report's assertions).
func (r jobSpec) full() (*fleet.Spec, error) {
	var sp fleet.Spec
	if err := jsonUnmarshal(r.rec.Envelope.Payload, &sp); err != nil {
		return nil, fmt.Errorf("the spec at offset %d of %s: %w", r.rec.Offset, fleet.JobsTopic, err)
	}
	return &sp, nil
}

// shownSpec is a job's spec as the API shows it, with whether its
// signature verified (verifiedSpec).
type shownSpec struct {
	fleet.Spec
	offset    int64     // on the jobs topic
	at        time.Time // its record's timestamp
	logAppend bool      // the broker's clock set at
	verified  bool
	signer    string // the verifying key's fingerprint
	why       string // why it did not verify
}

// specIndex maps job IDs to the spec record each shows: the one the job's
// status names (past PENDING), else the latest published that is a spec;
// with only set, that job's alone. It scans every record of the jobs
// topic; each record is decoded once while its view is kept (specCache).
// A lookup of one job, and a list, ask the index first (specOf,
// specOffsets).
func (s *Server) specIndex(only string) map[string]jobSpec {
	out := map[string]jobSpec{}
	named := map[string]bool{}
	for _, jr := range s.bus.Jobs(0) {
		s.index.visited.Add(1)
		if jr.Bad != "" || jr.Envelope.Type != "spec" {
			continue
		}
		id, ok := strings.CutPrefix(jr.Key, "spec/")
		if !ok || named[id] || only != "" && id != only {
			continue
		}
		v := s.specs.read(jr)
		if v.bad {
			continue
		}
		out[id] = jobSpec{rec: jr, spec: v.spec}
		// Past PENDING, the job's status names its spec's offset (0 is an
		// offset too).
		if js, ok := s.bus.Status("job/" + id); ok && js.State != fleet.Pending && js.SpecOffset == jr.Offset {
			named[id] = true
		}
	}
	return out
}

// specOf returns one job's spec as specIndex picks it: the one record
// the index names (specOffsets), or by a scan when the index cannot tell.
func (s *Server) specOf(id string) (jobSpec, bool) {
	s.catchUp()
	at, ok, known := s.pick(id)
	if ok {
		if r, ok := s.fetch(id, at.offset); ok {
			return r, true
		}
	} else if known {
		return jobSpec{}, false
	}
	r, ok := s.specIndex(id)[id]
	return r, ok
}

// trusted is the keys whose specs serve shows as verified: its own and
// the --trust ones.
func (s *Server) trusted() []ed25519.PublicKey {
	keys := []ed25519.PublicKey{s.cfg.Key.Public().(ed25519.PublicKey)}
	return append(keys, s.cfg.Trust...)
}

// verifiedSpec checks a job's spec record as an agent would (fleet's
// Envelope.Open: signed, by a trusted key, as a spec) and that it was
// signed for the job its record's key names (a signed spec republished
// under another job's key verifies, but says nothing of that job). Only a
// verified spec's submitter is shown as the submitter.
//
// The verdict is kept with the record's view (specCache): a spec listed
// again is not verified again. The spec shown is the decoding of the
// record's payload, which is what Open decodes: the spec shown is the one
// signed.
func (s *Server) verifiedSpec(r jobSpec) *shownSpec {
	v := s.specs.judged(r.rec, s.trusted())
	return &shownSpec{Spec: v.spec, offset: r.rec.Offset, at: r.rec.Timestamp, logAppend: r.rec.LogAppendTime,
		verified: v.verdict.verified, signer: v.verdict.signer, why: v.verdict.why}
}

// checkSpec verifies one spec envelope for job id against the trusted keys.
func checkSpec(id string, env fleet.Envelope, trusted []ed25519.PublicKey) verdict {
	var signed fleet.Spec
	err := env.Open(trusted, &signed)
	switch {
	case err == nil && signed.JobID == id:
		return verdict{verified: true, signer: fleet.Fingerprint(env.Key)}
	case err == nil:
		return verdict{why: fmt.Sprintf("signed for job %q, published as job %q", signed.JobID, id)}
	case errors.Is(err, fleet.ErrUntrustedKey):
		return verdict{why: fmt.Sprintf("signed by a key this serve does not trust (key %s)", fleet.Fingerprint(env.Key))}
	}
	return verdict{why: err.Error()}
}

// view is a job as the API shows it; shown is its spec (nil: none
// published).
func (s *Server) view(id string, js fleet.Status, shown *shownSpec, withParts bool) JobView {
	v := JobView{ID: id, Kind: js.Kind, State: js.State, Reason: js.Reason, Updated: js.At, Agents: js.Agents, Result: js.Result, LostText: lostText(js.Result), Parts: []PartView{},
		Unverified: "no spec of this job on the jobs topic"}
	var spec *fleet.Spec
	if shown != nil {
		spec = &shown.Spec
		v.Scenario, v.Job, v.Selector, v.Shards, v.Set = spec.File, spec.Job, spec.Selector, spec.Shards, maskSets(spec.Scenario, spec.Set)
		v.IssuedAt, v.SpecOffset, v.PublishedAt = spec.IssuedAt, &shown.offset, shown.at
		v.PublishedAtType = "CreateTime"
		if shown.logAppend {
			v.PublishedAtType = "LogAppendTime"
		}
		v.Verified, v.Signer, v.Unverified = shown.verified, shown.signer, shown.why
		if shown.verified && s.cfg.Key != nil {
			v.Rerunnable = shown.signer == fleet.Fingerprint(s.cfg.Key.Public().(ed25519.PublicKey))
		}
		if shown.verified {
			v.Submitter = spec.Submitter
		} else {
			v.ClaimedSubmitter = spec.Submitter
		}
		v.Window = specWindow(spec)
		if spec.Recording != nil {
			v.Recording = spec.Recording.ID
		}
		v.Command = commandLine(*spec)
		v.Timeline = fleet.NoTimeline(*spec)
	}
	if v.Timeline == "" && js.Result != nil {
		v.Timeline = js.Result.Timeline
	}
	if !withParts {
		return v
	}
	all := s.bus.StatusPrefix("job/" + id + "/")
	var runs fleet.State
	now := time.Now()
	for _, k := range slices.Sorted(maps.Keys(all)) {
		p, part := all[k], strings.TrimPrefix(k, "job/"+id+"/")
		pv := PartView{
			Part: part, Agent: p.Agent, Shard: p.Shard, State: p.State, Reason: p.Reason,
			Attempt: p.Attempt, Progress: progressOf(p.Progress), Result: p.Result, LostText: lostText(p.Result),
			ResumeSkipped: resumeSkipped(p.Result), PossibleDuplicates: possibleDuplicates(p.Result),
		}
		s.agentGone(&pv, p, now)
		v.Parts = append(v.Parts, pv)
		v.gone(pv.AgentGone)
		if fleet.IsRunKey(part) {
			runs = fleet.Furthest(runs, p.State)
		}
	}
	v.State = fleet.LiveState(v.State, runs)
	sort.SliceStable(v.Parts, func(i, j int) bool { return partOrder(v.Parts[i].Part) < partOrder(v.Parts[j].Part) })
	for i := range v.Parts {
		shardTotal(spec, v.Parts[i].Shard, v.Parts[i].Progress)
	}
	return v
}

// specWindow is the window a job reads (replay) or saves (record).
func specWindow(spec *fleet.Spec) string {
	switch {
	case spec.Recording != nil:
		return spec.Recording.Window
	case spec.Replay != nil:
		return spec.Replay.Window
	}
	return ""
}

// shardTotal marks a shard's progress total as an estimate. The engine
// already counts a shard's own requests (its window restricted to the shard,
// the counts scaled by the shard's share of the records: see
// shard.Assignment.Window), so the total is shown as the agent reports it,
// never scaled again.
func shardTotal(spec *fleet.Spec, shard *int, p *PartProgress) {
	if spec == nil || spec.Replay == nil || shard == nil || p == nil || p.Total == 0 || len(spec.Replay.Shards) < 2 {
		return
	}
	p.Estimated = true
}

// partOrder sorts shards by number, then agents, refusals, lost records.
func partOrder(p string) string {
	if rest, ok := strings.CutPrefix(p, "shard/"); ok {
		n, tail, _ := strings.Cut(rest, "/")
		i, _ := strconv.Atoi(n)
		return fmt.Sprintf("0%08d/%s", i, tail)
	}
	return "1" + p
}

// commandLine is the `replayctl jobs submit` command equivalent to a spec,
// with the secrets in its --set values masked (maskSet).
func commandLine(sp fleet.Spec) string {
	if len(sp.Selector) == 0 {
		// Its agents were named (the gor drop-in API), not chosen by
		// labels: jobs submit has no form of it ("--on ''" chose none).
		return ""
	}
	args := []string{"replayctl", "jobs", "submit", shquote.IfNeeded(sp.File), "--job", shquote.IfNeeded(sp.Job), "--on", shquote.IfNeeded(fleet.Labels(sp.Selector).String())}
	if sp.Shards > 1 {
		args = append(args, "--shards", strconv.Itoa(sp.Shards))
	}
	if sp.For > 0 {
		args = append(args, "--for", time.Duration(sp.For).String())
	}
	masked := maskSets(sp.Scenario, sp.Set)
	for i, st := range sp.Set {
		if fleet.IsStopAfterSet(st, sp.Job, time.Duration(sp.For)) {
			continue
		}
		args = append(args, "--set", shquote.IfNeeded(masked[i]))
	}
	return strings.Join(args, " ")
}

// maskSets returns the --set overrides of a spec whose scenario is text as
// the API shows them (maskSet), and the whole value of one that sets the
// value of a set-header whose name is a secret's (X-Token, by the scenario
// or by another override): that value is the header's.
func maskSets(text string, sets []string) []string {
	if sets == nil {
		return nil
	}
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte(text), &doc)
	out := make([]string, len(sets))
	for i, st := range sets {
		out[i] = maskSet(st)
		if path, value, ok := strings.Cut(st, "="); ok && value != "" && scenario.SecretName(setHeaderName(&doc, sets, scenario.SetPathKeys(path))) {
			out[i] = path + "=" + scenario.Mask
		}
	}
	return out
}

// setHeaderName returns, for the path of a set-header's value
// (jobs.replay.rewrite.1.set-header.value), the header's name: as the
// scenario (doc) has it, or as the last override that sets it says (the
// name itself, or a whole step or list around it); "" for another path.
func setHeaderName(doc *yaml.Node, sets []string, keys []string) string {
	n := len(keys)
	if n < 2 || keys[n-1] != "value" || keys[n-2] != "set-header" {
		return ""
	}
	name := append(slices.Clone(keys[:n-1]), "name")
	found := ""
	if v := yamlAt(doc, name); v != nil {
		found = v.Value
	}
	for _, st := range sets {
		path, value, ok := strings.Cut(st, "=")
		pk := scenario.SetPathKeys(path)
		if !ok || len(pk) > len(name) || !slices.Equal(pk, name[:len(pk)]) {
			continue
		}
		var v yaml.Node
		if yaml.Unmarshal([]byte(value), &v) != nil {
			continue
		}
		if at := yamlAt(&v, name[len(pk):]); at != nil && at.Kind == yaml.ScalarNode {
			found = at.Value
		}
	}
	return found
}

// yamlAt returns the node at keys under n (a document: its content); nil
// when there is none.
func yamlAt(n *yaml.Node, keys []string) *yaml.Node {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		n = n.Content[0]
	}
	for _, k := range keys {
		if n = yamlChild(n, k); n == nil {
			return nil
		}
	}
	return n
}

// yamlChild returns the member key of a mapping, or the item of a sequence
// at index key; nil when there is none.
func yamlChild(n *yaml.Node, key string) *yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == key {
				return n.Content[i+1]
			}
		}
	case yaml.SequenceNode:
		if i, err := strconv.Atoi(key); err == nil && i >= 0 && i < len(n.Content) {
			return n.Content[i]
		}
	}
	return nil
}

// maskSet returns a --set PATH=VALUE override as the API and the UI show it,
// masked as /v1/scenarios masks a scenario: the whole value when the path's
// last segment is a secret name (vars.api_token, kafka.sasl.password) or
// when the value is a YAML mapping with a member of a secret name
// ({user: u, password: p}); else the URL passwords and secret query values
// in it (scenario.MaskURL). A job's spec keeps the values: a rerun
// submits them again.
func maskSet(st string) string {
	path, value, ok := strings.Cut(st, "=")
	if !ok || value == "" {
		return st
	}
	// The last key, as --set reads it (vars."api_token" is api_token),
	// and its last dotted part (vars."db.password").
	keys := scenario.SetPathKeys(path)
	name := keys[len(keys)-1]
	tail := name[strings.LastIndexByte(name, '.')+1:]
	if scenario.SecretName(name) || scenario.SecretName(tail) || credentialText(value) || secretMember(value) {
		return path + "=" + scenario.Mask
	}
	return path + "=" + scenario.MaskURL(value)
}

// secretMember reports whether a --set value is YAML holding a mapping
// member of a secret name (scenario.SecretName), at any depth.
func secretMember(value string) bool {
	if !strings.ContainsAny(value, "{:") {
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal([]byte(value), &doc) != nil {
		return false
	}
	var walk func(n *yaml.Node) bool
	walk = func(n *yaml.Node) bool {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i].Value, n.Content[i+1]
				// {name: Authorization, value: …}: a rewrite of a secret header.
				if scenario.SecretName(k) || k == "name" && v.Kind == yaml.ScalarNode && scenario.SecretName(v.Value) {
					return true
				}
			}
		case yaml.ScalarNode:
			return credentialText(n.Value)
		}
		return slices.ContainsFunc(n.Content, walk)
	}
	return walk(&doc)
}

// credentialText reports whether a value reads as a credential: an
// authentication scheme and its secret ("Bearer abc", quoted or not, as an
// expression's literal), or a header line of a secret name
// ("Authorization: Bearer abc").
func credentialText(v string) bool {
	v = strings.Trim(strings.TrimSpace(v), `"'`+"`")
	if name, rest, ok := strings.Cut(v, ":"); ok && !strings.Contains(name, " ") && strings.TrimSpace(rest) != "" && scenario.SecretName(name) {
		return true
	}
	word, rest, ok := strings.Cut(v, " ")
	if !ok || strings.TrimSpace(rest) == "" {
		return false
	}
	switch strings.ToLower(word) {
	case "bearer", "basic", "token", "digest", "negotiate", "apikey", "dpop":
		return true
	}
	return false
}

// Pages of GET /v1/jobs: limit jobs (DefaultJobsLimit unless asked, at
// most MaxJobsLimit), newest first.
const (
	DefaultJobsLimit = 50
	MaxJobsLimit     = 500
)

// jobCursor is a place in the list of jobs, which is ordered by the offset
// of the job's spec on the jobs topic (the one the API shows), newest
// first, then by job ID, descending; jobs with no spec come last (pos -1).
// The broker gives offsets: a spec publisher chooses its IssuedAt (years
// ahead, to pin a forged job atop History) and, unless the broker stamps
// it (a LogAppendTime jobs topic), its record's timestamp, never its
// offset. A job's
// place does not move as jobs come (only when the spec shown changes: a
// PENDING job's spec published again), so a page asked for "before" a
// cursor neither repeats nor skips a job however many were submitted since.
type jobCursor struct {
	pos int64
	id  string
}

// noSpec is the place of a job with no spec on the jobs topic.
const noSpec = -1

// before reports whether a sorts before b (a is newer).
func (a jobCursor) before(b jobCursor) bool {
	if a.pos == b.pos {
		return a.id > b.id
	}
	return a.pos > b.pos
}

// String is the cursor as the before parameter takes it: opaque to
// clients, who take it from a Link header.
func (a jobCursor) String() string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d %s", a.pos, a.id))
}

// parseJobCursor reads a cursor. One written by a serve that ordered jobs
// by IssuedAt ("SECONDS.NANOSECONDS ID") is not one.
func parseJobCursor(s string) (jobCursor, error) {
	bad := fmt.Errorf("before %q: not a cursor of GET /v1/jobs (take it from the Link header)", s)
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return jobCursor{}, bad
	}
	pos, id, ok := strings.Cut(string(raw), " ")
	if !ok || id == "" {
		return jobCursor{}, bad
	}
	n, err := strconv.ParseInt(pos, 10, 64)
	if err != nil || n < noSpec || strconv.FormatInt(n, 10) != pos {
		return jobCursor{}, bad
	}
	return jobCursor{pos: n, id: id}, nil
}

// pageOf reads the limit and before parameters, and checks that a state
// filter names a state (a typo would match no job, and say nothing).
func pageOf(q url.Values) (int, *jobCursor, error) {
	if f := q.Get("state"); f != "" && !slices.ContainsFunc(fleet.States(), func(st fleet.State) bool { return strings.EqualFold(string(st), f) }) {
		return 0, nil, fmt.Errorf("state %q: want one of %s (GET /v1/states)", f, statesText())
	}
	limit := DefaultJobsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxJobsLimit {
			return 0, nil, fmt.Errorf("limit %q: want 1 to %d", v, MaxJobsLimit)
		}
		limit = n
	}
	if !q.Has("before") {
		return limit, nil, nil
	}
	c, err := parseJobCursor(q.Get("before"))
	if err != nil {
		return 0, nil, err
	}
	return limit, &c, nil
}

// listJobs answers a page of jobs, newest first, filtered by scenario,
// state, window and kind; a Link header (rel="next") names the next page
// when there is one. Only the page's specs are verified.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, _ Token) {
	q := r.URL.Query()
	limit, after, err := pageOf(q)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	if err := s.sync(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	// The index names each job's spec record, with what the filters
	// ask; only the page's are read (fetch). A full index leaves jobs
	// out: then every spec is read, by a scan (specIndex).
	s.catchUp()
	var specs map[string]jobSpec
	if s.index.leftOut() {
		specs = s.specIndex("")
	}
	type listed struct {
		at  jobCursor
		js  fleet.Status
		rec *jobSpec
	}
	statuses := s.bus.StatusPrefix("job/")
	// How far each job's runs got, for the state of a job going (liveState).
	// And which have a part whose agent is gone (fleet.AgentGone).
	runs := map[string]fleet.State{}
	gone := map[string]*JobView{}
	now := time.Now()
	for k, p := range statuses {
		id, part, ok := strings.Cut(strings.TrimPrefix(k, "job/"), "/")
		if !ok {
			continue
		}
		if fleet.IsRunKey(part) {
			runs[id] = fleet.Furthest(runs[id], p.State)
		}
		if g, ok := fleet.AgentGone(s.bus, p, now); ok {
			if gone[id] == nil {
				gone[id] = &JobView{}
			}
			gone[id].gone(g.How)
		}
	}
	var all []listed
	for k, js := range statuses {
		if strings.Count(k, "/") != 1 {
			continue
		}
		l := listed{at: jobCursor{pos: noSpec, id: strings.TrimPrefix(k, "job/")}, js: js}
		l.js.State = fleet.LiveState(js.State, runs[l.at.id])
		var file, window string
		if specs != nil {
			if x, ok := specs[l.at.id]; ok {
				l.rec, l.at.pos = &x, x.rec.Offset
				file, window = x.spec.File, specWindow(&x.spec)
			}
		} else if at, ok, _ := s.pick(l.at.id); ok {
			l.at.pos, file, window = at.offset, at.file, at.window
		}
		if !jobMatches(q, l.js, file, window) || after != nil && !after.before(l.at) {
			continue
		}
		all = append(all, l)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.before(all[j].at) })
	if len(all) > limit {
		all = all[:limit]
		next := maps.Clone(q)
		next.Set("before", all[limit-1].at.String())
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", r.URL.Path, next.Encode()))
	}
	out := make([]JobView, len(all))
	for i, l := range all {
		if l.rec == nil && l.at.pos != noSpec {
			// The index named it; read it now (the jobs topic created
			// again since: by a scan).
			if x, ok := s.fetch(l.at.id, l.at.pos); ok {
				l.rec = &x
			} else if x, ok := s.specIndex(l.at.id)[l.at.id]; ok {
				l.rec = &x
			}
		}
		var shown *shownSpec
		if l.rec != nil {
			shown = s.verifiedSpec(*l.rec)
		}
		out[i] = s.view(l.at.id, l.js, shown, false)
		if g := gone[l.at.id]; g != nil {
			out[i].AgentGone, out[i].PartsAgentGone = g.AgentGone, g.PartsAgentGone
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// StateView is a state a job or a part of one may report, as GET
// /v1/states lists them.
type StateView struct {
	State fleet.State `json:"state"`
	Final bool        `json:"final"` // nothing follows it
}

// listStates answers every state the fleet reports, in order
// (fleet.States): the web UI's state filter offers them, and it knows the
// final ones by them.
func (s *Server) listStates(w http.ResponseWriter, _ *http.Request, _ Token) {
	out := []StateView{}
	for _, st := range fleet.States() {
		out = append(out, StateView{State: st, Final: st.Final()})
	}
	writeJSON(w, http.StatusOK, out)
}

// statesText lists the states: "PENDING, ASSIGNED, …".
func statesText() string {
	var names []string
	for _, st := range fleet.States() {
		names = append(names, string(st))
	}
	return strings.Join(names, ", ")
}

// jobMatches applies the list's filters to a job, the scenario file and
// window of its spec (empty: none published).
func jobMatches(q url.Values, js fleet.Status, file, window string) bool {
	if f := q.Get("scenario"); f != "" && file != f {
		return false
	}
	if f := q.Get("state"); f != "" && !strings.EqualFold(string(js.State), f) {
		return false
	}
	if f := q.Get("window"); f != "" && window != f {
		return false
	}
	if f := q.Get("kind"); f != "" && js.Kind != f {
		return false
	}
	return true
}

// job returns a job's view and its spec's record (nil: none published),
// or answers 404.
func (s *Server) job(w http.ResponseWriter, r *http.Request) (JobView, *jobSpec, bool) {
	id := r.PathValue("id")
	if err := s.sync(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return JobView{}, nil, false
	}
	js, ok := s.bus.Status("job/" + id)
	if !ok {
		fail(w, http.StatusNotFound, "no job %q", id)
		return JobView{}, nil, false
	}
	var (
		shown *shownSpec
		rec   *jobSpec
	)
	if x, ok := s.specOf(id); ok {
		shown, rec = s.verifiedSpec(x), &x
	}
	return s.view(id, js, shown, true), rec, true
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request, _ Token) {
	if v, _, ok := s.job(w, r); ok {
		writeJSON(w, http.StatusOK, v)
	}
}

func (s *Server) jobLogs(w http.ResponseWriter, r *http.Request, _ Token) {
	v, _, ok := s.job(w, r)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := fleet.NewClient(s.bus, &buf).Logs(v.ID); err != nil {
		fail(w, http.StatusNotFound, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write(buf.Bytes())
}

// SubmitBody is a job submission.
type SubmitBody struct {
	Scenario string            `json:"scenario"`           // a file in the scenarios directory
	Job      string            `json:"job"`                // the scenario's job
	Vars     map[string]string `json:"vars,omitempty"`     // vars overrides (--set vars.NAME=VALUE)
	Set      []string          `json:"set,omitempty"`      // --set PATH=VALUE overrides
	Selector map[string]string `json:"selector,omitempty"` // agents by labels
	Agents   []string          `json:"agents,omitempty"`   // restrict to these agents by name
	Shards   int               `json:"shards,omitempty"`
	Window   string            `json:"window,omitempty"` // replay: the recording to read; record: the window to save
	For      string            `json:"for,omitempty"`    // record: stop after
	ID       string            `json:"id,omitempty"`     // a job ID of the caller's: submitting it twice is a 409
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request, tok Token) {
	var b SubmitBody
	if !s.decode(w, r, &b) {
		return
	}
	text, err := s.dir.read(b.Scenario)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	s.submit(w, r, tok, b, text, http.StatusCreated)
}

var jobIDRe = fleet.JobIDPattern

// submit validates a job and publishes it; text is the scenario's text.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, tok Token, b SubmitBody, text []byte, okCode int) {
	if b.Job == "" {
		fail(w, http.StatusBadRequest, "job is required (the scenario's job to run)")
		return
	}
	if len(b.Selector) == 0 && len(b.Agents) == 0 {
		fail(w, http.StatusBadRequest, "selector (agent labels) or agents (names) is required")
		return
	}
	if b.ID != "" && !jobIDRe.MatchString(b.ID) {
		fail(w, http.StatusBadRequest, "id %q: letters, digits, '.', '_', '-' (up to 128)", b.ID)
		return
	}
	if b.Shards < 0 || b.Shards > fleet.MaxShards {
		fail(w, http.StatusBadRequest, "shards %d: want 1 to %d", b.Shards, fleet.MaxShards)
		return
	}
	var forDur time.Duration
	if b.For != "" {
		d, err := time.ParseDuration(b.For)
		if err != nil || d <= 0 {
			fail(w, http.StatusBadRequest, "for %q: want a positive duration such as 30s or 10m", b.For)
			return
		}
		forDur = d
	}
	info := describeScenario(s.dir.path, b.Scenario, text)
	ji := slices.IndexFunc(info.Jobs, func(j JobInfo) bool { return j.Name == b.Job })
	if ji < 0 {
		names := make([]string, len(info.Jobs))
		for i, j := range info.Jobs {
			names[i] = j.Name
		}
		fail(w, http.StatusBadRequest, "scenario %s has no job %q (jobs: %s)", b.Scenario, b.Job, strings.Join(names, ", "))
		return
	}
	kind := info.Jobs[ji].Kind
	if !need(w, tok, kind) {
		return
	}
	set := slices.Clone(b.Set)
	for _, k := range slices.Sorted(maps.Keys(b.Vars)) {
		set = append(set, "vars."+k+"="+b.Vars[k])
	}
	if b.Window != "" {
		if kind == fleet.KindReplay {
			set = append(set, "jobs."+scenario.SetKey(b.Job, fleet.JobNames(text))+".source.window="+b.Window)
		} else {
			set = append(set, "jobs."+scenario.SetKey(b.Job, fleet.JobNames(text))+".save-window="+b.Window)
		}
	}
	for _, st := range set {
		if !strings.Contains(st, "=") {
			fail(w, http.StatusBadRequest, "set %q: want PATH=VALUE", st)
			return
		}
	}
	if _, problems, _ := validate(s.dir.path, b.Scenario, text, set); len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: fmt.Sprintf("invalid scenario %s (%s)", b.Scenario, problemCount(len(problems))), Problems: problems})
		return
	}
	if err := s.syncAgents(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if b.ID != "" {
		if js, ok := s.bus.Status("job/" + b.ID); ok {
			fail(w, http.StatusConflict, "job %s was already submitted (%s); nothing started", b.ID, js.State)
			return
		}
	}
	now := time.Now()
	var live []string
	for _, h := range s.bus.Agents() {
		if len(b.Agents) > 0 && !slices.Contains(b.Agents, h.Name) {
			continue
		}
		if s.bus.AgentAlive(h.Name, now) && fleet.Labels(h.Labels).Matches(b.Selector) && h.Allows(kind) {
			live = append(live, h.Name)
		}
	}
	who := fleet.Labels(b.Selector).String()
	if len(b.Agents) > 0 {
		who = strings.TrimPrefix(who+" among "+strings.Join(b.Agents, ","), " among ")
	}
	if len(live) == 0 {
		fail(w, http.StatusUnprocessableEntity, "no live agent matches %s and allows %s; nothing started", who, kind)
		return
	}
	if kind == fleet.KindReplay && max(b.Shards, 1) > len(live) {
		fail(w, http.StatusUnprocessableEntity, "%d shards need %d live agents matching %s that allow replay; %d do (%s); nothing started", b.Shards, b.Shards, who, len(live), strings.Join(live, ", "))
		return
	}
	var out bytes.Buffer
	c := fleet.NewClient(s.bus, &out)
	c.Submitter = "token:" + tok.Name + " (replayctl serve)"
	id, err := c.Submit(r.Context(), fleet.SubmitRequest{
		File: b.Scenario, Text: text, Job: b.Job, Selector: b.Selector, Set: set, Shards: b.Shards, For: forDur,
		Key: s.cfg.Key, JobID: b.ID, Agents: b.Agents,
	})
	if err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, fleet.ErrConflict):
			code = http.StatusConflict
		case errors.Is(err, fleet.ErrNoAgent):
			code = http.StatusUnprocessableEntity
		case errors.Is(err, fleet.ErrUsage):
			code = http.StatusBadRequest
		}
		fail(w, code, "%v; nothing started", err)
		return
	}
	s.submits.WithLabelValues(kind).Inc()
	s.log.Info("job submitted", "job", id, "kind", kind, "token", tok.Name)
	_ = s.sync(r.Context())
	js, _ := s.bus.Status("job/" + id)
	var shown *shownSpec
	if x, ok := s.specOf(id); ok {
		shown = s.verifiedSpec(x)
	}
	v := s.view(id, js, shown, true)
	writeJSON(w, okCode, struct {
		JobView
		Output string `json:"output"`
	}{v, out.String()})
}

func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, tok Token) {
	v, _, ok := s.job(w, r)
	if !ok {
		return
	}
	// The kind, and so the scope, is the signed spec's when serve signed
	// it; else the status topic's, which anyone with write access to Kafka
	// writes: only record and replay are kinds (kindScope).
	kind := v.Kind
	if sp, err := s.ownSpec(v.ID); err == nil {
		kind = sp.Kind
	}
	if !need(w, tok, kindScope(kind)) {
		return
	}
	if v.State.Final() {
		fail(w, http.StatusConflict, "job %s is already %s; nothing to cancel", v.ID, v.State)
		return
	}
	var out bytes.Buffer
	c := fleet.NewClient(s.bus, &out)
	c.Submitter = "token:" + tok.Name + " (replayctl serve)"
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 20*time.Second)
	defer cancel()
	err := c.CancelJob(ctx, v.ID, "", s.cfg.Key)
	_ = s.sync(ctx)
	v2, _, _ := s.job(httpDiscard{}, r)
	resp := struct {
		JobView
		Output string `json:"output"`
		Error  string `json:"error,omitempty"`
	}{JobView: v2, Output: out.String()}
	if err != nil {
		resp.Error = err.Error()
		writeJSON(w, http.StatusBadGateway, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) rerunJob(w http.ResponseWriter, r *http.Request, tok Token) {
	v, shown, ok := s.job(w, r)
	if !ok {
		return
	}
	if shown == nil {
		fail(w, http.StatusConflict, "job %s has no spec to run again", v.ID)
		return
	}
	// Anyone who may write to Kafka can publish a spec, with any scenario
	// text: serve signs again only a spec it signed itself (whose text came
	// from its scenarios directory and passed its checks).
	sp, err := s.ownSpec(v.ID)
	if err != nil {
		fail(w, http.StatusConflict, "job %s cannot run again: its spec is not signed by this serve's key (%v); submit its scenario instead", v.ID, err)
		return
	}
	if sp.ScenarioHashMismatch() {
		fail(w, http.StatusConflict, "job %s: its scenario text does not match its sha256", v.ID)
		return
	}
	b := SubmitBody{Scenario: sp.File, Job: sp.Job, Selector: sp.Selector, Shards: sp.Shards}
	if len(b.Selector) == 0 {
		b.Agents = sp.Agents // a job on named agents (gor compat) runs on them again
	}
	if sp.For > 0 {
		b.For = time.Duration(sp.For).String()
	}
	for _, st := range sp.Set {
		if !fleet.IsStopAfterSet(st, sp.Job, time.Duration(sp.For)) {
			b.Set = append(b.Set, st)
		}
	}
	s.submit(w, r, tok, b, []byte(sp.Scenario), http.StatusCreated)
}

// kindScope is the scope that acts on a job of kind: record or replay, and
// admin for anything else a status record may say ("read", "").
func kindScope(kind string) string {
	if kind == fleet.KindRecord || kind == fleet.KindReplay {
		return kind
	}
	return ScopeAdmin
}

// ownSpec returns a job's spec (the one its status names, else the latest
// published: the one the API shows), with its scenario text, once its
// signature verified against serve's own key (the verdict kept with the
// record's view).
func (s *Server) ownSpec(id string) (*fleet.Spec, error) {
	r, ok := s.specOf(id)
	if !ok {
		return nil, errors.New("missing")
	}
	shown := s.verifiedSpec(r)
	if own := fleet.Fingerprint(s.cfg.Key.Public().(ed25519.PublicKey)); !shown.verified || shown.signer != own {
		why := shown.why
		if shown.verified {
			why = "signed by key " + shown.signer
		}
		return nil, errors.New(why)
	}
	return r.full()
}

// httpDiscard is a ResponseWriter for internal lookups.
type httpDiscard struct{}

func (httpDiscard) Header() http.Header         { return http.Header{} }
func (httpDiscard) Write(b []byte) (int, error) { return len(b), nil }
func (httpDiscard) WriteHeader(int)             {}

// AgentView is an agent as the API shows it.
type AgentView struct {
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels"`
	Allow   []string          `json:"allow"`
	Version string            `json:"version"`
	Health  string            `json:"health"` // alive, lost, stopped
	// LastHeartbeat is when serve read the agent's latest heartbeat, on
	// serve's clock, and LastHeartbeatAgeMS how long before the answer
	// that was: not the heartbeat's record timestamp, the agent's own
	// clock on a broker that keeps its producers' timestamps (an agent 2
	// min behind read 2 min silent while it heartbeat). A heartbeat from
	// before serve opened the bus counts from its timestamp, never later
	// than that.
	LastHeartbeat      time.Time `json:"last_heartbeat"`
	LastHeartbeatAgeMS int64     `json:"last_heartbeat_age_ms"`
	Job                string    `json:"job,omitempty"`
	Shard              int       `json:"shard,omitempty"`
	ClockOffset        string    `json:"clock_offset"`
	// ClockUnmeasured says the agent could not measure ClockOffset ("0s"
	// then): the broker does not stamp its heartbeats with its own time.
	// ClockOff says what its clock does to specs when it is more than
	// fleet.ClockOffsetWarn off the broker's (as agents ls flags it).
	ClockUnmeasured bool     `json:"clock_unmeasured,omitempty"`
	ClockOff        string   `json:"clock_off,omitempty"`
	Addrs           []string `json:"addrs,omitempty"`
	// Running and Queued count the agent's jobs or shards going and
	// QUEUED (waiting for one of its MaxConcurrent slots), as its latest
	// heartbeat says; all three are absent for an agent older than them.
	Running       *int `json:"running,omitempty"`
	Queued        *int `json:"queued,omitempty"`
	MaxConcurrent *int `json:"max_concurrent,omitempty"`
	// MaxSpecTTL is the agent's --max-spec-ttl ("24h0m0s"): it refuses a
	// spec valid for longer. Absent for an agent older than the field.
	MaxSpecTTL string `json:"max_spec_ttl,omitempty"`
	// Runs are all the jobs and shards the agent runs or has QUEUED, as
	// its latest heartbeat names them (Job is one of them); for an agent
	// older than that list, the one job its heartbeat names.
	Runs []fleet.Run `json:"runs,omitempty"`
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ Token) {
	if err := s.syncAgents(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	now := time.Now()
	out := []AgentView{}
	for _, h := range s.bus.Agents() {
		ts, _ := s.bus.LastSeen(h.Name)
		health := "alive"
		switch {
		case h.Stopped:
			health = "stopped"
		case !s.bus.AgentAlive(h.Name, now):
			health = "lost"
		}
		labels := map[string]string(h.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		v := AgentView{Name: h.Name, Labels: labels, Allow: h.Allow, Version: h.Version, Health: health,
			LastHeartbeat: ts, LastHeartbeatAgeMS: max(now.Sub(ts), 0).Milliseconds(), Job: h.Job, Shard: h.Shard, Runs: h.Runs, ClockOffset: time.Duration(h.ClockOffset).String(), Addrs: h.Addrs}
		if len(v.Runs) == 0 && h.Job != "" {
			v.Runs = []fleet.Run{{Job: h.Job}}
		}
		if h.MaxConcurrent > 0 {
			v.Running, v.Queued, v.MaxConcurrent = &h.Running, &h.Queued, &h.MaxConcurrent
		}
		if h.MaxSpecTTL > 0 {
			v.MaxSpecTTL = time.Duration(h.MaxSpecTTL).String()
		}
		if v.ClockUnmeasured = h.ClockUnmeasured; !h.ClockUnmeasured {
			v.ClockOff = fleet.ClockNote(time.Duration(h.ClockOffset))
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// problemCount is "1 problem" or "N problems".
func problemCount(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
