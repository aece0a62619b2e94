package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/gorimport"
)

// GorStart is the body a gor platform posts to its host agents, plus the
// hosts (agent names) to run on.
type GorStart struct {
	Config string   `json:"config"` // gor's arguments, as one string
	Type   int      `json:"type"`
	Hosts  []string `json:"hosts"`
	ID     string   `json:"id,omitempty"`
}

// GorStop stops a compat job by ID, or every running compat job on hosts.
type GorStop struct {
	ID    string   `json:"id,omitempty"`
	Hosts []string `json:"hosts,omitempty"`
}

// splitArgs splits a command line the way a shell would split plain words,
// single and double quotes and backslashes, and nothing else: no
// expansion, no substitution, no redirection (none is ever run).
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		in    bool
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '\\' && quote != '\'' && continuation(rs[i+1:]) > 0:
			// A line continuation (backslash-newline, as a gor command
			// pasted over several lines has them): removed, as a shell
			// removes it, within double quotes too.
			i += continuation(rs[i+1:])
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, in = c, true
		case c == '\\':
			if i+1 < len(rs) {
				i++
				cur.WriteRune(rs[i])
				in = true
			}
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				args = append(args, cur.String())
				cur.Reset()
				in = false
			}
		case strings.ContainsRune("|;&<>`$()", c):
			return nil, fmt.Errorf("config: %q at character %d: a gor command line is arguments only (no shell)", c, i+1)
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, errors.New("config: unterminated quote")
	}
	if in {
		args = append(args, cur.String())
	}
	if len(args) > 0 && (args[0] == "gor" || strings.HasSuffix(args[0], "/gor")) {
		args = args[1:]
	}
	return args, nil
}

// continuation returns how many runes of rest, which follows a backslash,
// end its line: 1 for "\n", 2 for "\r\n" (a command pasted from Windows),
// else 0.
func continuation(rest []rune) int {
	switch {
	case len(rest) >= 1 && rest[0] == '\n':
		return 1
	case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
		return 2
	}
	return 0
}

// gorStart maps a gor command line through import gor into a replay of a
// saved window (the offset range gor names) on the named agents.
func (s *Server) gorStart(w http.ResponseWriter, r *http.Request, tok Token) {
	var b GorStart
	if !s.decode(w, r, &b) {
		return
	}
	if len(b.Hosts) == 0 {
		fail(w, http.StatusBadRequest, "hosts is required: the agents (by name) to run on")
		return
	}
	args, err := splitArgs(b.Config)
	if err != nil {
		fail(w, http.StatusBadRequest, "%v", err)
		return
	}
	res, err := gorimport.Convert(args)
	if err != nil {
		fail(w, http.StatusBadRequest, "gor config: %v", err)
		return
	}
	var unmapped []string
	for _, warn := range res.Warnings {
		if strings.Contains(warn, "not mapped") {
			unmapped = append(unmapped, warn)
		}
	}
	if len(unmapped) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "gor flags that cannot be mapped; nothing started", Problems: unmapped})
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(res.YAML, &doc); err != nil || len(doc.Content) == 0 {
		fail(w, http.StatusBadRequest, "gor config: the converted scenario does not read back: %v", err)
		return
	}
	root := doc.Content[0]
	var sc struct {
		Description string `yaml:"description"`
		Topics      map[string]struct {
			Name string `yaml:"name"`
		} `yaml:"topics"`
		Windows map[string]struct {
			Topic   string             `yaml:"topic"`
			Offsets map[string][]int64 `yaml:"offsets"`
		} `yaml:"windows"`
		Jobs map[string]struct {
			Source struct {
				Window string `yaml:"window"`
			} `yaml:"source"`
			Sink map[string]yaml.Node `yaml:"sink"`
		} `yaml:"jobs"`
	}
	if err := root.Decode(&sc); err != nil {
		fail(w, http.StatusBadRequest, "gor config: %v", err)
		return
	}
	job, ok := sc.Jobs["replay"]
	if _, hasHTTP := job.Sink["http"]; !ok || !hasHTTP || job.Source.Window == "" {
		fail(w, http.StatusBadRequest, "gor config: the compat endpoint replays a Kafka offset range to --output-http (--input-kafka-host, --input-kafka-topic, --input-kafka-start-offset, --input-kafka-end-offset, --output-http)")
		return
	}
	decl := sc.Windows[job.Source.Window]
	rng, ok := decl.Offsets["*"]
	if !ok || len(rng) != 2 {
		fail(w, http.StatusBadRequest, "gor config: --input-kafka-start-offset and --input-kafka-end-offset are required (a replay reads a fixed offset range)")
		return
	}
	topic := sc.Topics[decl.Topic].Name
	if topic == "" {
		topic = decl.Topic
	}
	if fleet.ReservedTopic(topic) {
		fail(w, http.StatusBadRequest, "gor config: topic %q is not traffic: topics named %s… are replayctl's own (jobs, statuses, the window catalog) and __… Kafka's; the compat endpoint replays none of them; nothing started", topic, fleet.ReservedTopicPrefix)
		return
	}
	if !need(w, tok, fleet.KindReplay) {
		return
	}
	id := gorID(b.ID)
	if !jobIDRe.MatchString(id) {
		fail(w, http.StatusBadRequest, "id %q: letters, digits, '.', '_', '-' (job %q: up to 128)", b.ID, id)
		return
	}
	if err := s.syncAgents(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if js, ok := s.bus.Status("job/" + id); ok {
		fail(w, http.StatusConflict, "job %s was already submitted (%s); nothing started", id, js.State)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	ends, err := catalog.EndOffsets(ctx, s.bus.Admin(), topic)
	if err != nil || len(ends) == 0 {
		fail(w, http.StatusBadRequest, "gor config: topic %q: not readable on this cluster (%v)", topic, err)
		return
	}
	// gor applies the same range to every partition; a range past a
	// partition's end is refused rather than waited for.
	// The window names the command line as import gor shows it (URL
	// passwords, secret headers and values masked): any read token lists
	// windows.
	shown, ok := strings.CutPrefix(sc.Description, "Converted from: ")
	if !ok {
		shown = "gor (compat)"
	}
	win := catalog.Window{Name: id, Topic: topic, Partitions: map[int32]catalog.Range{}, Job: "compat-gor", Scenario: shown, CreatedAt: time.Now().UTC()}
	for p, end := range ends {
		if rng[1] > end {
			fail(w, http.StatusBadRequest, "gor config: --input-kafka-end-offset %d is past the end of %s partition %d (%d); nothing started", rng[1], topic, p, end)
			return
		}
		win.Partitions[p] = catalog.Range{Start: rng[0], End: rng[1]}
	}
	// The scenario reads that window by name, as every fleet replay does.
	setWindow(root, job.Source.Window, win.Name)
	text, err := yaml.Marshal(&doc)
	if err != nil {
		fail(w, http.StatusInternalServerError, "%v", err)
		return
	}
	sub := SubmitBody{Scenario: "compat-gor.yaml", Job: "replay", Agents: b.Hosts, ID: id}
	// Validate before saving anything.
	if _, problems, _ := validate(s.dir.path, sub.Scenario, text, nil); len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "the gor command line maps to an invalid scenario; nothing started", Problems: problems})
		return
	}
	var live int
	for _, h := range s.bus.Agents() {
		for _, name := range b.Hosts {
			if h.Name == name && s.bus.AgentAlive(h.Name, time.Now()) && h.Allows(fleet.KindReplay) {
				live++
			}
		}
	}
	if live == 0 {
		fail(w, http.StatusUnprocessableEntity, "no live agent named %s allows replay; nothing started", strings.Join(b.Hosts, ", "))
		return
	}
	c, err := s.catalog(ctx)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	if err := c.Save(ctx, win, false); err != nil {
		fail(w, http.StatusConflict, "%v; nothing started", err)
		return
	}
	rec := &statusRecorder{ResponseWriter: w}
	s.submit(rec, r, tok, sub, text, http.StatusCreated)
	if rec.code >= 400 {
		// Nothing started: the window saved for it goes too.
		if err := c.Remove(context.WithoutCancel(ctx), win.Name); err != nil {
			s.log.Warn("gor compat: window of a refused job not removed", "window", win.Name, "err", err)
		}
	}
}

