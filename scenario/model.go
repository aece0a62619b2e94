package scenario

import (
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"

	"github.com/replayctl/replayctl/exprenv"
)

// Scenario is a loaded, validated scenario file. Maps are keyed by the YAML
// key; the *Names slices give the keys in file order.
type Scenario struct {
	// File is the scenario file as given; Dir is the absolute directory
	// relative paths are resolved against.
	File        string
	Dir         string
	Version     int
	Name        string
	Description string
	Vars        map[string]string
	Kafka       Kafka
	Topics      map[string]*Topic
	TopicNames  []string
	Windows     map[string]*Window
	WindowNames []string
	Targets     map[string]*Target
	TargetNames []string
	Safety      Safety
	Jobs        map[string]*Job
	JobNames    []string
	// Warnings are problems that do not make the scenario invalid: input
	// files and capture interfaces missing on this host (they may exist
	// where and when it runs), each at its position, message "warning: …".
	Warnings Diagnostics
	// EnvRefs are the env("NAME") calls with a literal name in the
	// scenario's expressions: a run refuses those in values its jobs send
	// whose variable is not set (env() of an unset variable is "").
	EnvRefs []EnvRef

	// envFile holds the --env-file variables, which env("NAME") reads
	// before the process environment, as ${NAME} does.
	envFile map[string]string
	// secrets are the values that ${NAME} references with a secret's name
	// (or vars: entries that read one) put into the scenario: MaskSecrets
	// hides them in what is printed about it.
	secrets []varValue
}

// LookupEnv looks a variable up as env("NAME") reads it when the scenario
// runs: the --env-file variables first, then the process environment.
func (s *Scenario) LookupEnv(name string) (string, bool) {
	if v, ok := s.envFile[name]; ok {
		return v, true
	}
	return os.LookupEnv(name)
}

// Getenv is LookupEnv without the flag: "" for a variable that is not set.
func (s *Scenario) Getenv(name string) string {
	v, _ := s.LookupEnv(name)
	return v
}

// EnvRef is one env("NAME") call in an expression of job Job. Value says
// it is in a value the job sends (a rewrite's value, sample.by), not in a
// condition (filter, if), where an unset variable may be meant.
type EnvRef struct {
	Name  string
	Job   string
	Pos   Pos
	Value bool
}

// Path is a file path from the scenario: Raw as written, Abs resolved against
// the scenario file's directory (or, for a path the scenario writes, the
// output directory). The zero Path means "not set".
type Path struct {
	Raw string
	Abs string
	// Root is the directory a contained path was checked to lie under: a
	// written one's (see Create), and, in a restricted scenario, a read
	// one's, which its reader opens through an os.Root on Root. Empty for
	// the paths an unrestricted scenario reads.
	Root string
}

// IsSet reports whether the path was given.
func (p Path) IsSet() bool { return p.Raw != "" }

// String returns the absolute path.
func (p Path) String() string { return p.Abs }

// Kafka is the kafka: section, defaults applied.
type Kafka struct {
	Pos Pos
	// Brokers is ["embedded"] (the default) or host:port addresses.
	Brokers []string
	// Embedded is true when Brokers is ["embedded"].
	Embedded     bool
	DataDir      Path   // unset: the engine uses .replayctl/data in the working directory
	ClientID     string // default "replayctl"
	Compression  string // none|gzip|snappy|lz4|zstd, default DefaultCompression
	CatalogTopic string // default "replayctl.windows"
	// DeliveryTimeout bounds how long a record job waits, once its source
	// ended, for its records to be acknowledged (default 30s).
	DeliveryTimeout time.Duration
	TLS             *TLS  // nil when absent
	SASL            *SASL // nil when absent
}

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool
	CAFile             Path
	CertFile           Path
	KeyFile            Path
	InsecureSkipVerify bool
	ServerName         string
}

// SASL configures SASL authentication to the brokers.
type SASL struct {
	Mechanism string // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512
	Username  string
	Password  string
}

// Topic is a topics: entry.
type Topic struct {
	Pos               Pos
	Key               string // the topics: key jobs and windows refer to
	Name              string // the Kafka topic name; defaults to Key
	Partitions        int32  // default 1
	ReplicationFactor int16  // default 1
	Create            bool   // create the topic when missing; default false
	Config            map[string]string
}

// WindowKind says how a window is declared.
type WindowKind string

// Window kinds.
const (
	WindowRecording WindowKind = "recording"
	WindowOffsets   WindowKind = "offsets"
	WindowTime      WindowKind = "time"
	WindowLast      WindowKind = "last"
)

