package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/runbus"
	"github.com/replayctl/replayctl/scenario"
)

// Loader loads the scenario of a job for an agent, restricted: ${VAR} is
// looked up in vars only (never the agent's environment) and every file path
// must lie under workDir. file is the name the scenario gets (inside
// workDir); errors are scenario diagnostics or plain errors that say why.
//
// LoadRestricted is the loader this package provides; the scenario package's
// own restricted mode replaces it where it exists (one assignment).
type Loader func(file string, text []byte, set []string, vars map[string]string, workDir string) (*scenario.Scenario, error)

// envCall finds env("NAME") calls in expressions: they read the process
// environment, which on an agent may hold what the job must not see.
var envCall = regexp.MustCompile(`\benv\s*\(`)

// envRefused is why an env() call is refused, after where it is and what
// it is ("env()" found in the text, `env("NAME")` compiled): the agents'
// LoadRestricted and the submitter's check (loadForSubmit) say the same.
const envRefused = "in an expression reads the agent's environment; agents refuse it (pass values with the agent's --var)"

// loaderEnvRefusal is the scenario loader's refusal of env("NAME") in a
// restricted scenario.
var loaderEnvRefusal = regexp.MustCompile(`^(.*?)env\(("(?:[^"\\]|\\.)*")\) cannot be read: a restricted scenario's expressions read only --env-file and --env-allow names$`)

// envRefusal is the refusal of an env() call at where (FILE:LINE[:COL]).
// name is the variable's name when the call was compiled, "" when it was
// found in the scenario's text.
func envRefusal(where, name string) string {
	call := "env()"
	if name != "" {
		call = fmt.Sprintf("env(%q)", name)
	}
	return fmt.Sprintf("%s: %s %s", where, call, envRefused)
}

// LoadRestricted is the fleet's restricted scenario loader.
func LoadRestricted(file string, text []byte, set []string, vars map[string]string, workDir string) (*scenario.Scenario, error) {
	if loc := envCall.FindIndex(text); loc != nil {
		line := 1 + strings.Count(string(text[:loc[0]]), "\n")
		return nil, errors.New(envRefusal(fmt.Sprintf("%s:%d", file, line), ""))
	}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	allow := make([]string, 0, len(vars))
	for name := range vars {
		allow = append(allow, name)
	}
	// The scenario loader's own restricted mode: ${VAR} only from the
	// agent's --var values, written and read paths contained in workDir.
	s, err := scenario.LoadBytes(file, text, scenario.Options{Set: set, Env: lookup, Restricted: true, EnvAllow: allow, OutputDir: workDir})
	var diags scenario.Diagnostics
	if errors.As(err, &diags) {
		// The loader's own refusal of env() (an escaped call the text
		// check missed) names replayctl run's --env-allow; agents have
		// none: theirs says what agents do.
		for i, d := range diags {
			if m := loaderEnvRefusal.FindStringSubmatch(d.Message); m != nil {
				diags[i].Message = m[1] + "env(" + m[2] + ") " + envRefused
			}
		}
		return nil, diags
	}
	if err != nil {
		return nil, err
	}
	// The text check above misses env() written otherwise (a YAML escape,
	// a comment before the parenthesis, a --set override); the scenario
	// names every call it compiled, and the restricted mode refuses every
	// indirect way to the function. env() of a --var's name would read the
	// agent's environment, not the --var.
	if len(s.EnvRefs) > 0 {
		r := s.EnvRefs[0]
		return nil, errors.New(envRefusal(r.Pos.String(), r.Name))
	}
	if err := checkPaths(s, workDir); err != nil {
		return nil, err
	}
	if err := checkPublishedAsserts(s); err != nil {
		return nil, err
	}
	if err := checkRecordedVars(s, vars); err != nil {
		return nil, err
	}
	if problems := checkTopics(s); len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return s, nil
}

// ReservedTopicPrefix begins the names of the topics replayctl keeps its
// own state in: the fleet's (AgentsTopic, JobsTopic, StatusTopic), the
// shard barrier's (replayctl.runs) and the window catalog's
// (replayctl.windows).
const ReservedTopicPrefix = "replayctl."

// fleetTopics says what each of the fleet's own topics holds.
var fleetTopics = map[string]string{
	AgentsTopic:         "the fleet's agents topic (heartbeats)",
	JobsTopic:           "the fleet's jobs topic (signed job specs and cancels)",
	StatusTopic:         "the fleet's status topic (every job's state and result)",
	runbus.DefaultTopic: "the shard barrier's topic (armed shards and their results)",
}

