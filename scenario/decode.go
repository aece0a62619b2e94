package scenario

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr/ast"
	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

// decoder turns the validated node tree into the typed model, checking
// every value and reference as it goes. Problems already reported by the
// schema (at the same node, inside it or around it) are not repeated.
type decoder struct {
	file string
	dir  string
	// warnings are problems that do not make the scenario invalid (see
	// Scenario.Warnings); inputs adds those about missing files.
	warnings Diagnostics
	// outDir is where written paths resolve (the scenario's directory or
	// --output-dir, outDirFlag); allow are the --allow-paths directories.
	outDir     string
	outDirFlag bool
	allow      []string
	// secretWritten holds the text as written of the scalars into which a
	// ${VAR} with a secret's name put its value (Expr.Written).
	secretWritten map[*yaml.Node]string
	// secretTemplate holds those scalars as interpolated with each
	// secret's value replaced by exprenv.SecretPlaceholder (Expr.Published).
	secretTemplate map[*yaml.Node]string
	// restricted: env("NAME") may read only names envAllowed accepts.
	// remote: hints name no local directory (Options.Remote).
	restricted bool
	remote     bool
	envAllowed func(string) bool
	// inputs are the files read and interfaces captured on (CheckInputs).
	inputs []input
	lines  []string
	diags  Diagnostics
	sr     schemaResult
	s      *Scenario
	// secretSrc holds, by position, the source of a credential's value
	// whose diagnostics must not quote its words (maskSecretSources).
	secretSrc map[Pos]string
	// hints are more to say (with a leading space) after the schema's
	// diagnostic at a position, which the decoder does not repeat.
	hints map[Pos]string
}

// m is a mapping node with its display path.
type m struct {
	d    *decoder
	n    *yaml.Node
	path string
}

func (d *decoder) pos(n *yaml.Node) Pos {
	if n == nil {
		return Pos{File: d.file}
	}
	return Pos{d.file, n.Line, n.Column}
}

// errorf reports a problem at n, unless the schema already reported one
// there, inside it or inside a node it is part of.
// hintf adds to the schema's diagnostic about n (when there is one) what
// the decoder knows of the likely fix.
func (d *decoder) hintf(n *yaml.Node, format string, args ...any) {
	if n == nil || !d.sr.bad[n] {
		return
	}
	if d.hints == nil {
		d.hints = map[Pos]string{}
	}
	d.hints[d.pos(n)] = fmt.Sprintf(format, args...)
}

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	if n != nil && (d.sr.bad[n] || d.sr.above[n]) {
		return
	}
	if n == nil && path != "" && slices.ContainsFunc(d.sr.diags, func(sd Diagnostic) bool { return strings.HasPrefix(sd.Message, path+": ") }) {
		// A section that is not a mapping (sink: {http: "URL"}): the
		// schema said so at its place; what it lacks has no place.
		return
	}
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.diags = append(d.diags, Diagnostic{d.pos(n), msg})
}

func (d *decoder) mapping(n *yaml.Node, path string) m {
	n = resolveAlias(n)
	if n != nil && n.Kind != yaml.MappingNode {
		n = nil
	}
	return m{d, n, path}
}

func (x m) p(key string) string {
	if x.path == "" {
		return key
	}
	return x.path + "." + key
}

func (x m) get(key string) *yaml.Node {
	if x.n == nil {
		return nil
	}
	v, _ := lookup(x.n, key)
	if isNull(v) {
		return nil
	}
	return v
}

func (x m) has(key string) bool { return x.get(key) != nil }

func (x m) sub(key string) m { return x.d.mapping(x.get(key), x.p(key)) }

