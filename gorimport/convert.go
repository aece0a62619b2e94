// Package gorimport converts a GoReplay (gor) command line into an
// equivalent replayctl scenario, so that scripts that run gor can switch
// with one command (replayctl import gor -- ARGS). It parses gor's flags as
// gor does, maps each one to scenario fields, and reports every flag or
// value it cannot map as a warning; it never drops one silently.
package gorimport

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Result is a converted command line.
type Result struct {
	// YAML is a complete scenario; the warnings head it as "# warning:"
	// comment lines.
	YAML []byte
	// Warnings name each flag or value that was not mapped (or mapped
	// with a difference worth knowing), in command-line order.
	Warnings []string
	// AllowPaths are the directories outside the scenario's own that it
	// writes to (an --output-file /var/log/gor/x.gor): validate and run
	// refuse it without --allow-paths for each, as its warnings say.
	AllowPaths []string
}

// Options say where the scenario is saved.
type Options struct {
	// Dir is the directory the scenario is saved in, where its relative
	// paths resolve; "" when it is not known (printed to a terminal or
	// a pipe). gor resolves a relative --input-file or --output-file in
	// its working directory: with Dir, the scenario names the same file
	// relative to Dir; without it, a warning says where to save it.
	Dir string
}

// Convert converts gor's arguments (without the program name) into a
// scenario saved in a directory not known. It returns an error when gor
// itself would refuse the command line: a flag without its value, a bad
// value, no input or no output.
func Convert(args []string) (*Result, error) {
	return ConvertWith(args, Options{})
}

// ConvertWith is Convert for a scenario saved where opts say.
func ConvertWith(args []string, opts Options) (*Result, error) {
	for i, a := range args {
		if !utf8.ValidString(a) {
			return nil, fmt.Errorf("argument %d is not valid UTF-8", i+1)
		}
	}
	args = withoutProgram(args)
	c := &conv{args: args}
	if wd, err := os.Getwd(); err == nil {
		c.wd = physical(wd)
		if opts.Dir != "" {
			c.dir = physical(filepath.Join(wd, opts.Dir))
			if filepath.IsAbs(opts.Dir) {
				c.dir = physical(opts.Dir)
			}
		}
	}
	if err := c.parseArgs(args); err != nil {
		return nil, c.hideErr(c.withWarnings(err))
	}
	doc, err := c.build()
	if err != nil {
		return nil, c.hideErr(c.withWarnings(err))
	}
	for i, w := range c.warns {
		c.warns[i] = c.hide(w)
	}
	var buf bytes.Buffer
	buf.WriteString("# Converted from a GoReplay command line by `replayctl import gor`.\n")
	if c.renamed {
		// Moved elsewhere, the scenario's relative paths would name
		// other files: say where they were computed for.
		fmt.Fprintf(&buf, "# Relative paths name gor's files (from its working directory %s) as seen from %s, where this scenario was saved.\n", oneLine(c.wd), oneLine(c.dir))
	}
	for _, w := range c.warns {
		buf.WriteString("# warning: " + oneLine(w) + "\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode scenario: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode scenario: %w", err)
	}
	return &Result{YAML: buf.Bytes(), Warnings: c.warns, AllowPaths: c.allowPaths}, nil
}

// withoutProgram drops gor's program name from a command line pasted
// whole ("gor --input-raw …", "sudo ./goreplay --input-raw …"): gor would
// read no flag after a first argument that is not one.
func withoutProgram(args []string) []string {
	rest := args
	if len(rest) > 1 && rest[0] == "sudo" {
		rest = rest[1:]
	}
	if len(rest) > 0 {
		switch base := path.Base(rest[0]); base {
		case "gor", "goreplay", "gor.exe", "goreplay.exe":
			return rest[1:]
		}
	}
	return args
}

// withWarnings adds to err the warnings given before it (an argument that
// is not a flag, which ends gor's flags, explains a "no output" after it).
func (c *conv) withWarnings(err error) error {
	if len(c.warns) == 0 {
		return err
	}
	return fmt.Errorf("%w (%s)", err, strings.Join(c.warns, "; "))
}

// oneLine keeps a warning on one printable comment line: control and other
// unprintable characters are written as Go escapes.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strconv.IsPrint(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// rawInput is one --input-raw value.
type rawInput struct {
	addr string
	lim  limit
}

