package gorimport

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replayctl/replayctl/scenario"
)

// flagKind says how a gor flag takes its value, as Go's flag package does.
type flagKind int

const (
	valueFlag    flagKind = iota // -name value, -name=value
	boolFlag                     // -name, -name=true|false (never -name false)
	optionalFlag                 // a bool in old gor, an int in new: -name, -name=v, -name v when v is no flag
)

// flagSpec is one gor flag that the importer knows: how it is parsed and
// what it sets. apply receives the value ("true"/"false" for bool flags).
type flagSpec struct {
	kind  flagKind
	apply func(c *conv, name, value string) error
}

// ignored returns a spec for a gor flag replayctl does not map: it records
// a warning naming the flag, its value and why.
func ignored(kind flagKind, why string) flagSpec {
	return flagSpec{kind: kind, apply: func(c *conv, name, value string) error {
		switch {
		case kind == boolFlag:
			c.warnf("--%s=%s not mapped: %s", name, value, why)
		case kind == optionalFlag && value == "":
			c.warnf("--%s not mapped: %s", name, why)
		default:
			c.warnf("--%s %q not mapped: %s", name, value, why)
		}
		return nil
	}}
}

// flags lists the gor flags the importer knows, by name without dashes.
// Names, kinds and meanings follow GoReplay's settings.go (1.x); the Kafka
// offset flags come from forks that added them.
var flags map[string]flagSpec