// Window is a windows: entry: exactly one of Recording, Offsets, From(+To)
// or Last, as Kind says.
type Window struct {
	Pos           Pos
	Name          string
	Kind          WindowKind
	Topic         *Topic // nil only for a recording window without topic
	Recording     string
	Offsets       map[int32][2]int64 // partition -> [start, end); AllPartitions ("*") for every other partition
	From          *TimeSpec
	To            *TimeSpec // nil means now
	Last          time.Duration
	AllowPartial  bool
	OnlyRecording string
	// Reorder is the capture time held back to put messages in
	// capture-time order (nil: the source's default; 0: off).
	Reorder *time.Duration
}

// AllPartitions is the Offsets key written "*": the range applies to every
// partition of the topic not listed on its own (as GoReplay's single start
// and end offsets do).
const AllPartitions int32 = -1

// TimeSpec is a point in time: absolute (RFC 3339) or relative to the moment
// it is resolved ("now", "-15m", "now-2h", "+5m").
type TimeSpec struct {
	Raw      string
	Absolute bool
	Time     time.Time     // when Absolute
	Offset   time.Duration // from now, when not Absolute
}

// Resolve returns the time, relative specs counted from now.
func (t *TimeSpec) Resolve(now time.Time) time.Time {
	if t.Absolute {
		return t.Time
	}
	return now.Add(t.Offset)
}

// Target is a targets: entry (or an inline http sink url).
type Target struct {
	Pos                Pos
	Name               string
	URL                *url.URL
	Builtin            string        // "echo" for builtin:echo, else ""
	Timeout            time.Duration // default 10s
	InsecureSkipVerify bool
	ServerName         string
	CAFile             Path
	// Written is the url as written when a ${VAR} with a secret's name
	// (API_TOKEN) put its value in it: plans and reports print that
	// (Shown), never the value.
	Written string
}

// Shown is the target's URL as plans and reports print it: masked
// (MaskURL), and as written when a secret's value is in it.
func (t *Target) Shown() string {
	if t.Builtin != "" {
		return "builtin:" + t.Builtin
	}
	if t.Written != "" {
		return MaskURL(t.Written)
	}
	if t.URL == nil {
		return ""
	}
	return MaskURL(t.URL.String())
}

// Safety is the safety: section.
type Safety struct {
	DenyTargets       []string       // as written
	DenyPrefixes      []netip.Prefix // IPs and CIDRs among DenyTargets
	DenyHosts         []string       // host names among DenyTargets, lower case
	AllowCaptureHosts bool
}

// Denies reports whether host (a name or an IP, without port) is denied: an
// IP inside a denied prefix, or a name equal to a denied name or below it.
func (s Safety) Denies(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		for _, p := range s.DenyPrefixes {
			if p.Contains(ip) {
				return true
			}
		}
		return false
	}
	for _, h := range s.DenyHosts {
		if host == h || strings.HasSuffix(host, "."+h) {
			return true
		}
	}
	return false
}

// Job is a jobs: entry, defaults applied.
type Job struct {
	Pos         Pos
	Name        string
	Index       int // position in the file
	Description string
	Needs       []string
	Source      Source
	Filter      *Expr // bool, request env; nil when absent
	Sample      *Sample
	Redact      Redact
	Rewrite     []*Rewrite
	Sink        Sink
	Stop        Stop
	SaveWindow  string
	OnLoss      string // "fail" (default) or "warn": a record job's losses, a replay's requests dropped on errors
	Speed       Speed
	Rate        Rate
	Amplify     int // default 1
	Loop        Loop
	MaxGap      time.Duration // 0: no cap
	StartAt     *TimeSpec
	Compare     *Compare
	Report      Report
	Assert      []*Expr // bool, summary env
}

// SourceKind names a source.
type SourceKind string

// Source kinds.
const (
	SourceCapture SourceKind = "capture"
	SourcePcap    SourceKind = "pcap"
	SourceGor     SourceKind = "gor"
	SourceWindow  SourceKind = "window"
)

// Source is a job's source: Kind says which field is set.
type Source struct {
	Pos     Pos
	Kind    SourceKind
	Capture *CaptureSource
	Pcap    *PcapSource
	Gor     *GorSource
	// Window is the window: value; WindowRef is the windows: entry it names,
	// or nil when it names a saved recording.
	Window    string
	WindowRef *Window
}