// fileInput is one --input-file value.
type fileInput struct {
	path string
	lim  limit
}

// limited is an output value with its limiter.
type limited struct {
	value string
	lim   limit
}

type kafkaInput struct {
	host, topic string
	start, end  *int64
	json        bool
}

type kafkaOutput struct {
	host, topic string
	json        bool
}

// conv holds the parsed command line and the warnings.
type conv struct {
	args       []string
	warns      []string
	allowPaths []string // Result.AllowPaths
	// wd is the working directory, where gor resolved a relative
	// --output-file ("" when unknown).
	wd string
	// dir is the absolute directory the scenario is saved in ("" when
	// unknown), where its relative paths resolve (Options.Dir).
	dir string
	// renamed: a relative path of gor's was named from dir, not as given.
	renamed bool
	// hostRewrites are the set-host steps of --http-rewrite-header Host
	// rules: gor's HTTP output sends the target's host unless
	// --http-original-host, whatever the Host header became.
	hostRewrites map[*yaml.Node]bool

	exitAfter time.Duration

	raws       []rawInput
	rawEngine  string
	rawTrack   bool
	rawSnap    bool
	rawPromisc bool
	rawBuffer  int64

	files       []fileInput
	fileLoop    bool
	fileMaxWait time.Duration

	kin kafkaInput

	https        []limited
	split        bool
	session      bool
	workers      int
	workersMin   int // --output-http-workers-min: sink http.min-connections
	timeout      time.Duration
	trackResp    bool
	originalHost bool
	skipVerify   bool
	outFiles     []limited
	stdout, null bool
	kout         kafkaOutput
	tls          struct{ ca, cert, key string }

	methods                  []string
	allowURL, disallowURL    []string
	allowHeader              []headerFilter
	disallowHeader           []headerFilter
	basicAuth                []string
	setHeaders, setParams    []nameValue
	urlRewrites              []urlRewrite
	headerRewrites           []headerRewrite
	limiters                 []hashLimiter
	topicKeys, targetKeys    map[string]string // name -> key
	usedKeys                 map[string]bool   // keys per section, "section/key"
	jobNames                 map[string]int
	windowsNode, targetsNode *yaml.Node
	topicsNode               *yaml.Node
	topicNodes               map[string]*yaml.Node // by topics: key
	needKafka                bool
	kafkaBrokers             []string
	kafkaBrokersFrom         string

	// hidden maps each flag value that holds a secret to its masked form
	// (noteSecret); the description and the warnings show the masked one.
	hidden map[string]string
}

// warnf records a warning once.
func (c *conv) warnf(format string, args ...any) {
	w := oneLine(fmt.Sprintf(format, args...))
	for _, old := range c.warns {
		if old == w {
			return
		}
	}
	c.warns = append(c.warns, w)
}

// source is one input, ready to become a job's source.
type source struct {
	label  string     // capture, pcap, file, kafka
	node   *yaml.Node // the source: value
	speed  float64    // 0: unset
	rate   float64    // per second, 0: unset
	sample float64    // random share in percent, 0: unset
	loop   bool
	maxGap time.Duration
	desc   string // the flag, for warnings
}

// sink is one output (or one group of HTTP outputs).
type sink struct {
	kind   string // http, kafka, gor, stdout
	node   *yaml.Node
	rate   float64
	sample float64
	desc   string
	// rewrites are the sink's own steps, after the job's: an HTTP
	// output's path and query (urlSteps).
	rewrites []*yaml.Node
}

