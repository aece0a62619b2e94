package gorimport

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/internal/shquote"
	"github.com/replayctl/replayctl/scenario"
)

// gorHTTPTimeout is gor's default --output-http-timeout.
const gorHTTPTimeout = 5 * time.Second

// sinks maps the outputs.
func (c *conv) sinks() ([]sink, error) {
	var out []sink
	if len(c.https) > 0 {
		hs, err := c.httpSinks()
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
	}
	for _, f := range c.outFiles {
		s := sink{kind: "gor", desc: "--output-file " + strconv.Quote(f.value+f.lim.String())}
		if strings.TrimSpace(f.value) == "" {
			return nil, fmt.Errorf("%s: want a file path", s.desc)
		}
		if strings.Contains(f.value, "%") {
			c.warnf("%s: gor expands %%-placeholders and writes chunks (_0, _1, …); replayctl writes one file named as given", s.desc)
		}
		if strings.Contains(f.value, "://") {
			c.warnf("%s: cloud storage paths are not supported", s.desc)
		}
		path, resolved := f.value, ""
		if !strings.Contains(path, "://") && !filepath.IsAbs(path) && c.wd != "" {
			// gor writes it from its working directory: the scenario
			// names the same file from its own, or absolute when it is
			// not under it.
			abs := filepath.Join(c.wd, path)
			switch rel, err := filepath.Rel(c.dir, abs); {
			case c.dir != "" && err == nil && filepath.IsLocal(rel):
				c.renamed = c.renamed || rel != filepath.Clean(path)
				path = rel
			case c.dir == "" && filepath.IsLocal(path):
				c.warnRelative(s.desc, "writes")
			default:
				path = abs
				resolved = fmt.Sprintf(" (gor writes it from its working directory: the scenario names it as it resolves here, %s)", path)
			}
		}
		if p := filepath.Clean(path); !strings.Contains(path, "://") && (filepath.IsAbs(p) || p == ".." || strings.HasPrefix(p, ".."+string(filepath.Separator))) {
			// validate and run refuse it otherwise: a scenario writes
			// only under its own directory. A path outside it is where
			// gor wrote, from its working directory: the scenario names
			// it absolute, resolved here as gor resolved it, since the
			// scenario's own relative paths resolve against wherever it
			// is written, and --allow-paths against wherever it is run.
			// The hint then works from any directory, and the scenario
			// in any.
			dir := filepath.Dir(p)
			how := "--allow-paths " + shquote.IfNeeded(dir)
			if !filepath.IsAbs(dir) {
				how += " from the scenario's directory (--allow-paths reads a relative directory from the working directory)"
			}
			c.warnf("%s: the file is outside the scenario's directory%s, and a scenario writes only there: run the scenario with %s, or write the file beside it", s.desc, resolved, how)
			if !slices.Contains(c.allowPaths, dir) {
				c.allowPaths = append(c.allowPaths, dir)
			}
		}
		c.applyOutputLimit(&s, f.lim)
		s.node = set(mapNode(true), "gor", set(mapNode(true), "path", strNode(path)))
		out = append(out, s)
	}
	if c.stdout {
		out = append(out, sink{kind: "stdout", desc: "--output-stdout",
			node: set(mapNode(true), "stdout", set(mapNode(true), "format", strNode("payload")))})
	}
	if k := c.kout; k.host != "" || k.topic != "" {
		if k.host == "" || k.topic == "" {
			return nil, fmt.Errorf("a Kafka output needs both --output-kafka-host and --output-kafka-topic")
		}
		if err := c.useBrokers(k.host, "--output-kafka-host"); err != nil {
			return nil, err
		}
		if err := checkTopic("--output-kafka-topic", k.topic); err != nil {
			return nil, err
		}
		if k.json {
			c.warnf("--output-kafka-json-format not mapped: replayctl writes GoReplay text payloads (readable by gor without the JSON flag)")
		}
		out = append(out, sink{kind: "kafka", desc: "--output-kafka-topic " + strconv.Quote(k.topic),
			node: set(mapNode(true), "kafka", set(mapNode(true), "topic", strNode(c.topicKey(k.topic, true))))})
	}
	if c.null {
		if len(out) == 0 {
			c.warnf("--output-null: replayctl has no null sink; the job prints one summary line per message instead (stdout: {format: summary})")
			out = append(out, sink{kind: "stdout", desc: "--output-null",
				node: set(mapNode(true), "stdout", set(mapNode(true), "format", strNode("summary")))})
		} else {
			c.warnf("--output-null not mapped: the other outputs already receive the traffic")
		}
	}
	return out, nil
}