// checkTopics refuses a scenario whose data topics (its topics: entries,
// which its jobs write to and read windows from) are topics replayctl keeps
// its own state in (ReservedTopicPrefix) or its window catalog (its
// kafka.catalog-topic, whatever its name), or whose kafka.catalog-topic is
// one of the fleet's own topics: a job run by an agent would read the
// fleet's jobs, statuses or windows, or write into them (a record job's
// traffic, a window saved into the status topic), or change their
// configuration (a topic created or altered with config). It returns one
// problem per topic, FILE:LINE:COL: message.
func checkTopics(s *scenario.Scenario) []string {
	var problems []string
	for _, key := range s.TopicNames {
		t := s.Topics[key]
		switch {
		case t == nil:
		case strings.HasPrefix(t.Name, ReservedTopicPrefix):
			what := cmp.Or(fleetTopics[t.Name], "a topic replayctl keeps its own state in")
			if t.Name == s.Kafka.CatalogTopic || t.Name == catalog.DefaultTopic {
				what = "the window catalog's topic"
			}
			problems = append(problems, fmt.Sprintf("%s: topics.%s: Kafka topic %q is %s; a job may not read or write the topics named %s* (agents refuse it: give the topic another name)",
				t.Pos, key, t.Name, what, ReservedTopicPrefix))
		case t.Name == s.Kafka.CatalogTopic:
			problems = append(problems, fmt.Sprintf("%s: topics.%s: Kafka topic %q is the window catalog's topic (kafka.catalog-topic); a job may not read or write it as traffic (agents refuse it: give the topic or the catalog another name)",
				t.Pos, key, t.Name))
		}
	}
	if what, ok := fleetTopics[s.Kafka.CatalogTopic]; ok {
		problems = append(problems, fmt.Sprintf("%s: kafka.catalog-topic: Kafka topic %q is %s; windows may not be saved into it (agents refuse it: use the default %s or another name)",
			s.Kafka.Pos, s.Kafka.CatalogTopic, what, catalog.DefaultTopic))
	}
	return problems
}

// deniedTopic refuses, at run time, a window on a topic replayctl keeps
// its own state in (ReservedTopicPrefix) or one of Kafka's internal
// topics (__…): a catalog entry anyone with write access to Kafka may have
// written names its topic.
func deniedTopic(topic string) error {
	switch {
	case !ReservedTopic(topic):
		return nil
	case strings.HasPrefix(topic, ReservedTopicPrefix):
		return fmt.Errorf("%s; agents do not read the topics named %s* (replayctl keeps its own state there)",
			cmp.Or(fleetTopics[topic], "a topic replayctl keeps its own state in"), ReservedTopicPrefix)
	default:
		return fmt.Errorf("one of Kafka's internal topics; agents do not read them")
	}
}

// ReservedTopic reports whether topic holds no traffic to replay:
// replayctl's own state (ReservedTopicPrefix: signed specs, statuses, the
// catalog) or Kafka's internal topics (__consumer_offsets, …).
func ReservedTopic(topic string) bool {
	return strings.HasPrefix(topic, ReservedTopicPrefix) || strings.HasPrefix(topic, "__")
}

// catalogDenied is deniedTopic, and the refusal of the scenario's own
// window catalog (its kafka.catalog-topic, which may be named anything):
// it holds windows, not traffic.
func catalogDenied(catalogTopic string) func(string) error {
	return func(topic string) error {
		if topic == catalogTopic && !ReservedTopic(topic) {
			return fmt.Errorf("the window catalog's topic (kafka.catalog-topic); agents do not read it as traffic")
		}
		return deniedTopic(topic)
	}
}

// planTopic is catalogDenied, and for a replay with a signed plan, the
// refusal of any other topic than the plan's: anyone with write access to
// Kafka may rewrite a window's catalog entry to point at another topic
// (another team's recording, say), and the signed offset ranges would then
// be read there.
func planTopic(plan *ReplayPlan, catalogTopic string) func(string) error {
	denied := catalogDenied(catalogTopic)
	if plan == nil || plan.Topic == "" {
		return denied
	}
	return func(topic string) error {
		if topic != plan.Topic {
			return fmt.Errorf("the job's signed plan reads the topic %s (window %s): its catalog entry changed since the job was submitted", plan.Topic, plan.Window)
		}
		return denied(topic)
	}
}