// build maps the parsed flags to the scenario document.
func (c *conv) build() (*yaml.Node, error) {
	c.topicKeys, c.targetKeys = map[string]string{}, map[string]string{}
	c.usedKeys, c.jobNames = map[string]bool{}, map[string]int{}
	c.topicsNode, c.windowsNode, c.targetsNode = mapNode(false), mapNode(false), mapNode(false)

	sources, err := c.sources()
	if err != nil {
		return nil, err
	}
	sinks, err := c.sinks()
	if err != nil {
		return nil, err
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("no input: gor needs --input-raw, --input-file or --input-kafka-host with --input-kafka-topic")
	}
	if len(sinks) == 0 {
		return nil, fmt.Errorf("no output: gor needs --output-http, --output-file, --output-stdout, --output-null or --output-kafka-host with --output-kafka-topic")
	}
	c.orphans(sinks)

	filter := c.filterExpr()
	rewrites := c.rewriteSteps()
	var byLimiter *hashLimiter
	for i := range c.limiters {
		l := &c.limiters[i]
		switch {
		case l.percent <= 0:
			c.warnf("--%s %q not mapped: 0%% keeps nothing with the header or parameter; remove the output instead", l.flag, l.raw)
		case l.percent >= 100:
			// keeps everything: nothing to map
		case byLimiter == nil:
			byLimiter = l
		default:
			c.warnf("--%s %q not mapped: a job samples by one key only (kept %s)", l.flag, l.raw, byLimiter.raw)
		}
	}

	jobs := mapNode(false)
	for _, src := range sources {
		for _, snk := range sinks {
			name, job := c.job(src, snk, filter, append(slices.Clip(rewrites), snk.rewrites...), byLimiter)
			set(jobs, name, job)
		}
	}
	if n := len(jobs.Content) / 2; n > 1 {
		c.warnf("gor feeds all outputs at once; replayctl runs the %d jobs one after another: to run them side by side, start one `replayctl run FILE --job NAME` per job", n)
	}

	doc := mapNode(false)
	set(doc, "version", intNode(1))
	set(doc, "name", strNode("imported-gor"))
	shown := make([]string, len(c.args))
	for i, a := range c.args {
		shown[i] = c.hide(a)
	}
	set(doc, "description", strNode("Converted from: gor "+shellJoin(shown)))
	if c.needKafka {
		k := set(mapNode(false), "brokers", strSeq(true, c.kafkaBrokers...))
		if c.tls.ca != "" || c.tls.cert != "" || c.tls.key != "" {
			t := set(mapNode(false), "enabled", boolNode(true))
			for _, f := range []struct{ key, v string }{{"ca-file", c.tls.ca}, {"cert-file", c.tls.cert}, {"key-file", c.tls.key}} {
				if f.v != "" {
					set(t, f.key, strNode(f.v))
				}
			}
			set(k, "tls", t)
		}
		set(doc, "kafka", k)
	} else if c.tls.ca != "" || c.tls.cert != "" || c.tls.key != "" {
		c.warnf("--kafka-tls-* not mapped: no Kafka input or output")
	}
	for _, sec := range []struct {
		key  string
		node *yaml.Node
	}{{"topics", c.topicsNode}, {"windows", c.windowsNode}, {"targets", c.targetsNode}} {
		if len(sec.node.Content) > 0 {
			set(doc, sec.key, sec.node)
		}
	}
	set(doc, "jobs", jobs)
	return doc, nil
}

// orphans reports flags that configure an input or output that is absent.
func (c *conv) orphans(sinks []sink) {
	hasRaw, hasFile, hasHTTP := len(c.raws) > 0, len(c.files) > 0, len(c.https) > 0
	for _, f := range []struct {
		set  bool
		name string
		ok   bool
		need string
	}{
		{c.rawTrack, "--input-raw-track-response", hasRaw, "--input-raw"},
		{c.rawSnap, "--input-raw-override-snaplen", hasRaw, "--input-raw"},
		{c.rawPromisc, "--input-raw-promisc", hasRaw, "--input-raw"},
		{c.rawBuffer > 0, "--input-raw-buffer-size", hasRaw, "--input-raw"},
		{c.fileLoop, "--input-file-loop", hasFile, "--input-file"},
		{c.fileMaxWait > 0, "--input-file-max-wait", hasFile, "--input-file"},
		{c.workers != 0, "--output-http-workers", hasHTTP, "--output-http"},
		{c.workersMin != 0, "--output-http-workers-min", hasHTTP, "--output-http"},
		{c.timeout > 0, "--output-http-timeout", hasHTTP, "--output-http"},
		{c.originalHost, "--http-original-host", hasHTTP, "--output-http"},
		{c.skipVerify, "--output-http-skip-verify", hasHTTP, "--output-http"},
		{c.session, "--recognize-tcp-sessions", hasHTTP, "--output-http"},
	} {
		if f.set && !f.ok {
			c.warnf("%s not mapped: it needs %s", f.name, f.need)
		}
	}
	if c.trackResp {
		c.warnf("--output-http-track-response not mapped: replayctl keeps replayed responses in the report (status, latency); add compare: to diff them with the recorded ones")
	}
	if c.split && len(sinks) > 1 && hasHTTP {
		c.warnf("--split-output: gor splits across all outputs; replayctl splits only across the HTTP targets")
	}
}