// CaptureSource captures live from an interface.
type CaptureSource struct {
	Interface   string
	Ports       []int
	Hosts       []string
	Responses   bool
	Snaplen     int   // default 262144
	RingSize    int64 // bytes, default 64MiB
	Promiscuous bool
	MaxBody     int64  // bytes, 0: unlimited
	MaxBuffered int64  // bytes of messages in progress held at once, default 256MiB
	Decap       string // "auto" (default: tunnels are opened) or "off"
}

// PcapSource reads a pcap or pcapng file.
type PcapSource struct {
	Path        Path
	Ports       []int
	Responses   bool
	MaxBody     int64
	MaxBuffered int64  // bytes of messages in progress held at once, default 256MiB
	Decap       string // "auto" (default) or "off"
}

// GorSource reads a GoReplay .gor file.
type GorSource struct {
	Path Path
}

// SinkKind names a sink.
type SinkKind string

// Sink kinds.
const (
	SinkKafka  SinkKind = "kafka"
	SinkHTTP   SinkKind = "http"
	SinkGor    SinkKind = "gor"
	SinkStdout SinkKind = "stdout"
)

// Sink is a job's sink: Kind says which field is set.
type Sink struct {
	Pos    Pos
	Kind   SinkKind
	Kafka  *KafkaSink
	HTTP   *HTTPSink
	Gor    *GorSink
	Stdout *StdoutSink
}

// KafkaSink writes to a topics: entry.
type KafkaSink struct {
	Topic       *Topic
	Compression string // defaults to kafka.compression
	Spool       Spool
}

// Spool is a kafka sink's disk spool.
type Spool struct {
	Dir      Path  // contained like a written path (Root set); unset: the engine's default (spool/ under the data dir)
	MaxBytes int64 // default DefaultSpoolBytes
}

// DefaultSpoolBytes is the default bound of a kafka sink's spool.
const DefaultSpoolBytes = 1 << 30

// DefaultDeliveryTimeout is the default of kafka.delivery-timeout.
const DefaultDeliveryTimeout = 30 * time.Second

// DefaultCompression is kafka.compression when unset: lz4 costs a live
// capture about 1 µs less CPU per request than zstd (the profile of
// capture → Kafka put zstd at a fifth of the process), for batches about
// 1.5× larger on the broker.
const DefaultCompression = "lz4"

// HTTPSink sends requests to HTTP targets.
type HTTPSink struct {
	// Targets are the resolved targets: one for target: or url:, several for
	// targets:. An url: target is named by its URL.
	Targets []*Target
	Mode    string // "mirror" (default: every target gets every request) or "split"
	// Workers is the closed model's pool (default 32). A paced replay uses
	// the open model unless workers is given (WorkersSet); speed max uses
	// the closed model.
	Workers    int
	WorkersSet bool
	// MaxConnections caps the open model's connections (default 10000).
	MaxConnections    int
	MaxConnectionsSet bool
	// MinConnections (open model): connections opened to each target
	// before the first request and never closed for idling.
	MinConnections int
	Session        bool
	PreserveHost   bool
	Timeout        time.Duration // 0: each target's own timeout
	// Protocol is ProtocolAuto (default), ProtocolHTTP1 or ProtocolH2.
	Protocol   string
	MaxStreams int // HTTP/2 streams at once per connection; default 100
}

// HTTP sink protocols: auto sends requests captured from HTTP/2 over
// HTTP/2 and the others over HTTP/1.x; http1 and h2 send all over one.
const (
	ProtocolAuto  = "auto"
	ProtocolHTTP1 = "http1"
	ProtocolH2    = "h2"
)

// GorSink writes a .gor file.
type GorSink struct {
	Path Path
}

// StdoutSink prints messages.
type StdoutSink struct {
	Format string // payload (default) | summary
}

// Expr is a compiled expression with its source and position.
type Expr struct {
	Source  string
	Program *vm.Program
	Pos     Pos
	// Written is the expression as written, when a ${VAR} with a secret's
	// name (SecretName: API_TOKEN, DB_PASSWORD) put its value in Source:
	// plans print that (Shown), never the value.
	Written string
	// published is an assert expression with its parts that read a
	// secret evaluated (Published); publishErr says why it has none.
	published  string
	publishErr error
}

// errNoTemplate: the secrets' places in an expression were not found.
var errNoTemplate = fmt.Errorf("where its secrets stand in it was not found: %w", exprenv.ErrNotFoldable)