func init() {
	str := func(f func(c *conv, name, v string) error) flagSpec { return flagSpec{valueFlag, f} }
	boolean := func(f func(c *conv, name string, b bool) error) flagSpec {
		return flagSpec{boolFlag, func(c *conv, name, v string) error { return f(c, name, v == "true") }}
	}
	flags = map[string]flagSpec{
		// general
		"exit-after": str(func(c *conv, name, v string) error {
			d, err := parseGoDuration(name, v)
			if raw, _ := time.ParseDuration(strings.TrimSpace(v)); err == nil && raw < 0 {
				// gor stops only after a positive one, as after none.
				c.warnf("--%s %q not mapped: gor never stops on a negative duration; no stop: is written", name, v)
			}
			c.exitAfter = d
			return err
		}),
		"split-output":           boolean(func(c *conv, _ string, b bool) error { c.split = b; return nil }),
		"recognize-tcp-sessions": boolean(func(c *conv, _ string, b bool) error { c.session = b; return nil }),
		"verbose":                ignored(optionalFlag, "diagnostics; `replayctl run -v` logs progress and counters while running"),
		"debug":                  ignored(boolFlag, "diagnostics; `replayctl run -v` logs progress and counters while running"),
		"stats":                  ignored(boolFlag, "replayctl prints a summary per job; add report: {json: FILE} for details"),
		"http-pprof":             ignored(valueFlag, "profiling endpoint not supported"),
		"copy-buffer-size":       ignored(valueFlag, "replayctl has no per-message copy buffer; capture max-body limits bodies"),
		"prettify-http":          ignored(boolFlag, "gor decodes chunked and gzip-encoded bodies before every output; replayctl sends and saves the bytes as captured, as the client sent them"),
		"middleware":             ignored(valueFlag, "external middleware is not supported; use filter:, rewrite: and redact: instead"),

		// inputs
		"input-raw": str(func(c *conv, name, v string) error {
			addr, lim, err := splitLimit(name, v)
			c.raws = append(c.raws, rawInput{addr: addr, lim: lim})
			return err
		}),
		"input-raw-track-response":   boolean(func(c *conv, _ string, b bool) error { c.rawTrack = b; return nil }),
		"input-raw-override-snaplen": boolean(func(c *conv, _ string, b bool) error { c.rawSnap = b; return nil }),
		"input-raw-promisc":          boolean(func(c *conv, _ string, b bool) error { c.rawPromisc = b; return nil }),
		"input-raw-buffer-size": str(func(c *conv, name, v string) error {
			n, err := parseGorSize(v)
			if err != nil {
				return fmt.Errorf("--%s %q: %w", name, v, err)
			}
			c.rawBuffer = n
			return nil
		}),
		"input-raw-engine": str(func(c *conv, name, v string) error {
			switch v {
			case "libpcap", "pcap", "raw_socket", "af_packet", "pcap_file", "":
				c.rawEngine = v
			default:
				c.rawEngine = v
				c.warnf("--%s %q not mapped: replayctl captures with AF_PACKET or reads pcap files", name, v)
			}
			return nil
		}),
		"input-raw-protocol": str(func(c *conv, name, v string) error {
			if v != "http" {
				c.warnf("--%s %q not mapped: replayctl captures HTTP/1.x only", name, v)
			}
			return nil
		}),
		"input-raw-bpf-filter":       ignored(valueFlag, "replayctl builds its own BPF filter from ports and hosts; express the rest as filter:"),
		"input-raw-realip-header":    ignored(valueFlag, "not supported; the client address is kept in each message (req.src)"),
		"input-raw-expire":           ignored(valueFlag, "replayctl's TCP reassembly has its own timeouts"),
		"input-raw-timestamp-type":   ignored(valueFlag, "replayctl uses kernel packet timestamps"),
		"input-raw-immediate-mode":   ignored(boolFlag, "AF_PACKET capture needs no immediate mode"),
		"input-raw-buffer-timeout":   ignored(valueFlag, "AF_PACKET capture has no pcap buffer timeout"),
		"input-raw-monitor":          ignored(boolFlag, "RF monitor mode is not supported"),
		"input-raw-stats":            ignored(boolFlag, "replayctl counts capture drops in the job summary"),
		"input-raw-allow-incomplete": ignored(boolFlag, "replayctl never records incomplete messages; it counts them"),
		"input-raw-max-wait":         ignored(valueFlag, "applies to file replays only; see max-gap"),

		"input-file": str(func(c *conv, name, v string) error {
			path, lim, err := splitLimit(name, v)
			if err == nil {
				path, err = filePath(name, path)
			}
			c.files = append(c.files, fileInput{path: path, lim: lim})
			return err
		}),
		"input-file-loop": boolean(func(c *conv, _ string, b bool) error { c.fileLoop = b; return nil }),
		"input-file-max-wait": str(func(c *conv, name, v string) error {
			d, err := c.duration(name, v)
			c.fileMaxWait = d
			return err
		}),
		"input-file-read-depth": ignored(valueFlag, "replayctl orders messages by capture time without a read-ahead setting"),
		"input-file-dry-run":    ignored(boolFlag, "use `replayctl validate` (or stdout: {format: summary}) to preview"),

		"input-kafka-host":        str(func(c *conv, _, v string) error { c.kin.host = v; return nil }),
		"input-kafka-topic":       str(func(c *conv, _, v string) error { c.kin.topic = v; return nil }),
		"input-kafka-json-format": boolean(func(c *conv, _ string, b bool) error { c.kin.json = b; return nil }),
		"input-kafka-start-offset": str(func(c *conv, name, v string) error {
			n, err := parseOffset(name, v)
			c.kin.start = &n
			return err
		}),
		"input-kafka-end-offset": str(func(c *conv, name, v string) error {
			n, err := parseOffset(name, v)
			c.kin.end = &n
			return err
		}),

		"input-tcp":                 ignored(valueFlag, "gor-to-gor forwarding is not supported; share recordings through Kafka windows"),
		"input-tcp-secure":          ignored(boolFlag, "gor-to-gor forwarding is not supported"),
		"input-tcp-certificate":     ignored(valueFlag, "gor-to-gor forwarding is not supported"),
		"input-tcp-certificate-key": ignored(valueFlag, "gor-to-gor forwarding is not supported"),
		"input-http":                ignored(valueFlag, "an HTTP listener input is not supported"),
		"input-dummy":               ignored(valueFlag, "a dummy input is not supported"),

		// outputs
		"output-http": str(func(c *conv, name, v string) error {
			u, lim, err := splitLimit(name, v)
			c.https = append(c.https, limited{value: u, lim: lim})
			return err
		}),
		"output-http-workers": str(func(c *conv, name, v string) error {
			n, err := parseInt(name, v)
			c.workers = n
			return err
		}),
		"output-http-timeout": str(func(c *conv, name, v string) error {
			d, err := c.duration(name, v)
			c.timeout = d
			return err
		}),
		"output-http-track-response": boolean(func(c *conv, _ string, b bool) error { c.trackResp = b; return nil }),
		"http-original-host":         boolean(func(c *conv, _ string, b bool) error { c.originalHost = b; return nil }),
		"output-http-skip-verify":    boolean(func(c *conv, _ string, b bool) error { c.skipVerify = b; return nil }),
		"output-http-workers-min": str(func(c *conv, name, v string) error {
			n, err := parseInt(name, v)
			c.workersMin = n
			return err
		}),
		"output-http-worker-timeout": ignored(valueFlag, "replayctl retires no idle workers: a paced replay opens connections as its schedule needs them (open model, up to max-connections), a speed max one keeps a fixed pool of workers busy"),
		"output-http-queue-len":      ignored(valueFlag, "replayctl schedules every request; lateness is reported instead of queueing"),
		"output-http-redirects":      ignored(valueFlag, "replayctl never follows redirects; the status is recorded"),
		"output-http-response-buffer": ignored(valueFlag,
			"replayctl reads whole responses"),
		"output-http-compatibility-mode": ignored(boolFlag, "replayctl sends the recorded bytes with its own client"),
		"output-http-stats":              ignored(boolFlag, "replayctl prints a summary per job; add report: {json: FILE} for details"),
		"output-http-stats-ms":           ignored(valueFlag, "replayctl prints a summary per job"),
		"output-http-debug":              ignored(boolFlag, "diagnostics; `replayctl run -v` logs progress and counters while running"),
		"output-http-elasticsearch":      ignored(valueFlag, "ElasticSearch export is not supported; use report: {json: FILE}"),

		"output-file": str(func(c *conv, name, v string) error {
			p, lim, err := splitLimit(name, v)
			if err == nil {
				p, err = filePath(name, p)
			}
			c.outFiles = append(c.outFiles, limited{value: p, lim: lim})
			return err
		}),
		"output-file-append": boolean(func(c *conv, name string, b bool) error {
			if b {
				c.warnf("--%s not mapped: the gor sink overwrites its file at each run (what gor appended to is lost): give each run its own file (requests_1.gor, requests_2.gor, …) and read them back together with a glob (gor: {path: 'requests_*.gor'})", name)
			}
			return nil
		}),
		"output-file-flush-interval": ignored(valueFlag, "the gor sink flushes on its own schedule and at the end"),
		"output-file-size-limit":     ignored(valueFlag, "the gor sink writes one file without chunks"),
		"output-file-queue-limit":    ignored(valueFlag, "the gor sink writes one file without chunks"),
		"output-file-max-size-limit": ignored(valueFlag, "the gor sink has no size limit; use stop: {requests: N}"),
		"output-file-buffer":         ignored(valueFlag, "cloud storage outputs are not supported"),

		"output-stdout": boolean(func(c *conv, _ string, b bool) error { c.stdout = b; return nil }),
		"output-null":   boolean(func(c *conv, _ string, b bool) error { c.null = b; return nil }),
		"output-dummy":  ignored(valueFlag, "deprecated in gor; use --output-stdout"),

		"output-kafka-host":        str(func(c *conv, _, v string) error { c.kout.host = v; return nil }),
		"output-kafka-topic":       str(func(c *conv, _, v string) error { c.kout.topic = v; return nil }),
		"output-kafka-json-format": boolean(func(c *conv, _ string, b bool) error { c.kout.json = b; return nil }),
		"kafka-tls-ca-cert":        str(func(c *conv, _, v string) error { c.tls.ca = v; return nil }),
		"kafka-tls-client-cert":    str(func(c *conv, _, v string) error { c.tls.cert = v; return nil }),
		"kafka-tls-client-key":     str(func(c *conv, _, v string) error { c.tls.key = v; return nil }),

		"output-tcp":        ignored(valueFlag, "gor-to-gor forwarding is not supported; share recordings through Kafka windows"),
		"output-tcp-secure": ignored(boolFlag, "gor-to-gor forwarding is not supported"),
		"output-tcp-skip-verify": ignored(boolFlag,
			"gor-to-gor forwarding is not supported"),
		"output-tcp-sticky":          ignored(boolFlag, "gor-to-gor forwarding is not supported"),
		"output-tcp-workers":         ignored(valueFlag, "gor-to-gor forwarding is not supported"),
		"output-tcp-stats":           ignored(boolFlag, "gor-to-gor forwarding is not supported"),
		"output-tcp-response-buffer": ignored(valueFlag, "binary outputs are not supported"),
		"output-binary":              ignored(valueFlag, "binary (non-HTTP) protocols are not supported"),
		"output-binary-workers":      ignored(valueFlag, "binary (non-HTTP) protocols are not supported"),
		"output-binary-timeout":      ignored(valueFlag, "binary (non-HTTP) protocols are not supported"),
		"output-binary-track-response": ignored(boolFlag,
			"binary (non-HTTP) protocols are not supported"),
		"output-binary-debug": ignored(boolFlag, "binary (non-HTTP) protocols are not supported"),
		"output-firehose":     ignored(valueFlag, "AWS Firehose output is not supported"),

		// request modifiers
		"http-allow-method":      str(func(c *conv, _, v string) error { c.methods = append(c.methods, v); return nil }),
		"http-allow-url":         str(func(c *conv, name, v string) error { return c.addRegexp(&c.allowURL, name, v) }),
		"http-disallow-url":      str(func(c *conv, name, v string) error { return c.addRegexp(&c.disallowURL, name, v) }),
		"http-allow-header":      str(func(c *conv, name, v string) error { return c.addHeaderFilter(&c.allowHeader, name, v) }),
		"http-disallow-header":   str(func(c *conv, name, v string) error { return c.addHeaderFilter(&c.disallowHeader, name, v) }),
		"http-basic-auth-filter": str(func(c *conv, name, v string) error { return c.addRegexp(&c.basicAuth, name, v) }),
		"http-set-header": str(func(c *conv, name, v string) error {
			k, val, ok := strings.Cut(v, ":")
			k, val = strings.TrimSpace(k), strings.TrimSpace(val)
			if !ok || k == "" {
				return fmt.Errorf("--%s %q: want 'Name: value'", name, v)
			}
			if err := checkHeaderName(name, v, k); err != nil {
				return err
			}
			c.setHeaders = append(c.setHeaders, nameValue{k, val})
			return nil
		}),
		"http-set-param": str(func(c *conv, name, v string) error {
			k, val, ok := strings.Cut(v, "=")
			k, val = strings.TrimSpace(k), strings.TrimSpace(val)
			if !ok || k == "" {
				return fmt.Errorf("--%s %q: want 'name=value'", name, v)
			}
			c.setParams = append(c.setParams, nameValue{k, val})
			return nil
		}),
		"http-rewrite-url":    str(func(c *conv, name, v string) error { return c.addURLRewrite(name, v) }),
		"http-rewrite-header": str(func(c *conv, name, v string) error { return c.addHeaderRewrite(name, v) }),
		"http-header-limiter": str(func(c *conv, name, v string) error { return c.addLimiter(name, v, false) }),
		"http-param-limiter":  str(func(c *conv, name, v string) error { return c.addLimiter(name, v, true) }),
	}
	// Deprecated gor aliases.
	for alias, name := range deprecatedFlags {
		flags[alias] = flags[name]
	}
}