func (x m) str(key string) string {
	if v := x.get(key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func (x m) boolean(key string, def bool) bool {
	if v := x.get(key); v != nil && v.Kind == yaml.ScalarNode {
		if b, ok := scalarValue(v).(bool); ok {
			return b
		}
	}
	return def
}

func (x m) integer(key string, def int64) int64 {
	if v := x.get(key); v != nil && v.Kind == yaml.ScalarNode {
		if i, ok := scalarValue(v).(int64); ok {
			return i
		}
	}
	return def
}

func (x m) number(key string, def float64) float64 {
	if v := x.get(key); v != nil && v.Kind == yaml.ScalarNode {
		switch n := scalarValue(v).(type) {
		case int64:
			return float64(n)
		case float64:
			return n
		}
	}
	return def
}

func (x m) strs(key string) []string {
	v := x.get(key)
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	var out []string
	for _, c := range v.Content {
		if c = resolveAlias(c); c != nil && c.Kind == yaml.ScalarNode {
			out = append(out, c.Value)
		}
	}
	return out
}

// items returns the scalar items of a sequence with their nodes.
func (x m) items(key string) []*yaml.Node {
	v := x.get(key)
	if v == nil || v.Kind != yaml.SequenceNode {
		return nil
	}
	var out []*yaml.Node
	for _, c := range v.Content {
		if c = resolveAlias(c); c != nil {
			out = append(out, c)
		}
	}
	return out
}

// keys returns the mapping's present keys among names.
func (x m) keys(names ...string) []string {
	var out []string
	for _, k := range names {
		if x.n == nil {
			break
		}
		if v, kn := lookup(x.n, k); kn != nil && (v == nil || !isNull(v) || k == "stdout") {
			out = append(out, k)
		}
	}
	return out
}

// path is a file the scenario reads, resolved against the scenario's
// directory. A restricted scenario reads only under its directory (or
// --output-dir, or --allow-paths), never through a symbolic link: the path,
// and each file it matches when it is a glob, is checked as a written path
// is (see contain.go), and the directory it lies under is kept in Root for
// the reader to open it through an os.Root on it.
func (d *decoder) path(x m, key string) Path {
	raw := x.str(key)
	if raw == "" || d.controlInPath(x, key, raw) {
		return Path{}
	}
	abs := raw
	if !filepath.IsAbs(raw) {
		abs = filepath.Join(d.dir, raw)
	}
	// Cleaned, as it is judged: "dir/link/../x" is judged "dir/x", and a
	// reader given it as written would follow the link before the "..".
	abs = filepath.Clean(abs)
	p := Path{Raw: raw, Abs: abs}
	if d.restricted {
		roots := append([]string{d.dir, d.outDir}, d.allow...)
		what := raw // what is outside: the path, or a file it matches
		root, err := containedIn(filepath.Clean(abs), roots, false)
		if err == nil && strings.ContainsAny(raw, "*?[") {
			// Each file the glob matches now; a file that matches later
			// is opened through an os.Root on root, which no link leaves.
			matches, _ := filepath.Glob(filepath.Clean(abs))
			for _, match := range matches {
				if _, err = containedIn(match, roots, false); err != nil {
					what = raw + " matches " + match + ", which"
					if !errors.Is(err, errOutside) {
						err = fmt.Errorf("%s matches %s: %w", raw, match, err)
					}
					break
				}
			}
		}
		if err != nil {
			if errors.Is(err, errOutside) {
				d.errorf(x.get(key), x.p(key), "%s is outside the scenario's directory %s; a restricted scenario reads only there (or under --output-dir or --allow-paths)", what, d.dir)
			} else {
				d.errorf(x.get(key), x.p(key), "%v", err)
			}
			return Path{}
		}
		p.Root = root
	}
	d.noteInput(x.get(key), x.p(key), p)
	return p
}

func (d *decoder) duration(x m, key string) time.Duration {
	v := x.get(key)
	if v == nil {
		return 0
	}
	r, err := ParseDuration(v.Value)
	if err != nil || v.Kind != yaml.ScalarNode {
		if err == nil {
			err = fmt.Errorf("must be a duration")
		}
		d.errorf(v, x.p(key), "%v", err)
		return 0
	}
	return r
}

func (d *decoder) size(x m, key string) int64 {
	v := x.get(key)
	if v == nil {
		return 0
	}
	n, err := ParseSize(v.Value)
	if err != nil || v.Kind != yaml.ScalarNode {
		d.errorf(v, x.p(key), "%v", err)
		return 0
	}
	return n
}

func (d *decoder) timeSpec(x m, key string) *TimeSpec {
	v := x.get(key)
	if v == nil {
		return nil
	}
	t, err := ParseTime(v.Value)
	if err != nil {
		d.errorf(v, x.p(key), "%v", err)
		return nil
	}
	return t
}

// decodeScenario decodes the whole tree into d.s.
func (d *decoder) decodeScenario(root *yaml.Node) {
	top := d.mapping(root, "")
	s := d.s
	s.Version = int(top.integer("version", 0))
	s.Name = top.str("name")
	s.Description = top.str("description")
	s.Vars = map[string]string{}
	for _, p := range pairs(top.get("vars")) {
		if v := resolveAlias(p.Value); v != nil && v.Kind == yaml.ScalarNode {
			s.Vars[p.Key.Value] = v.Value
		}
	}
	d.decodeKafka(top.sub("kafka"))
	s.Topics = map[string]*Topic{}
	for _, p := range pairs(top.get("topics")) {
		t := d.decodeTopic(p.Key.Value, d.mapping(p.Value, "topics."+p.Key.Value), p.Key)
		s.Topics[t.Key] = t
		s.TopicNames = append(s.TopicNames, t.Key)
	}
	s.Targets = map[string]*Target{}
	for _, p := range pairs(top.get("targets")) {
		t := d.decodeTarget(p.Key.Value, d.mapping(p.Value, "targets."+p.Key.Value), p.Key)
		s.Targets[t.Name] = t
		s.TargetNames = append(s.TargetNames, t.Name)
	}
	s.Windows = map[string]*Window{}
	for _, p := range pairs(top.get("windows")) {
		w := d.decodeWindow(p.Key.Value, d.mapping(p.Value, "windows."+p.Key.Value), p.Key)
		s.Windows[w.Name] = w
		s.WindowNames = append(s.WindowNames, w.Name)
	}
	d.decodeSafety(top.sub("safety"))
	s.Jobs = map[string]*Job{}
	jobPairs := pairs(top.get("jobs"))
	for i, p := range jobPairs {
		j := d.decodeJob(p.Key.Value, i, d.mapping(p.Value, "jobs."+p.Key.Value), p.Key)
		s.Jobs[j.Name] = j
		s.JobNames = append(s.JobNames, j.Name)
	}
	d.checkNeeds(top.sub("jobs"))
}

func (d *decoder) decodeKafka(x m) {
	k := &d.s.Kafka
	k.Pos = d.pos(x.n)
	k.Brokers = x.strs("brokers")
	if len(k.Brokers) == 0 {
		k.Brokers = []string{"embedded"}
	}
	k.Embedded = len(k.Brokers) == 1 && k.Brokers[0] == "embedded"
	for _, b := range x.items("brokers") {
		if b.Value == "embedded" {
			if !k.Embedded {
				d.errorf(b, x.p("brokers"), "embedded cannot be combined with other brokers")
			}
			continue
		}
		host, port, err := net.SplitHostPort(b.Value)
		if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
			hint := ""
			if strings.Contains(b.Value, "@") {
				hint = " (a broker's credentials go under kafka.sasl, not in its address)"
			}
			d.errorf(b, x.p("brokers"), "broker %q must be host:port or embedded%s", MaskURL(b.Value), hint)
		}
	}
	// Unset, the engine uses .replayctl/data in the working directory, so
	// that every command run from one place sees the same recordings.
	k.DataDir = d.outPath(x, "data-dir")
	k.ClientID = cmp.Or(x.str("client-id"), "replayctl")
	k.Compression = cmp.Or(x.str("compression"), DefaultCompression)
	k.CatalogTopic = cmp.Or(x.str("catalog-topic"), "replayctl.windows")
	k.DeliveryTimeout = DefaultDeliveryTimeout
	if x.has("delivery-timeout") {
		k.DeliveryTimeout = d.duration(x, "delivery-timeout")
		if v := x.get("delivery-timeout"); k.DeliveryTimeout <= 0 && v != nil {
			d.errorf(v, x.p("delivery-timeout"), "must be a positive duration")
			k.DeliveryTimeout = DefaultDeliveryTimeout
		}
	}
	if t := x.sub("tls"); t.n != nil {
		k.TLS = &TLS{
			Enabled:            t.boolean("enabled", true),
			CAFile:             d.path(t, "ca-file"),
			CertFile:           d.path(t, "cert-file"),
			KeyFile:            d.path(t, "key-file"),
			InsecureSkipVerify: t.boolean("insecure-skip-verify", false),
			ServerName:         t.str("server-name"),
		}
		if k.TLS.CertFile.IsSet() != k.TLS.KeyFile.IsSet() {
			d.errorf(t.n, t.path, "cert-file and key-file go together")
		}
	}
	if sa := x.sub("sasl"); sa.n != nil {
		k.SASL = &SASL{Mechanism: sa.str("mechanism"), Username: sa.str("username"), Password: sa.str("password")}
		if k.SASL.Username == "" {
			d.errorf(sa.n, sa.path, "username is required")
		}
	}
	if k.Embedded && (k.TLS != nil || k.SASL != nil) && x.n != nil {
		d.errorf(x.n, "kafka", "tls and sasl need real brokers, not embedded")
	}
}

func (d *decoder) decodeTopic(key string, x m, keyNode *yaml.Node) *Topic {
	t := &Topic{Pos: d.pos(keyNode), Key: key, Name: cmp.Or(x.str("name"), key), Config: map[string]string{}}
	t.Partitions = int32(min(max(x.integer("partitions", 1), 1), 1<<30))
	t.ReplicationFactor = int16(min(max(x.integer("replication-factor", 1), 1), 1<<14))
	t.Create = x.boolean("create", false)
	for _, p := range pairs(x.get("config")) {
		if v := resolveAlias(p.Value); v != nil && v.Kind == yaml.ScalarNode {
			t.Config[p.Key.Value] = v.Value
			switch msg, warning := checkTopicConfig(p.Key.Value, v.Value); {
			case msg == "":
			case warning:
				d.warnings = append(d.warnings, Diagnostic{d.pos(p.Key), "warning: " + x.p("config") + "." + p.Key.Value + ": " + msg})
			default:
				d.errorf(v, x.p("config")+"."+p.Key.Value, "%s", msg)
			}
		}
	}
	return t
}

func (d *decoder) decodeTarget(name string, x m, keyNode *yaml.Node) *Target {
	t := &Target{Pos: d.pos(keyNode), Name: name, Timeout: 10e9}
	if v := x.get("url"); v != nil {
		u, builtin, err := ParseTargetURL(v.Value)
		if err != nil {
			d.errorf(v, x.p("url"), "%v", err)
		}
		t.URL, t.Builtin, t.Written = u, builtin, d.secretWritten[v]
		if u != nil && builtin == "" && (u.Path != "" && u.Path != "/" || u.RawQuery != "") {
			d.warnings = append(d.warnings, Diagnostic{d.pos(v), "warning: " + x.p("url") + ": its path and query are not used: a replay sends each request to its own path and query; to send them elsewhere, add rewrite steps (set-path, set-query-string)"})
		}
	}
	if x.has("timeout") {
		if dur := d.duration(x, "timeout"); dur > 0 {
			t.Timeout = dur
		} else {
			d.errorf(x.get("timeout"), x.p("timeout"), "must be greater than 0")
		}
	}
	t.InsecureSkipVerify = x.boolean("insecure-skip-verify", false)
	t.ServerName = x.str("server-name")
	t.CAFile = d.path(x, "ca-file")
	return t
}

func (d *decoder) topicRef(n *yaml.Node, path string) *Topic {
	if n == nil {
		return nil
	}
	if t, ok := d.s.Topics[n.Value]; ok {
		return t
	}
	d.errorf(n, path, "unknown topic %q%s", n.Value, known("topics", d.s.TopicNames))
	return nil
}

func (d *decoder) targetRef(n *yaml.Node, path string) *Target {
	if n == nil {
		return nil
	}
	if t, ok := d.s.Targets[n.Value]; ok {
		return t
	}
	d.errorf(n, path, "unknown target %q%s", n.Value, known("targets", d.s.TargetNames))
	return nil
}

// known lists the declared names for an "unknown X" message.
func known(section string, names []string) string {
	if len(names) == 0 {
		return fmt.Sprintf(" (no %s: declared)", section)
	}
	return fmt.Sprintf(" (%s: %s)", section, strings.Join(names, ", "))
}

func (d *decoder) decodeWindow(name string, x m, keyNode *yaml.Node) *Window {
	w := &Window{Pos: d.pos(keyNode), Name: name}
	kinds := x.keys("recording", "offsets", "from", "last")
	if len(kinds) != 1 && x.n != nil {
		d.errorf(x.n, x.path, "needs exactly one of recording, offsets, from, last%s", got(kinds))
	}
	if len(kinds) > 0 {
		switch kinds[0] {
		case "recording":
			w.Kind = WindowRecording
		case "offsets":
			w.Kind = WindowOffsets
		case "from":
			w.Kind = WindowTime
		case "last":
			w.Kind = WindowLast
		}
	}
	if tn := x.get("topic"); tn != nil {
		w.Topic = d.topicRef(tn, x.p("topic"))
	} else if w.Kind != WindowRecording && w.Kind != "" {
		d.errorf(x.n, x.path, "topic is required for a %s window", w.Kind)
	}
	w.Recording = x.str("recording")
	if off := x.get("offsets"); off != nil {
		w.Offsets = map[int32][2]int64{}
		for _, p := range pairs(off) {
			part, err := strconv.ParseInt(p.Key.Value, 10, 32)
			if p.Key.Value == "*" {
				part, err = int64(AllPartitions), nil
			}
			if err != nil || (part < 0 && part != int64(AllPartitions)) {
				d.errorf(p.Key, x.p("offsets"), "partition %q must be a number", p.Key.Value)
				continue
			}
			v := resolveAlias(p.Value)
			if v == nil || v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
				d.errorf(v, x.p("offsets")+"."+p.Key.Value, "must be [start, end)")
				continue
			}
			start, ok1 := scalarValue(resolveAlias(v.Content[0])).(int64)
			end, ok2 := scalarValue(resolveAlias(v.Content[1])).(int64)
			_, dup := w.Offsets[int32(part)]
			switch {
			case dup:
				d.errorf(p.Key, x.p("offsets"), "partition %d is given twice", part)
			case !ok1 || !ok2 || start < 0 || end < 0:
				d.errorf(v, x.p("offsets")+"."+p.Key.Value, "offsets must be integers >= 0")
			case start > end:
				d.errorf(v, x.p("offsets")+"."+p.Key.Value, "start offset %d is after end offset %d", start, end)
			default:
				w.Offsets[int32(part)] = [2]int64{start, end}
			}
		}
	}
	w.From = d.timeSpec(x, "from")
	w.To = d.timeSpec(x, "to")
	if x.has("to") && !x.has("from") {
		d.errorf(x.get("to"), x.p("to"), "to needs from")
	}
	if w.From != nil && w.To != nil && w.From.Absolute && w.To.Absolute && w.From.Time.After(w.To.Time) {
		d.errorf(x.get("to"), x.p("to"), "%s is before from %s", w.To.Raw, w.From.Raw)
	}
	if w.From != nil && w.To != nil && !w.From.Absolute && !w.To.Absolute && w.From.Offset > w.To.Offset {
		d.errorf(x.get("to"), x.p("to"), "%s is before from %s", w.To.Raw, w.From.Raw)
	}
	if x.has("last") {
		if w.Last = d.duration(x, "last"); w.Last == 0 {
			d.errorf(x.get("last"), x.p("last"), "must be greater than 0")
		}
	}
	w.AllowPartial = x.boolean("allow-partial", false)
	w.OnlyRecording = x.str("only-recording")
	if x.has("reorder") {
		d := d.duration(x, "reorder")
		w.Reorder = &d
	}
	return w
}