// applyOutputLimit maps an output's "|N" (rate) or "|N%" (random share).
func (c *conv) applyOutputLimit(s *sink, l limit) {
	switch {
	case !l.set:
	case !l.percent:
		s.rate = l.n
	case l.n < 100:
		s.sample = l.n
	default:
		c.warnf("%s: %s keeps all requests (on outputs gor's percentage is a share, not a speed)", s.desc, l)
	}
}

// httpSinks maps the --output-http values to targets and HTTP sinks: one
// sink with every target (mirror, or split with --split-output) when their
// limits agree, else one sink per target.
func (c *conv) httpSinks() ([]sink, error) {
	var keys []string
	var urls []*url.URL
	sameLimit := true
	for i, h := range c.https {
		raw := strings.TrimSpace(h.value)
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw // as gor does
		}
		u, _, err := scenario.ParseTargetURL(raw)
		if err != nil || u.Scheme == "builtin" {
			if err == nil {
				err = fmt.Errorf("not an http(s) URL")
			}
			return nil, fmt.Errorf("--output-http %q: %w", h.value, err)
		}
		key := c.uniqueKey("targets", sanitizeKey(u.Hostname(), "target"))
		urls = append(urls, u)
		if u.Path != "" || u.RawQuery != "" {
			// Mapped to rewrite steps (urlSteps): the target is the
			// scheme and host.
			raw = (&url.URL{Scheme: u.Scheme, User: u.User, Host: u.Host}).String()
		}
		t := set(mapNode(true), "url", strNode(raw))
		timeout := gorHTTPTimeout
		if c.timeout > 0 {
			timeout = c.timeout
		}
		set(t, "timeout", strNode(durationString(timeout)))
		if c.skipVerify {
			set(t, "insecure-skip-verify", boolNode(true))
		}
		set(c.targetsNode, key, t)
		keys = append(keys, key)
		if i > 0 && h.lim != c.https[0].lim {
			sameLimit = false
		}
	}
	mode := "mirror"
	if c.split {
		mode = "split"
	}
	if !sameLimit && c.split {
		c.warnf("--split-output with different limits per --output-http: the limits were not mapped (one split sink has one rate)")
	}
	var out []sink
	if sameLimit || c.split {
		s := sink{kind: "http", desc: "--output-http " + strconv.Quote(c.https[0].value+c.https[0].lim.String())}
		if sameLimit {
			c.applyOutputLimit(&s, c.https[0].lim)
		}
		s.node = c.httpSinkNode(keys, mode)
		s.rewrites = c.urlSteps(s.desc, urls)
		return append(out, s), nil
	}
	for i, h := range c.https {
		s := sink{kind: "http", desc: "--output-http " + strconv.Quote(h.value+h.lim.String())}
		c.applyOutputLimit(&s, h.lim)
		s.node = c.httpSinkNode(keys[i:i+1], mode)
		s.rewrites = c.urlSteps(s.desc, urls[i:i+1])
		out = append(out, s)
	}
	return out, nil
}