// gorID is the job ID of a compat job: gor-<the caller's id> (an id that
// starts with gor- as it is), else a new gor-… one. gor/stop finds compat
// jobs by that prefix and takes the caller's id in either form, and the
// window saved for the job has the same name.
func gorID(id string) string {
	switch {
	case id == "":
		return fleet.NewID("gor")
	case strings.HasPrefix(id, "gor-"):
		return id
	}
	return "gor-" + id
}

// setWindow turns the windows: entry key into {recording: name}.
func setWindow(root *yaml.Node, key, name string) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "windows" {
			continue
		}
		ws := root.Content[i+1]
		for j := 0; j+1 < len(ws.Content); j += 2 {
			if ws.Content[j].Value == key {
				ws.Content[j+1] = &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle, Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Value: "recording"}, {Kind: yaml.ScalarNode, Value: name},
				}}
			}
		}
	}
}

func (s *Server) gorStop(w http.ResponseWriter, r *http.Request, tok Token) {
	var b GorStop
	if !s.decode(w, r, &b) {
		return
	}
	if b.ID == "" && len(b.Hosts) == 0 {
		fail(w, http.StatusBadRequest, "id or hosts is required")
		return
	}
	if err := s.sync(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	type outcome struct {
		ID    string `json:"id"`
		Error string `json:"error,omitempty"`
	}
	out := []outcome{}
	var ids []string
	want := ""
	if b.ID != "" {
		want = gorID(b.ID) // as gor/start named it
	}
	for k, js := range s.bus.StatusPrefix("job/gor-") {
		if strings.Count(k, "/") != 1 || js.State.Final() {
			continue
		}
		id := strings.TrimPrefix(k, "job/")
		if want != "" {
			if id != want {
				continue
			}
		} else if !slices.ContainsFunc(js.Agents, func(a string) bool { return slices.Contains(b.Hosts, a) }) {
			continue
		}
		// A gor-… ID says nothing of the job's kind (any submitter may
		// choose it): the token needs the job's own scope, as for cancel.
		if scope := kindScope(js.Kind); !tok.Has(scope) {
			if b.ID != "" {
				need(w, tok, scope)
				return
			}
			out = append(out, outcome{ID: id, Error: fmt.Sprintf("not stopped: token %q lacks scope %q", tok.Name, scope)})
			continue
		}
		ids = append(ids, id)
	}
	if want != "" && len(ids) == 0 {
		if _, ok := s.bus.Status("job/" + want); !ok {
			fail(w, http.StatusNotFound, "no compat job %q (job %s)", b.ID, want)
			return
		}
	}
	for _, id := range ids {
		c := fleet.NewClient(s.bus, &strings.Builder{})
		c.Submitter = "token:" + tok.Name + " (replayctl serve, gor compat)"
		o := outcome{ID: id}
		if err := c.CancelJob(context.WithoutCancel(r.Context()), id, "", s.cfg.Key); err != nil {
			o.Error = err.Error()
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, map[string]any{"stopped": out})
}