func got(keys []string) string {
	if len(keys) == 0 {
		return ""
	}
	return " (got " + strings.Join(keys, ", ") + ")"
}

func (d *decoder) decodeSafety(x m) {
	sf := &d.s.Safety
	sf.AllowCaptureHosts = x.boolean("allow-capture-hosts", false)
	for _, n := range x.items("deny-targets") {
		v := strings.TrimSpace(n.Value)
		sf.DenyTargets = append(sf.DenyTargets, v)
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				if strings.Contains(v, "://") {
					d.errorf(n, x.p("deny-targets"), "%q is a URL; deny-targets takes host names, IPs and CIDRs (prod.example.com, 10.0.0.0/8)", MaskURL(v))
				} else {
					d.errorf(n, x.p("deny-targets"), "invalid CIDR %q", MaskURL(v))
				}
				continue
			}
			sf.DenyPrefixes = append(sf.DenyPrefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
			ip = ip.Unmap()
			sf.DenyPrefixes = append(sf.DenyPrefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		if !validHostname(v) {
			d.errorf(n, x.p("deny-targets"), "%q is not a host name, IP or CIDR", MaskURL(v))
			continue
		}
		sf.DenyHosts = append(sf.DenyHosts, strings.ToLower(strings.TrimSuffix(v, ".")))
	}
}

var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$`)

func validHostname(s string) bool { return len(s) <= 253 && hostnameRE.MatchString(s) }

var sourceKinds = []string{"capture", "pcap", "gor", "window"}
var sinkKinds = []string{"kafka", "http", "gor", "stdout"}

func (d *decoder) decodeJob(name string, index int, x m, keyNode *yaml.Node) *Job {
	j := &Job{Pos: d.pos(keyNode), Name: name, Index: index, Description: x.str("description"), Amplify: 1}
	j.Needs = x.strs("needs")
	j.Source = d.decodeSource(x.sub("source"))
	if x.has("filter") {
		j.Filter = d.compileExpr(x.get("filter"), x.p("filter"), exprBool)
	}
	if sm := x.sub("sample"); sm.n != nil {
		j.Sample = &Sample{Percent: sm.number("percent", 100)}
		if j.Sample.Percent <= 0 || j.Sample.Percent > 100 {
			d.errorf(sm.get("percent"), sm.p("percent"), "must be a number in (0, 100]")
		}
		if sm.has("by") {
			j.Sample.By = d.compileExpr(sm.get("by"), sm.p("by"), exprString)
		}
	}
	j.Redact = d.decodeRedact(x.sub("redact"))
	for i, item := range x.items("rewrite") {
		j.Rewrite = append(j.Rewrite, d.decodeRewrite(d.mapping(item, fmt.Sprintf("%s[%d]", x.p("rewrite"), i))))
	}
	j.Sink = d.decodeSink(x.sub("sink"))
	st := x.sub("stop")
	j.Stop = Stop{After: d.duration(st, "after"), Requests: st.integer("requests", 0)}
	if j.Stop.Requests < 0 {
		d.errorf(st.get("requests"), st.p("requests"), "must be >= 1")
	}
	if sw := x.get("save-window"); sw != nil {
		j.SaveWindow = sw.Value
		if j.Sink.Kind != SinkKafka && j.Sink.Kind != "" {
			d.errorf(sw, x.p("save-window"), "save-window needs a kafka sink (this job's sink is %s)", j.Sink.Kind)
		}
		if _, ok := d.s.Windows[sw.Value]; ok {
			d.errorf(sw, x.p("save-window"), "%q is also a windows: key; saved recordings need their own names", sw.Value)
		}
		if strings.HasPrefix(sw.Value, reservedWindowPrefix) {
			d.errorf(sw, x.p("save-window"), "%q starts the keys of the catalog's claims: a window of that name would be taken for a claim (never listed, and compacted away); choose another name", reservedWindowPrefix)
		}
	}
	j.OnLoss = cmp.Or(x.str("on-loss"), "fail")
	if v := x.get("redact"); v != nil && j.Sink.Kind == SinkHTTP {
		d.errorf(v, x.p("redact"), "redact applies to record jobs: it runs before a message leaves the host, and a replay sends what was recorded (redacted then); to change what a replay sends, use rewrite")
	}
	j.Speed = d.decodeSpeed(x.get("speed"), x.p("speed"))
	if v := x.get("rate"); v != nil {
		r, err := ParseRate(v.Value)
		if err != nil {
			d.errorf(v, x.p("rate"), "%v", err)
		}
		j.Rate = r
	}
	if v := x.get("amplify"); v != nil {
		j.Amplify = int(x.integer("amplify", 0))
		if j.Amplify < 1 {
			d.errorf(v, x.p("amplify"), "must be an integer >= 1")
			j.Amplify = 1
		}
	}
	j.Loop = d.decodeLoop(x)
	j.MaxGap = d.duration(x, "max-gap")
	j.StartAt = d.timeSpec(x, "start-at")
	if c := x.sub("compare"); c.n != nil {
		j.Compare = &Compare{
			Status:    c.boolean("status", true),
			Headers:   c.strs("headers"),
			Body:      c.boolean("body", true),
			Ignore:    c.strs("ignore"),
			Tolerance: c.number("tolerance", 0),
		}
		for _, n := range c.items("ignore") {
			d.checkJSONPath(n, c.p("ignore"))
		}
		if nz := c.sub("noise"); nz.n != nil {
			j.Compare.Noise = d.targetRef(nz.get("target"), nz.p("target"))
		}
		if g := c.sub("grpc"); g.n != nil {
			j.Compare.GRPCDescriptors = d.path(g, "descriptors")
		}
	}
	rp := x.sub("report")
	j.Report = Report{JSON: d.outPath(rp, "json"), HTML: d.outPath(rp, "html")}
	if j.Sink.Kind != SinkHTTP && j.Sink.Kind != "" {
		d.checkReplayOnly(j, x, rp)
	}
	for i, n := range x.items("assert") {
		j.Assert = append(j.Assert, d.compileExpr(n, fmt.Sprintf("%s[%d]", x.p("assert"), i), exprAssert))
	}
	return j
}

// checkReplayOnly reports, each at its own key, the settings of a job that
// copies messages (a kafka, gor or stdout sink) that only a replay (an http
// sink) would use: accepted, they would be silently ignored.
func (d *decoder) checkReplayOnly(j *Job, x, report m) {
	pacing := map[string]bool{
		"speed":    j.Speed.Max || j.Speed.Factor != 1,
		"rate":     j.Rate.PerSecond > 0,
		"amplify":  j.Amplify > 1,
		"loop":     j.Loop.Count > 1 || j.Loop.For > 0,
		"max-gap":  j.MaxGap > 0,
		"start-at": j.StartAt != nil,
	}
	for _, key := range []string{"speed", "rate", "amplify", "loop", "max-gap", "start-at"} {
		if pacing[key] {
			d.errorf(x.get(key), x.p(key), "pacing applies to replays (an http sink); this job copies messages to its %s sink as fast as they come", j.Sink.Kind)
		}
	}
	if j.Compare != nil {
		d.errorf(x.get("compare"), x.p("compare"), "needs an http sink: it compares replayed responses with the recorded ones; this job's sink is %s", j.Sink.Kind)
	}
	if v := report.get("html"); v != nil {
		d.errorf(v, report.p("html"), "the HTML report is for replay jobs (an http sink); a job with a %s sink writes report.json", j.Sink.Kind)
	}
}

// checkJSONPath reports, at n, a JSON path that does not start with $ or
// does not compile: at validate time, not when a job first uses it.
func (d *decoder) checkJSONPath(n *yaml.Node, path string) {
	if n == nil || n.Kind != yaml.ScalarNode {
		return
	}
	if !strings.HasPrefix(n.Value, "$") {
		d.errorf(n, path, "JSON path %q must start with $", n.Value)
		return
	}
	if _, err := jsonpath.Compile(n.Value); err != nil {
		d.errorf(n, path, "invalid JSON path %q: %v", n.Value, strings.TrimPrefix(err.Error(), "jsonpath: "))
	}
}

func (d *decoder) decodeSource(x m) Source {
	src := Source{Pos: d.pos(x.n)}
	kinds := x.keys(sourceKinds...)
	if x.n == nil {
		return src
	}
	if len(kinds) != 1 {
		d.errorf(x.n, x.path, "needs exactly one of %s%s", strings.Join(sourceKinds, ", "), got(kinds))
		if len(kinds) == 0 {
			return src
		}
	}
	src.Kind = SourceKind(kinds[0])
	c := x.sub(kinds[0])
	switch src.Kind {
	case SourceCapture:
		cs := &CaptureSource{
			Interface:   c.str("interface"),
			Ports:       d.ports(c),
			Hosts:       c.strs("hosts"),
			Responses:   c.boolean("responses", true),
			Snaplen:     int(c.integer("snaplen", 262144)),
			RingSize:    64 << 20,
			Promiscuous: c.boolean("promiscuous", false),
			MaxBody:     d.size(c, "max-body"),
			MaxBuffered: d.maxBuffered(c),
			Decap:       cmp.Or(c.str("decap"), "auto"),
		}
		if c.has("ring-size") {
			cs.RingSize = d.size(c, "ring-size")
			if cs.RingSize < 256<<10 {
				// The ring is made of 256 KiB or larger blocks; 0 would be
				// read as the default, which the plan would not show.
				d.errorf(c.get("ring-size"), c.p("ring-size"), "must be at least 256KiB, one block of the ring (default 64MiB)")
				cs.RingSize = 64 << 20
			}
		}
		d.noteInterface(c.get("interface"), c.p("interface"))
		for _, h := range c.items("hosts") {
			if _, err := netip.ParseAddr(h.Value); err != nil && !validHostname(h.Value) {
				if _, err := netip.ParsePrefix(h.Value); err != nil {
					d.errorf(h, c.p("hosts"), "%q is not a host name, IP or CIDR", h.Value)
				}
			}
		}
		src.Capture = cs
	case SourcePcap:
		src.Pcap = &PcapSource{Path: d.path(c, "path"), Ports: d.ports(c), Responses: c.boolean("responses", true), MaxBody: d.size(c, "max-body"),
			MaxBuffered: d.maxBuffered(c), Decap: cmp.Or(c.str("decap"), "auto")}
	case SourceGor:
		src.Gor = &GorSource{Path: d.path(c, "path")}
	case SourceWindow:
		src.Window = x.str("window")
		src.WindowRef = d.s.Windows[src.Window]
	}
	return src
}

func (d *decoder) ports(x m) []int {
	var out []int
	for _, n := range x.items("ports") {
		p, err := strconv.Atoi(n.Value)
		if err != nil || p < 1 || p > 65535 {
			d.errorf(n, x.p("ports"), "must be a port number 1..65535, not %q", n.Value)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (d *decoder) decodeSink(x m) Sink {
	sk := Sink{Pos: d.pos(x.n)}
	if x.n == nil {
		return sk
	}
	kinds := x.keys(sinkKinds...)
	if len(kinds) != 1 {
		d.errorf(x.n, x.path, "needs exactly one of %s%s", strings.Join(sinkKinds, ", "), got(kinds))
		if len(kinds) == 0 {
			return sk
		}
	}
	sk.Kind = SinkKind(kinds[0])
	c := x.sub(kinds[0])
	switch sk.Kind {
	case SinkKafka:
		sk.Kafka = &KafkaSink{Topic: d.topicRef(c.get("topic"), c.p("topic")), Compression: cmp.Or(c.str("compression"), d.s.Kafka.Compression)}
		sp := c.sub("spool")
		// A directory the spool creates and writes: contained like the
		// files the scenario writes.
		sk.Kafka.Spool = Spool{Dir: d.outDirPath(sp, "dir"), MaxBytes: DefaultSpoolBytes}
		if sp.has("max-bytes") {
			sk.Kafka.Spool.MaxBytes = d.size(sp, "max-bytes")
			if v := sp.get("max-bytes"); sk.Kafka.Spool.MaxBytes < 64<<10 && v != nil {
				d.errorf(v, sp.p("max-bytes"), "must be at least 64KiB")
				sk.Kafka.Spool.MaxBytes = DefaultSpoolBytes
			}
		}
	case SinkHTTP:
		sk.HTTP = d.decodeHTTPSink(c)
	case SinkGor:
		sk.Gor = &GorSink{Path: d.outPath(c, "path")}
	case SinkStdout:
		sk.Stdout = &StdoutSink{Format: cmp.Or(c.str("format"), "payload")}
	}
	return sk
}

func (d *decoder) decodeHTTPSink(x m) *HTTPSink {
	h := &HTTPSink{
		Mode:           cmp.Or(x.str("mode"), "mirror"),
		Workers:        int(x.integer("workers", 32)),
		WorkersSet:     x.has("workers"),
		MaxConnections: int(x.integer("max-connections", 10000)),
		MinConnections: int(x.integer("min-connections", 0)),
		Session:        x.boolean("session", false),
		PreserveHost:   x.boolean("preserve-host", false),
		Timeout:        d.duration(x, "timeout"),
		Protocol:       cmp.Or(x.str("protocol"), ProtocolAuto),
		MaxStreams:     int(x.integer("max-streams", 100)),
	}
	if x.has("timeout") && h.Timeout <= 0 {
		// As a target's: 0s is no timeout to give, and the targets' own
		// timeouts would apply without a word.
		d.errorf(x.get("timeout"), x.p("timeout"), "must be greater than 0")
	}
	if x.has("max-streams") && h.Protocol == ProtocolHTTP1 {
		d.errorf(x.get("max-streams"), x.p("max-streams"), "max-streams applies to HTTP/2 (protocol auto or h2)")
	}
	kinds := x.keys("target", "url", "targets")
	if len(kinds) != 1 {
		d.errorf(x.n, x.path, "needs exactly one of target, url, targets%s", got(kinds))
	}
	if x.has("workers") && x.has("max-connections") {
		d.errorf(x.get("max-connections"), x.p("max-connections"), "max-connections caps the open model and workers selects the closed model: set one of them")
	}
	h.MaxConnectionsSet = x.has("max-connections")
	if v := x.get("min-connections"); v != nil {
		switch {
		case x.has("workers"):
			d.errorf(v, x.p("min-connections"), "min-connections opens the open model's connections ahead and workers selects the closed model: set one of them")
		case h.Session:
			d.errorf(v, x.p("min-connections"), "min-connections opens pooled connections; with session: true each recorded connection gets its own, opened when it starts")
		case h.Protocol == ProtocolH2:
			d.errorf(v, x.p("min-connections"), "min-connections opens HTTP/1.x connections; protocol h2 multiplexes requests on a few connections of its own")
		case h.MinConnections > h.MaxConnections:
			d.errorf(v, x.p("min-connections"), "min-connections (%d) is more than max-connections (%d)", h.MinConnections, h.MaxConnections)
		}
	}
	if x.has("mode") && !x.has("targets") {
		d.errorf(x.get("mode"), x.p("mode"), "mode applies to targets: (several targets)")
	}
	if t := d.targetRef(x.get("target"), x.p("target")); t != nil {
		h.Targets = append(h.Targets, t)
	}
	if v := x.get("url"); v != nil {
		u, builtin, err := ParseTargetURL(v.Value)
		if err != nil {
			d.errorf(v, x.p("url"), "%v", err)
		} else {
			written := d.secretWritten[v]
			name := MaskURL(cmp.Or(written, v.Value)) // the name is printed: not the password or a token
			h.Targets = append(h.Targets, &Target{Pos: d.pos(v), Name: name, URL: u, Builtin: builtin, Timeout: 10e9, Written: written})
		}
	}
	seen := map[string]bool{}
	for _, n := range x.items("targets") {
		if seen[n.Value] {
			d.errorf(n, x.p("targets"), "target %q is listed twice", n.Value)
			continue
		}
		seen[n.Value] = true
		if t := d.targetRef(n, x.p("targets")); t != nil {
			h.Targets = append(h.Targets, t)
		}
	}
	return h
}

func (d *decoder) decodeRedact(x m) Redact {
	r := Redact{
		Defaults: x.boolean("defaults", true),
		Headers:  x.strs("headers"),
		Query:    x.strs("query"),
		Form:     x.strs("form"),
		JSON:     x.strs("json"),
		Mode:     cmp.Or(x.str("mode"), "mask"),
		Mask:     cmp.Or(x.str("mask"), "REDACTED"),
		Key:      x.str("key"),
	}
	if x.has("mask") && x.str("mask") == "" {
		r.Mask = ""
	}
	for _, n := range x.items("json") {
		d.checkJSONPath(n, x.p("json"))
	}
	for _, n := range x.items("patterns") {
		re, err := regexp.Compile(n.Value)
		if err != nil {
			d.errorf(n, x.p("patterns"), "invalid regular expression: %v", err)
			continue
		}
		r.Patterns = append(r.Patterns, re)
		r.PatternsRaw = append(r.PatternsRaw, n.Value)
	}
	if r.Mode == "hash" && r.Key == "" {
		d.errorf(x.get("mode"), x.p("mode"), "mode hash needs a key (redact.key)")
	}
	return r
}

var rewriteActions = []string{"set-header", "remove-header", "set-method", "set-path", "set-url", "set-query-string", "set-query", "remove-query", "set-host", "set-json", "remove-json", "drop"}

func (d *decoder) decodeRewrite(x m) *Rewrite {
	rw := &Rewrite{Pos: d.pos(x.n)}
	if x.n == nil {
		return rw
	}
	acts := x.keys(rewriteActions...)
	if len(acts) != 1 {
		d.errorf(x.n, x.path, "a rewrite step needs exactly one action of %s%s", strings.Join(rewriteActions, ", "), got(acts))
		if len(acts) == 0 {
			return rw
		}
	}
	act := acts[0]
	rw.Action = RewriteAction(act)
	v := x.get(act)
	switch rw.Action {
	case SetHeader, SetQuery:
		nv := x.sub(act)
		rw.Name = nv.str("name")
		if rw.Action == SetHeader && nv.has("name") {
			d.checkHeaderName(nv.get("name"), nv.p("name"), rw.Name)
		}
		if nv.has("value") && SecretName(rw.Name) {
			rw.Value = d.compileSecretExpr(nv.get("value"), nv.p("value"), exprString)
		} else if nv.has("value") {
			rw.Value = d.compileExpr(nv.get("value"), nv.p("value"), exprString)
		}
	case RemoveHeader, RemoveQuery:
		rw.Name = x.str(act)
		if rw.Action == RemoveHeader {
			d.checkHeaderName(v, x.p(act), rw.Name)
		}
	case SetMethod, SetPath, SetURL, SetQueryString, SetHost:
		rw.Value = d.compileExpr(v, x.p(act), exprString)
		d.checkRewriteLiteral(rw.Action, rw.Value, v, x.p(act))
	case SetJSON:
		nv := x.sub(act)
		rw.JSONPath = nv.str("path")
		if nv.has("path") {
			d.checkJSONPath(nv.get("path"), nv.p("path"))
		}
		if nv.has("value") {
			rw.Value = d.compileExpr(nv.get("value"), nv.p("value"), exprAny)
		}
	case RemoveJSON:
		rw.JSONPath = x.str(act)
		d.checkJSONPath(v, x.p(act))
	case Drop:
		rw.Value = d.compileExpr(v, x.p(act), exprBool)
	}
	if x.has("if") {
		rw.If = d.compileExpr(x.get("if"), x.p("if"), exprBool)
	}
	return rw
}

// checkRewriteLiteral refuses, at its place, a constant value that every
// request would refuse at run time (set-method: '"BAD METHOD"'; set-path:
// "'x'", without its leading /): each request would count a rewrite
// error, and none be sent.
func (d *decoder) checkRewriteLiteral(act RewriteAction, e *Expr, n *yaml.Node, path string) {
	if e == nil || e.Program == nil {
		return
	}
	lit, ok := e.Program.Node().(*ast.StringNode)
	if !ok {
		return
	}
	req, err := httpraw.ParseRequest([]byte("GET http://h/ HTTP/1.1\r\nHost: h\r\n\r\n"))
	if err != nil {
		return
	}
	switch act {
	case SetMethod:
		err = req.SetMethod(lit.Value)
	case SetPath:
		err = req.SetPath(lit.Value)
	case SetURL:
		err = req.SetPathAndQuery(lit.Value)
	case SetQueryString:
		err = req.SetRawQuery(strings.TrimPrefix(lit.Value, "?"))
	case SetHost:
		err = req.SetHost(lit.Value)
	}
	if err != nil {
		d.errorf(n, path, "every request would refuse this value: %s", strings.TrimPrefix(err.Error(), "httpraw: "))
	}
}

func (d *decoder) decodeSpeed(n *yaml.Node, path string) Speed {
	if n == nil {
		return Speed{Factor: 1}
	}
	if n.Kind == yaml.ScalarNode && n.Value == "max" {
		return Speed{Max: true}
	}
	var f float64
	switch v := scalarValue(n).(type) {
	case int64:
		f = float64(v)
	case float64:
		f = v
	default:
		if n.Kind == yaml.ScalarNode {
			v := strings.TrimSpace(n.Value)
			hint := ""
			if pct, ok := strings.CutSuffix(v, "%"); ok {
				// gor's --input-file 'x.gor|200%'
				if pf, err := strconv.ParseFloat(pct, 64); err == nil {
					hint = fmt.Sprintf(" (gor's %s is speed: %v)", v, pf/100)
				}
			} else if pf, err := strconv.ParseFloat(strings.TrimSuffix(v, "x"), 64); err == nil {
				hint = fmt.Sprintf(" (write %v, not %q)", pf, v)
			}
			if hint != "" {
				// The schema has said it (a string is not a number).
				d.hintf(n, "%s", hint)
				d.errorf(n, path, "must be a number between 0.01 and 1000 or \"max\"%s", hint)
				return Speed{Factor: 1}
			}
		}
		d.errorf(n, path, "must be a number between 0.01 and 1000 or \"max\"")
		return Speed{Factor: 1}
	}
	if f < 0.01 || f > 1000 {
		d.errorf(n, path, "must be a number between 0.01 and 1000 or \"max\" (got %v)", f)
		return Speed{Factor: 1}
	}
	return Speed{Factor: f}
}

func (d *decoder) decodeLoop(x m) Loop {
	n := x.get("loop")
	if n == nil {
		return Loop{Count: 1}
	}
	if n.Kind == yaml.MappingNode {
		l := x.sub("loop")
		dur := d.duration(l, "for")
		if dur <= 0 && l.has("for") {
			d.errorf(l.get("for"), l.p("for"), "must be greater than 0")
		}
		return Loop{For: dur}
	}
	c, ok := scalarValue(n).(int64)
	if !ok || c < 1 {
		d.errorf(n, x.p("loop"), "must be an integer >= 1 or {for: DURATION}")
		return Loop{Count: 1}
	}
	return Loop{Count: int(c)}
}

// checkNeeds reports unknown needs and needs cycles (once per cycle).
func (d *decoder) checkNeeds(jobs m) {
	s := d.s
	needNode := map[string][]*yaml.Node{}
	for _, name := range s.JobNames {
		jm := d.mapping(jobs.get(name), jobs.p(name))
		seen := map[string]bool{}
		for _, n := range jm.items("needs") {
			needNode[name] = append(needNode[name], n)
			if _, ok := s.Jobs[n.Value]; !ok {
				d.errorf(n, jm.p("needs"), "unknown job %q%s", n.Value, known("jobs", s.JobNames))
			} else if seen[n.Value] {
				d.errorf(n, jm.p("needs"), "job %q is listed twice", n.Value)
			}
			seen[n.Value] = true
		}
	}
	// Two jobs saving one window: the second would replace the first's
	// (or fail, in the default mode) in the same run.
	savedBy := map[string]string{}
	for _, name := range s.JobNames {
		j := s.Jobs[name]
		if j == nil || j.SaveWindow == "" {
			continue
		}
		if other, ok := savedBy[j.SaveWindow]; ok {
			jm := d.mapping(jobs.get(name), jobs.p(name))
			d.errorf(jm.get("save-window"), jm.p("save-window"), "job %q saves window %q too; each recording needs its own name", other, j.SaveWindow)
			continue
		}
		savedBy[j.SaveWindow] = name
	}
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	reported := map[string]bool{}
	var visit func(string)
	visit = func(name string) {
		color[name] = grey
		stack = append(stack, name)
		for _, n := range needNode[name] {
			next := n.Value
			if _, ok := s.Jobs[next]; !ok {
				continue
			}
			switch color[next] {
			case white:
				visit(next)
			case grey:
				i := slices.Index(stack, next)
				cycle := append(slices.Clone(stack[i:]), next)
				members := slices.Clone(stack[i:])
				slices.Sort(members)
				if key := strings.Join(members, "\x00"); !reported[key] {
					reported[key] = true
					d.errorf(n, "jobs."+name+".needs", "needs cycle: %s", strings.Join(cycle, " → "))
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[name] = black
	}
	for _, name := range s.JobNames {
		if color[name] == white {
			visit(name)
		}
	}
}

// reservedWindowPrefix starts the catalog's claim keys (catalog.claimPrefix):
// no window may be named so.
const reservedWindowPrefix = "replayctl.claim/"

// checkHeaderName refuses a header name that is not an RFC 9110 token
// ("Bad Name", "X:Y"): every request would fail the step at run time.
func (d *decoder) checkHeaderName(n *yaml.Node, path, name string) {
	if n != nil && n.Kind == yaml.ScalarNode && name != "" && !httpraw.ValidHeaderName(name) {
		d.errorf(n, path, "%q is not a header name: a name is letters, digits and !#$%%&'*+-.^_`|~, without spaces or colons", name)
	}
}

// DefaultMaxBuffered is a capture's max-buffered when it is not set: the
// bytes of messages in progress (and of TCP segments held for reassembly)
// a capture holds at once.
const DefaultMaxBuffered = 256 << 20

// maxBuffered reads a capture or pcap source's max-buffered (default
// DefaultMaxBuffered); it must hold one whole message at max-body.
func (d *decoder) maxBuffered(c m) int64 {
	if !c.has("max-buffered") {
		return DefaultMaxBuffered
	}
	n := d.size(c, "max-buffered")
	switch body := d.size(c, "max-body"); {
	case n < 1<<20:
		d.errorf(c.get("max-buffered"), c.p("max-buffered"), "must be at least 1MiB (default 256MiB)")
		return DefaultMaxBuffered
	case n < body:
		d.errorf(c.get("max-buffered"), c.p("max-buffered"), "must hold at least one message at max-body (%d bytes): every body that long would be cut", body)
	}
	return n
}