// Published is an assert expression as a run publishes it for a merge to
// evaluate on merged totals: Source when no secret's value went into it
// (a ${VAR} with a secret's name, or a vars: entry that reads one), else
// Source with each part that reads a secret evaluated to its outcome, true
// or false (exprenv.FoldSecrets): "${API_TOKEN}" != "" && requests.sent > 0
// is published as true && requests.sent > 0, never with the value. The
// error (exprenv.ErrNotFoldable) says why an expression has no such form: a
// secret reaches the summary's values as a number or text
// (requests.sent >= len("${API_TOKEN}")).
func (e *Expr) Published() (string, error) {
	if e.Written == "" {
		return e.Source, nil
	}
	return e.published, e.publishErr
}

// Shown is the expression as plans print it: Source, or Written when a
// secret's value is in Source.
func (e *Expr) Shown() string {
	if e.Written != "" {
		return e.Written
	}
	return e.Source
}

// Sample keeps a consistent-hash sample of requests.
type Sample struct {
	Percent float64 // (0, 100]
	By      *Expr   // string, request env; nil: hash the connection ID
}

// Redact says what to redact before data leaves the host. Every job has one;
// without a redact: block it is the defaults (Defaults true, mask mode).
type Redact struct {
	Defaults    bool // redact DefaultRedactHeaders (also in chunked trailers) and redact.DefaultNames (query, form, JSON members); default true
	Headers     []string
	Query       []string
	Form        []string
	JSON        []string
	Patterns    []*regexp.Regexp
	PatternsRaw []string
	Mode        string // mask (default) | hash
	Mask        string // default "REDACTED"
	Key         string // HMAC key for hash mode
}

// DefaultRedactHeaders are redacted when Redact.Defaults is true.
var DefaultRedactHeaders = []string{"Authorization", "Cookie", "Set-Cookie", "Proxy-Authorization", "X-Api-Key"}

// RewriteAction names a rewrite.
type RewriteAction string

// Rewrite actions.
const (
	SetHeader    RewriteAction = "set-header"
	RemoveHeader RewriteAction = "remove-header"
	SetMethod    RewriteAction = "set-method"
	SetPath      RewriteAction = "set-path"
	// SetURL replaces the request target: path and query.
	SetURL RewriteAction = "set-url"
	// SetQueryString replaces the whole query string ("" removes it).
	SetQueryString RewriteAction = "set-query-string"
	SetQuery       RewriteAction = "set-query"
	RemoveQuery    RewriteAction = "remove-query"
	SetHost        RewriteAction = "set-host"
	SetJSON        RewriteAction = "set-json"
	RemoveJSON     RewriteAction = "remove-json"
	Drop           RewriteAction = "drop"
)

// Rewrite is one rewrite step.
type Rewrite struct {
	Pos    Pos
	Action RewriteAction
	// Name is the header or query parameter name (set-/remove-header,
	// set-/remove-query).
	Name string
	// JSONPath is the JSON path of set-json and remove-json.
	JSONPath string
	// Value computes the new value: a string for set-header, set-method,
	// set-path, set-query and set-host; any value for set-json; the bool
	// condition for drop. Nil for remove-*.
	Value *Expr
	// If, when set, applies the step only where it is true.
	If *Expr
}

// Stop ends a job; zero fields are unlimited.
type Stop struct {
	After    time.Duration
	Requests int64
}

// Speed is the replay speed: Max sends as fast as possible, otherwise
// Factor multiplies the recorded pace (default 1).
type Speed struct {
	Max    bool
	Factor float64
}

// Rate caps the request rate; zero PerSecond means no cap.
type Rate struct {
	PerSecond float64
}

// Loop repeats a replay Count times (default 1), or for a duration when For
// is set.
type Loop struct {
	Count int
	For   time.Duration
}

// Compare compares replayed responses with the recorded ones.
type Compare struct {
	Status    bool
	Headers   []string
	Body      bool
	Ignore    []string // JSON paths
	Tolerance float64
	// Noise, when set, replays to a second (reference) target to learn
	// which differences are noise.
	Noise *Target
	// GRPCDescriptors (grpc: {descriptors: FILE}) is a protobuf descriptor
	// set: gRPC bodies are compared as JSON.
	GRPCDescriptors Path
}

// Report names the report files; zero Paths mean none.
type Report struct {
	JSON Path
	HTML Path
}

// WrittenFiles are the files the job writes, those set: its gor sink's
// file and its reports. (A kafka sink's spool writes under a directory of
// its recording's own.)
func (j *Job) WrittenFiles() []Path {
	var out []Path
	if j.Sink.Gor != nil && j.Sink.Gor.Path.IsSet() {
		out = append(out, j.Sink.Gor.Path)
	}
	for _, p := range []Path{j.Report.JSON, j.Report.HTML} {
		if p.IsSet() {
			out = append(out, p)
		}
	}
	return out
}