// sources maps the inputs.
func (c *conv) sources() ([]source, error) {
	var out []source
	for _, r := range c.raws {
		s, err := c.rawSource(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	for _, f := range c.files {
		s, err := c.fileSource(f)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if c.kin.host != "" || c.kin.topic != "" || c.kin.start != nil || c.kin.end != nil {
		s, err := c.kafkaSource()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// applyInputLimit maps an input's "|N" or "|N%" suffix.
func applyInputLimit(s *source, l limit, file bool) error {
	switch {
	case !l.set:
	case !l.percent:
		s.rate = l.n
	case file:
		// gor replays a file faster or slower by the percentage.
		f := l.n / 100
		if f < 0.01 || f > 1000 {
			return fmt.Errorf("%s: speed %s is out of range (1%% to 100000%%)", s.desc, l)
		}
		s.speed = f
	case l.n < 100:
		// gor keeps a random share of a live input.
		s.sample = l.n
	}
	return nil
}

var ifaceRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_@-]{0,14}$`)

func (c *conv) rawSource(r rawInput) (source, error) {
	s := source{label: "capture", desc: "--input-raw " + strconv.Quote(r.addr+r.lim.String())}
	if r.lim.set && r.lim.percent && r.lim.n >= 100 {
		c.warnf("%s: %s keeps all live traffic (it is not a speed for captures)", s.desc, r.lim)
	}
	if err := applyInputLimit(&s, r.lim, false); err != nil {
		return s, err
	}
	if c.rawEngine == "pcap_file" {
		for _, f := range []struct {
			set  bool
			name string
		}{{c.rawSnap, "--input-raw-override-snaplen"}, {c.rawPromisc, "--input-raw-promisc"}, {c.rawBuffer > 0, "--input-raw-buffer-size"}} {
			if f.set {
				c.warnf("%s not mapped: it tunes live capture, and --input-raw-engine pcap_file reads a file", f.name)
			}
		}
		s.label = "pcap"
		path, ports := r.addr, []int(nil)
		if i := strings.LastIndexByte(r.addr, ':'); i > 0 {
			if ps, err := parsePorts(r.addr[i+1:]); err == nil {
				path, ports = r.addr[:i], ps
			}
		}
		if path == "" {
			return s, fmt.Errorf("%s: want a pcap file path", s.desc)
		}
		p := set(mapNode(true), "path", strNode(path))
		if len(ports) > 0 {
			set(p, "ports", portsNode(ports))
		}
		set(p, "responses", boolNode(c.rawTrack))
		s.node = set(mapNode(true), "pcap", p)
		return s, nil
	}
	host, portList, err := splitHostPorts(r.addr)
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.desc, err)
	}
	ports, err := parsePorts(portList)
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.desc, err)
	}
	iface, hosts := "any", []string(nil)
	switch h := strings.Trim(host, "[]"); {
	case h == "" || h == "0.0.0.0" || h == "::":
	case isIP(h):
		hosts = []string{h}
	case ifaceRE.MatchString(h) && h != "localhost":
		iface = h
	default:
		c.warnf("%s: %q is neither an IP address nor an interface name; capturing on all interfaces without a host filter", s.desc, h)
	}
	cp := set(mapNode(false), "interface", strNode(iface))
	if len(ports) > 0 {
		set(cp, "ports", portsNode(ports))
	} else {
		c.warnf("%s: port 0 captures every port", s.desc)
	}
	if len(hosts) > 0 {
		set(cp, "hosts", strSeq(true, hosts...))
	}
	set(cp, "responses", boolNode(c.rawTrack))
	if c.rawSnap {
		set(cp, "snaplen", intNode(65536))
	}
	if c.rawBuffer > 0 {
		set(cp, "ring-size", strNode(sizeString(c.rawBuffer)))
	}
	if c.rawPromisc {
		set(cp, "promiscuous", boolNode(true))
	}
	s.node = set(mapNode(false), "capture", cp)
	return s, nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// splitHostPorts splits gor's "[host]:port[,port…]".
func splitHostPorts(addr string) (host, ports string, err error) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", fmt.Errorf("want [host]:port, such as :8080")
	}
	host, ports = addr[:i], addr[i+1:]
	if strings.HasPrefix(host, "[") != strings.HasSuffix(host, "]") {
		return "", "", fmt.Errorf("unbalanced brackets in %q", host)
	}
	return host, ports, nil
}

// parsePorts parses "80,8080"; port 0 (all ports) gives no ports.
func parsePorts(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("invalid port %q", p)
		}
		if n > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func portsNode(ports []int) *yaml.Node {
	n := seqNode(true)
	for _, p := range ports {
		n.Content = append(n.Content, intNode(int64(p)))
	}
	return n
}

func (c *conv) fileSource(f fileInput) (source, error) {
	s := source{label: "file", desc: "--input-file " + strconv.Quote(f.path+f.lim.String()), loop: c.fileLoop, maxGap: c.fileMaxWait}
	if strings.TrimSpace(f.path) == "" {
		return s, fmt.Errorf("%s: want a file path", s.desc)
	}
	if strings.Contains(f.path, "://") {
		c.warnf("%s: cloud storage paths are not supported; download the files and point the gor source at them", s.desc)
	}
	if err := applyInputLimit(&s, f.lim, true); err != nil {
		return s, err
	}
	p := f.path
	if !strings.Contains(p, "://") {
		p = c.fromWorkDir(s.desc, p, "reads")
	}
	s.node = set(mapNode(true), "gor", set(mapNode(true), "path", strNode(p)))
	return s, nil
}

// physical is dir with its symbolic links resolved (as the kernel resolves
// a path: the working directory $PWD names through a link, or the one a
// redirected stdout's file is in), or dir when it cannot be.
func physical(dir string) string {
	if p, err := filepath.EvalSymlinks(dir); err == nil {
		return p
	}
	return filepath.Clean(dir)
}

// fromWorkDir names the files gor finds at the relative path or glob p
// (from its working directory) relative to the scenario's directory, when
// both are known; when the scenario's is not, it warns that the path
// resolves there. An absolute path is kept. The directories put before p
// have their glob characters escaped: a directory "run[1]" is not a
// pattern.
func (c *conv) fromWorkDir(desc, p, verb string) string {
	if filepath.IsAbs(p) || c.wd == "" {
		return p
	}
	if c.dir == "" {
		c.warnRelative(desc, verb)
		return p
	}
	prefix, err := filepath.Rel(c.dir, c.wd)
	if err != nil {
		prefix = c.wd
	}
	c.renamed = c.renamed || prefix != "."
	return filepath.Join(escapeGlob(prefix), p)
}

// escapeGlob escapes the characters filepath.Match reads as a pattern's.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// warnRelative says that a relative path resolves in gor's working
// directory and in the scenario's, which is not known.
func (c *conv) warnRelative(desc, verb string) {
	c.warnf("%s: gor %s a relative path from its working directory, a scenario from its own: save the scenario in %s, or name where it goes (replayctl import gor -o FILE -- …) and the scenario names the file from there", desc, verb, c.wd)
}

func (c *conv) kafkaSource() (source, error) {
	k := c.kin
	s := source{label: "kafka", desc: "--input-kafka-topic " + strconv.Quote(k.topic)}
	if k.host == "" || k.topic == "" {
		return s, fmt.Errorf("a Kafka input needs both --input-kafka-host and --input-kafka-topic")
	}
	if err := c.useBrokers(k.host, "--input-kafka-host"); err != nil {
		return s, err
	}
	if err := checkTopic("--input-kafka-topic", k.topic); err != nil {
		return s, err
	}
	if k.json {
	}
	topic := c.topicKey(k.topic, false)
	w := set(mapNode(false), "topic", strNode(topic))
	switch {
	case k.start != nil && k.end != nil:
		if *k.start > *k.end {
			return s, fmt.Errorf("--input-kafka-start-offset %d is after --input-kafka-end-offset %d", *k.start, *k.end)
		}
		// "*": the same range of every partition, as gor applies them.
		set(w, "offsets", set(mapNode(false), "*", seqNode(true, intNode(*k.start), intNode(*k.end))))
	case k.end != nil:
		set(w, "offsets", set(mapNode(false), "*", seqNode(true, intNode(0), intNode(*k.end))))
		c.warnf("--input-kafka-end-offset without a start offset: the window starts at offset 0 of every partition of %q", k.topic)
	default:
		set(w, "last", strNode("15m"))
		if k.start != nil {
			c.warnf("--input-kafka-start-offset %d not mapped: without an end offset the window has no end; it replays the last 15m instead (set windows.*.offsets)", *k.start)
		} else {
			c.warnf("gor's Kafka input follows the live end of %q; replayctl replays fixed windows: the window replays the last 15m (adjust windows.*.last, or use offsets or a saved recording)", k.topic)
		}
	}
	name := c.uniqueKey("windows", "gor-input")
	set(c.windowsNode, name, w)
	s.node = set(mapNode(true), "window", strNode(name))
	return s, nil
}

// useBrokers sets kafka.brokers from a gor host list ("h1:9092,h2:9092").
func (c *conv) useBrokers(hosts, flag string) error {
	var brokers []string
	for _, h := range strings.Split(hosts, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		host, port, err := net.SplitHostPort(h)
		if err != nil { // no port
			c.warnf("%s %q: broker %q has no port; using 9092", flag, hosts, h)
			h = net.JoinHostPort(strings.Trim(h, "[]"), "9092")
			host, port, err = net.SplitHostPort(h)
		}
		n, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || n < 1 || n > 65535 || host == "embedded" {
			return fmt.Errorf("%s %q: broker %q must be host:port", flag, hosts, h)
		}
		brokers = append(brokers, h)
	}
	if len(brokers) == 0 {
		return fmt.Errorf("%s %q: no broker address", flag, hosts)
	}
	if c.needKafka {
		if strings.Join(brokers, ",") != strings.Join(c.kafkaBrokers, ",") {
			c.warnf("%s %q not mapped: a scenario talks to one Kafka cluster; using %s from %s", flag, hosts, strings.Join(c.kafkaBrokers, ","), c.kafkaBrokersFrom)
		}
		return nil
	}
	c.needKafka, c.kafkaBrokers, c.kafkaBrokersFrom = true, brokers, flag
	return nil
}

var keyBad = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// sanitizeKey turns s into a valid scenario key ([A-Za-z0-9][A-Za-z0-9._-]*).
func sanitizeKey(s, fallback string) string {
	k := strings.Trim(keyBad.ReplaceAllString(s, "-"), "-._")
	if len(k) > 60 {
		k = strings.Trim(k[:60], "-._")
	}
	if k == "" {
		return fallback
	}
	return k
}

// uniqueKey returns base, or base-2, base-3… if taken in section.
func (c *conv) uniqueKey(section, base string) string {
	k := base
	for i := 2; c.usedKeys[section+"/"+k]; i++ {
		k = base + "-" + strconv.Itoa(i)
	}
	c.usedKeys[section+"/"+k] = true
	return k
}

var kafkaTopicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

// checkTopic refuses a name Kafka refuses (gor would fail on it too).
func checkTopic(flag, name string) error {
	if !kafkaTopicRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%s %q: not a Kafka topic name (1 to 249 of A-Z a-z 0-9 . _ -, not . or ..)", flag, name)
	}
	return nil
}

// topicKey returns the topics: key for a Kafka topic name, declaring it once.
// A topic gor writes to is created when missing (create: true), as brokers
// that auto-create topics do for gor.
func (c *conv) topicKey(name string, written bool) string {
	if k, ok := c.topicKeys[name]; ok {
		if t := c.topicNodes[k]; written && get(t, "create") == nil {
			set(t, "create", boolNode(true))
		}
		return k
	}
	k := c.uniqueKey("topics", sanitizeKey(name, "traffic"))
	c.topicKeys[name] = k
	t := mapNode(true)
	set(t, "name", strNode(name))
	if written {
		set(t, "create", boolNode(true))
	}
	if c.topicNodes == nil {
		c.topicNodes = map[string]*yaml.Node{}
	}
	c.topicNodes[k] = t
	set(c.topicsNode, k, t)
	return k
}