// checkPaths refuses a scenario that names a file outside workDir.
func checkPaths(s *scenario.Scenario, workDir string) error {
	root, err := filepath.Abs(workDir)
	if err != nil {
		return err
	}
	var bad []string
	check := func(what string, p scenario.Path) {
		if !p.IsSet() {
			return
		}
		abs, err := filepath.EvalSymlinks(filepath.Dir(p.Abs))
		if err != nil {
			abs = filepath.Dir(p.Abs) // not there yet: judge the path as written
		}
		abs = filepath.Join(abs, filepath.Base(p.Abs))
		rel, err := filepath.Rel(root, abs)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
			bad = append(bad, fmt.Sprintf("%s %q", what, p.Raw))
		}
	}
	k := s.Kafka
	check("kafka.data-dir", k.DataDir)
	if k.TLS != nil {
		check("kafka.tls.ca-file", k.TLS.CAFile)
		check("kafka.tls.cert-file", k.TLS.CertFile)
		check("kafka.tls.key-file", k.TLS.KeyFile)
	}
	for _, t := range s.Targets {
		check("targets."+t.Name+".ca-file", t.CAFile)
	}
	for _, j := range s.Jobs {
		pre := "jobs." + j.Name + "."
		if j.Source.Pcap != nil {
			check(pre+"source.pcap.path", j.Source.Pcap.Path)
		}
		if j.Source.Gor != nil {
			check(pre+"source.gor.path", j.Source.Gor.Path)
		}
		if j.Sink.Gor != nil {
			check(pre+"sink.gor.path", j.Sink.Gor.Path)
		}
		if j.Sink.Kafka != nil {
			check(pre+"sink.kafka.spool.dir", j.Sink.Kafka.Spool.Dir)
		}
		check(pre+"report.json", j.Report.JSON)
		check(pre+"report.html", j.Report.HTML)
	}
	if len(bad) > 0 {
		return fmt.Errorf("paths outside the agent's work directory %s: %s", root, strings.Join(bad, ", "))
	}
	return nil
}

// TargetAllowed reports whether host:port (or host) matches one of the
// patterns (path.Match syntax: "127.0.0.1:*", "*.staging.internal:8080").
// A pattern without a port matches the host whatever its port. An IPv6
// literal in brackets ("[::1]:*", "[fd00::1]") is read literally, not as a
// character class. hostport should carry its port (TargetHostPort).
func TargetAllowed(hostport string, patterns []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
		if strings.Contains(h, ":") {
			host = "[" + h + "]"
		}
	}
	for _, p := range patterns {
		p, withPort := targetPattern(p)
		if ok, _ := path.Match(p, hostport); ok {
			return true
		}
		if ok, _ := path.Match(p, host); ok && !withPort {
			return true
		}
	}
	return false
}

// targetPattern escapes a leading bracketed IPv6 literal of an
// --allow-targets pattern and tells whether the pattern names a port.
func targetPattern(p string) (string, bool) {
	if strings.HasPrefix(p, "[") {
		if end := strings.Index(p, "]"); end > 0 && strings.Contains(p[1:end], ":") {
			return `\[` + p[1:end] + `\]` + p[end+1:], strings.Contains(p[end+1:], ":")
		}
	}
	return p, strings.Contains(p, ":")
}

// TargetHostPort is a target URL's host:port, with the scheme's default
// port (443 for https, 80 otherwise) when the URL names none, so that a
// "host:*" pattern matches http://host/ too.
func TargetHostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// checkPublishedAsserts refuses a scenario with an assertion that a run
// could publish only with a secret's value in it: a run publishes its
// job's assertions for the merge, which evaluates them on the shards'
// merged totals on whichever agent settles the job, with that agent's
// --var or none. An assertion that reads a secret (a --var with a secret's
// name, or a vars: entry that reads one) is published with the parts that
// read it evaluated to true or false (scenario.Expr.Published); one whose
// secret reaches the summary's values otherwise has no such form.
// checkRecordedVars refuses a job that writes into Kafka (a recording)
// with a rewrite step whose expression holds a --var's value: the value
// would be in every record it rewrites, in a topic whoever may read it
// reads (a submitter could read the agent's secrets there, which the agent
// masks everywhere else). A replay's rewrite sends to its target, which the
// agent's --allow-targets bounds.
func checkRecordedVars(s *scenario.Scenario, vars map[string]string) error {
	var problems []string
	for _, name := range s.JobNames {
		j := s.Jobs[name]
		if j.Sink.Kafka == nil {
			continue
		}
		for _, rw := range j.Rewrite {
			// Every text of the step: the header or parameter name, the
			// JSON path, the expressions.
			texts := []string{rw.Name, rw.JSONPath}
			for _, e := range []*scenario.Expr{rw.Value, rw.If} {
				if e != nil {
					texts = append(texts, e.Source)
				}
			}
			for _, v := range slices.Sorted(maps.Keys(vars)) {
				if len(vars[v]) >= 4 && slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(t, vars[v]) }) {
					problems = append(problems, fmt.Sprintf("%s: %s of job %s holds the value of this agent's --var %s: it would be written into the records of the topic it records to, which whoever may read that topic reads; an agent's --var may be used in a replay's rewrite, not a recording's", rw.Pos, rw.Action, name, v))
				}
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}

func checkPublishedAsserts(s *scenario.Scenario) error {
	var problems []string
	for _, name := range s.JobNames {
		for _, a := range s.Jobs[name].Assert {
			if _, err := a.Published(); err != nil {
				problems = append(problems, fmt.Sprintf("%s: assert %s reads a secret, and %v; the merge evaluates assertions on the shards' merged totals from what the runs publish, which never holds a secret's value: compare the secret to a constant there (\"${NAME}\" != \"\"), or leave it out of the assertion", a.Pos, a.Shown(), err))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "\n"))
	}
	return nil
}