// parseArgs walks args the way Go's flag package does: -name or --name,
// -name=value, -name value for value flags, bool flags without a value.
// Parsing stops at the first argument that is not a flag (gor ignores the
// rest, so they are reported) and after "--". Unknown flags are reported as
// warnings with their value; a value flag without a value is an error.
func (c *conv) parseArgs(args []string) error {
	for i := 0; i < len(args); {
		s := args[i]
		if len(s) < 2 || s[0] != '-' {
			c.warnf("argument %q is not a flag: gor stops reading flags there, so it and the %d argument(s) after it were ignored", s, len(args)-i-1)
			return nil
		}
		minuses := 1
		if s[1] == '-' {
			minuses = 2
			if len(s) == 2 { // "--" ends the flags
				if rest := args[i+1:]; len(rest) > 0 {
					c.warnf("arguments after \"--\" were ignored (gor reads no positional arguments): %s", shellJoin(rest))
				}
				return nil
			}
		}
		name := s[minuses:]
		if name == "" || name[0] == '-' || name[0] == '=' {
			return fmt.Errorf("bad flag syntax: %s", s)
		}
		i++
		name, value, hasValue := strings.Cut(name, "=")
		spec, known := flags[name]
		if !known {
			if !hasValue && i < len(args) && !strings.HasPrefix(args[i], "-") {
				value, hasValue = args[i], true
				i++
			}
			hint := ""
			if near := scenario.Suggest(name, flagNames()); near != "" {
				hint = " (did you mean --" + near + "?)"
			} else if wider := flagsWithWords(name); len(wider) > 0 {
				hint = " (did you mean --" + strings.Join(wider, ", --") + "?)"
			}
			if hasValue {
				c.noteSecret(name, value)
				c.warnf("unknown gor flag --%s %q not mapped%s", name, value, hint)
			} else {
				c.warnf("unknown gor flag --%s not mapped%s", name, hint)
			}
			continue
		}
		if spec.kind == boolFlag {
			b := true
			if hasValue {
				v, err := strconv.ParseBool(value)
				if err != nil {
					return fmt.Errorf("invalid boolean value %q for --%s", value, name)
				}
				b = v
			}
			value = strconv.FormatBool(b)
		} else if spec.kind == optionalFlag {
			if !hasValue && i < len(args) && !strings.HasPrefix(args[i], "-") {
				value = args[i]
				i++
			}
		} else if !hasValue {
			if i >= len(args) {
				return fmt.Errorf("flag needs an argument: --%s", name)
			}
			value = args[i]
			i++
		}
		c.noteSecret(name, value)
		if err := spec.apply(c, name, value); err != nil {
			return err
		}
	}
	return nil
}

// flagNames is every gor flag the converter knows, sorted.
func flagNames() []string {
	names := make([]string, 0, len(flags))
	for name := range flags {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// deprecatedFlags are gor's deprecated aliases, and the flags they stand
// for.
var deprecatedFlags = map[string]string{
	"output-http-header":             "http-set-header",
	"output-http-method":             "http-allow-method",
	"output-http-url-regexp":         "http-allow-url",
	"output-http-rewrite-url":        "http-rewrite-url",
	"output-http-header-filter":      "http-allow-header",
	"output-http-header-hash-filter": "http-header-limiter",
}

// flagsWithWords are the gor flags (deprecated aliases aside, three at
// most, the shortest first) whose dash-separated words include all of
// name's: --http-header finds --http-set-header, a wiki's older name.
func flagsWithWords(name string) []string {
	words := strings.Split(name, "-")
	var out []string
	for _, f := range flagNames() {
		if _, alias := deprecatedFlags[f]; alias {
			continue
		}
		have := strings.Split(f, "-")
		if len(have) > len(words) && !slices.ContainsFunc(words, func(w string) bool { return !slices.Contains(have, w) }) {
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(len(a), len(b)) })
	return out[:min(len(out), 3)]
}