// urlSteps maps the path and query of the --output-http URLs of one sink:
// gor 1.x sends every request to exactly that path and query when the URL
// has either (its http client replaces the request's URL; a URL without
// them keeps each request's). They become a set-path and a
// set-query-string step, last, as gor applies them after its modifiers.
// Targets of one sink whose paths differ cannot be mapped (the steps are
// the job's): a warning says so.
func (c *conv) urlSteps(desc string, urls []*url.URL) []*yaml.Node {
	with := 0
	for _, u := range urls {
		if u.Path != "" || u.RawQuery != "" {
			with++
		}
	}
	if with == 0 {
		return nil
	}
	u := urls[0]
	for _, o := range urls[1:] {
		if o.EscapedPath() != u.EscapedPath() || o.RawQuery != u.RawQuery {
			shown := make([]string, len(urls))
			for i, x := range urls {
				shown[i] = strconv.Quote(scenario.MaskURL(x.String()))
			}
			c.warnf("--output-http %s: gor 1.x sends every request to each URL's own path and query; the targets of one replayctl sink share their rewrite steps: not mapped (their paths and queries differ); give each its own job with a set-path step", strings.Join(shown, ", "))
			return nil
		}
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	target := path
	if u.RawQuery != "" {
		target += "?" + u.RawQuery
	}
	shown := strings.TrimPrefix(scenario.MaskURL("http://h"+target), "http://h") // no secret parameter in clear
	c.warnf("%s: gor 1.x sends every request to %s (the URL's path and query replace each request's; gor before 1.0 kept them): mapped as set-path and set-query-string steps; remove them to keep each request's path", desc, shown)
	return []*yaml.Node{
		set(mapNode(false), "set-path", exprNode(quoteExpr(path))),
		set(mapNode(false), "set-query-string", exprNode(quoteExpr(u.RawQuery))),
	}
}

func (c *conv) httpSinkNode(keys []string, mode string) *yaml.Node {
	h := mapNode(true)
	if len(keys) == 1 {
		set(h, "target", strNode(keys[0]))
	} else {
		set(h, "targets", strSeq(true, keys...))
		set(h, "mode", strNode(mode))
	}
	switch {
	case c.workers > 0:
		set(h, "workers", intNode(int64(min(c.workers, 100000))))
	case c.workers < 0:
		c.warnf("--output-http-workers %d not mapped: must be > 0", c.workers)
	}
	switch {
	case c.workersMin == 0:
	case c.workersMin < 0:
		c.warnf("--output-http-workers-min %d not mapped: must be > 0", c.workersMin)
	case c.workers != 0:
		c.warnf("--output-http-workers-min %d not mapped: --output-http-workers selects replayctl's closed model (a fixed pool of workers), which has no minimum", c.workersMin)
	case c.session:
		c.warnf("--output-http-workers-min %d not mapped: with --recognize-tcp-sessions each recorded connection gets its own replay connection", c.workersMin)
	default:
		// gor's pool starts with that many workers; the open model opens
		// that many connections to each target before the first request.
		set(h, "min-connections", intNode(int64(min(c.workersMin, 10000))))
	}
	if c.originalHost {
		set(h, "preserve-host", boolNode(true))
	}
	if c.session {
		set(h, "session", boolNode(true))
	}
	return set(mapNode(true), "http", h)
}

// durationString prints d without zero trailing units: 5m, not 5m0s.
func durationString(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// nonHTTPJobKinds names the jobs whose sink is not an HTTP target.
const nonHTTPJobKinds = "record, save and print"

// job builds the job that sends src to snk.
func (c *conv) job(src source, snk sink, filter string, rewrites []*yaml.Node, by *hashLimiter) (string, *yaml.Node) {
	base := map[string]string{"http": "replay", "kafka": "record", "gor": "save", "stdout": "print"}[snk.kind]
	if snk.kind == "http" && src.label == "capture" {
		base = "mirror"
	}
	name := c.uniqueKey("jobs", base)
	if snk.kind == "http" && !c.originalHost && len(c.hostRewrites) > 0 {
		rewrites = slices.DeleteFunc(slices.Clone(rewrites), func(n *yaml.Node) bool { return c.hostRewrites[n] })
		c.warnf("--http-rewrite-header Host: gor's HTTP output sends the target's host unless --http-original-host, whatever the rewrite made of the Host header: not applied to job %s (it is to the jobs that write files or Kafka)", name)
	}
	j := mapNode(false)
	set(j, "source", src.node)
	if filter != "" {
		set(j, "filter", exprNode(filter))
	}
	random := src.sample
	if snk.sample > 0 {
		if random > 0 {
			random = random * snk.sample / 100
		} else {
			random = snk.sample
		}
	}
	switch {
	case by != nil:
		// gor samples the requests that have the header (or parameter)
		// and keeps the others: a key of nil keeps a request unsampled.
		value := "req.header(" + quoteExpr(by.name) + ")"
		if by.param {
			value = "req.param(" + quoteExpr(by.name) + ")"
		}
		key := value + ` != "" ? ` + value + " : nil"
		set(j, "sample", set(set(mapNode(true), "percent", numNode(by.percent)), "by", exprNode(key)))
		if random > 0 {
			c.warnf("random %s%% share not mapped: a job samples by one key only (kept --%s %q)", fmtNum(random), by.flag, by.raw)
		}
	case random > 0:
		// percent must be > 0 for the schema; a product that small is
		// rounded up to the smallest share expressible.
		set(j, "sample", set(mapNode(true), "percent", numNode(max(random, 0.0001))))
	}
	if len(rewrites) > 0 {
		set(j, "rewrite", seqNode(false, rewrites...))
	}
	set(j, "sink", snk.node)
	if c.exitAfter > 0 {
		set(j, "stop", set(mapNode(true), "after", strNode(durationString(c.exitAfter))))
	}
	if snk.kind == "kafka" {
		name := c.uniqueKey("recordings", "gor-recording")
		set(j, "save-window", strNode(name))
		c.warnf("the recording is saved as window %q, and a name is saved once: run the scenario again with --keep-history (the older windows kept as %s@TIME) or --overwrite, as a script that runs gor again would", name, name)
	}
	rate := src.rate
	if snk.rate > 0 && (rate == 0 || snk.rate < rate) {
		rate = snk.rate
	}
	if snk.kind != "http" {
		// gor copies what it captured; a record job masks credentials
		// before anything is written (the engine's default redaction).
		c.warnf("gor writes requests and responses as captured; replayctl masks the values of the %s headers and of secret query, form and JSON fields in what its %s jobs write (a replay of the copy sends them masked): add redact: {defaults: false} to a job to keep them",
			strings.Join(scenario.DefaultRedactHeaders, ", "), nonHTTPJobKinds)
		for _, f := range []struct {
			set  bool
			what string
		}{
			{src.speed > 0, "the speed of " + src.desc},
			{rate > 0, "the rate limit of " + src.desc + " / " + snk.desc},
			{src.loop, "--input-file-loop"},
			{src.maxGap > 0, "--input-file-max-wait"},
		} {
			if f.set {
				c.warnf("%s not mapped for job %s: speed, rate, loop and max-gap pace replays to HTTP targets; copies to %s run as fast as they can", f.what, name, snk.kind)
			}
		}
		return name, j
	}
	if src.speed > 0 && src.speed != 1 {
		set(j, "speed", numNode(src.speed))
	}
	if rate > 0 {
		set(j, "rate", strNode(fmtNum(rate)+"/s"))
		c.warnf("rate %s/s: gor drops requests above the limit; replayctl delays them to keep the rate", fmtNum(rate))
	}
	if src.loop {
		d := c.exitAfter
		if d == 0 {
			d = 24 * time.Hour
			c.warnf("--input-file-loop: gor loops until stopped; replayctl loops for a bounded time: loop: {for: 24h} (stop earlier with Ctrl-C, or --set %s)", setArg("1h", "jobs", name, "loop", "for"))
		}
		set(j, "loop", set(mapNode(true), "for", strNode(durationString(d))))
	}
	if src.maxGap > 0 {
		set(j, "max-gap", strNode(durationString(src.maxGap)))
	}
	return name, j
}
