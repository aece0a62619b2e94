// Package httpsink replays raw HTTP/1.x requests to one or more targets,
// byte for byte: the bytes on the wire are the request bytes it is given,
// except the Host header's value, replaced by the target's host unless
// PreserveHost (or the request's KeepHost) is set (a minimal edit of that
// one line; a request without a Host header is sent without one), and,
// then too, the scheme and authority of an absolute-form request target.
// Responses are read by a small parser of its own (no net/http on the
// client side) over pooled keep-alive connections.
//
// Two models send the requests:
//
//   - closed (Config.Workers): a fixed pool of workers, each with one
//     keep-alive connection per target, takes requests from a bounded queue.
//     A request waits for a free worker, so the send rate follows the
//     target's latency. This is how `speed: max` measures what a target
//     takes. On Linux, with plain-TCP targets and no sessions, the workers
//     are slots of GOMAXPROCS epoll event loops (loop.go): no goroutine
//     parks and wakes per request. TLS targets and sessions use worker
//     goroutines.
//   - open (Config.Open): each request is sent when Send is called (the
//     pacer calls it at the request's scheduled instant) on an idle
//     connection, or on a new one when every connection is busy, up to
//     Config.MaxConnections (and the file-descriptor limit). Only when that
//     cap is reached does a request wait for a connection; it is then counted
//     as "pool-exhausted", and the wait shows as lateness. A slow target
//     therefore does not delay the schedule.
//
// In both models, Session keeps a recorded connection's requests in order on
// one replay connection. Results are counted in a few shards (no shared lock
// on the hot path) and merged by Summary.
package httpsink

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
	"github.com/replayctl/replayctl/stats"
)

// Modes for several targets.
const (
	ModeSingle = ""       // exactly one target
	ModeMirror = "mirror" // every request goes to every target
	ModeSplit  = "split"  // each connection (or request) goes to one target, by consistent hash
)

// Defaults.
const (
	DefaultWorkers = 16
	DefaultTimeout = 10 * time.Second
	// DefaultMaxConnections caps the open model's connections.
	DefaultMaxConnections = 10000
	// fdReserve is how many file descriptors the open model leaves to the
	// rest of the process (Kafka, files, the reference target).
	fdReserve = 128
	// maxSessions caps the open session connections per worker; past it the
	// least recently used one is closed.
	maxSessions = 64
)

// Target is one HTTP target. Only its URL's scheme, host and port are used:
// the request target (path) is the recorded one. Its timeout and TLS
// settings apply to it alone.
type Target struct {
	URL  *url.URL
	Name string // tags results; default URL.Host
	// Timeout bounds connecting to this target (dial + TLS) and,
	// separately, each request to it (write + full response); default
	// Config.Timeout.
	Timeout            time.Duration
	InsecureSkipVerify bool
	ServerName         string // TLS SNI and verified name; default the URL's host
	CAFile             string // PEM CA certificates trusted besides the system's
}

// Config configures a Sender.
type Config struct {
	Targets []Target
	Mode    string // "", "mirror" or "split"
	// Workers is the closed model's pool: concurrent requests (and
	// connections per target); default 16. Ignored when Open is set.
	Workers int
	// Open selects the open model: a request is sent as soon as Send is
	// called, on a new connection when all are busy.
	Open bool
	// MaxConnections caps the open model's connections (all targets and
	// sessions together); default 10 000, and never more than the
	// file-descriptor limit (raised to its hard limit) minus a reserve.
	MaxConnections int
	// MinConnections (open model) is how many connections to each target
	// Preconnect opens before the first request, and how many the pool
	// never closes for idling (as a connection pool's minimum idle, or k6's
	// preAllocatedVUs); one the target closes is not opened again ahead,
	// only when a request needs it. 0: connections open only as requests
	// need them.
	MinConnections int
	// Session sends all requests of one recorded ConnID, in order, over one
	// replay connection (per target).
	Session bool
	// PreserveHost keeps the recorded Host header.
	PreserveHost bool
	// Timeout is the timeout of the targets without one of their own
	// (Target.Timeout); default 10s.
	Timeout time.Duration
	// QueueSize bounds the requests waiting for a worker (backpressure);
	// default 4 × Workers.
	QueueSize int
	// KeepResponse puts the response bytes (status line, headers, body; at
	// most KeepLimit, default 1 MiB) in Result.Response.
	KeepResponse bool
	KeepLimit    int
	// OnResult receives every result. It is called from the worker
	// goroutines, concurrently: it must be safe for that, and quick.
	OnResult func(Result)
	// Stats configures the recorders behind Summary.
	Stats stats.Config
}

// Request is one request to replay.
type Request struct {
	// Raw is the request as it goes on the wire (Host aside). The sender
	// keeps it until the result is delivered: do not modify it after Send.
	Raw []byte
	// KeepHost sends Raw's Host as it is, as Config.PreserveHost does for
	// every request: its Host was set on purpose (a rewrite's set-host).
	KeepHost  bool
	ConnID    string // recorded connection: session routing and split hashing
	ID        string // message ID, copied to the result
	Scheduled time.Time
	Expected  *message.Message // recorded response, copied to the result
}

// Result is what happened to one request at one target.
type Result struct {
	stats.Result
	Target     string
	ID, ConnID string
	// Connect is the time spent opening a connection (dial + TLS) for this
	// request; 0 when a pooled connection was used. Latency excludes it.
	Connect time.Duration
	// Retried is set when a stale pooled connection failed before any
	// response byte and the request was sent again on a new connection.
	Retried bool
	// Response holds the response bytes when Config.KeepResponse is set;
	// ResponseTruncated when they were cut at KeepLimit.
	Response          []byte
	ResponseTruncated bool
	Expected          *message.Message
}

// Dropped reports whether the request was never sent: Stop dropped it from
// the queue (counted as dropped-on-stop, not as a request sent).
func (r *Result) Dropped() bool { return r.Start.IsZero() && errors.Is(r.Err, errStopped) }

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("http sink closed")

// ErrEmptyRequest is returned by Send for a request without bytes.
var ErrEmptyRequest = errors.New("empty request")

type target struct {
	name   string
	scheme string // "http" or "https": of an absolute-form request target
	addr   string // host:port to dial
	host   string // Host header value, and authority of an absolute-form request target
	// hostBytes is host as bytes, built once: the edit costs no conversion.
	hostBytes []byte
	tls       *tls.Config
	timeout   time.Duration // Target.Timeout or Config.Timeout
	seed      uint64
}

type job struct {
	req  Request
	info reqInfo
	t    int
}

// Sender sends requests through a pool of workers (closed model) or of
// connections opened on demand (open model). Send from any number of
// goroutines; Close once.
type Sender struct {
	cfg     Config
	targets []target
	dialer  net.Dialer
	shared  chan job   // closed model
	own     []chan job // closed model: per worker, session mode
	pool    *pool      // open model
	loops   []*evloop  // closed model on plain TCP without sessions
	lq      *jobQueue  // the loops' queue
	ctx     context.Context
	abort   context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool
	// stopped is set by Stop: requests not yet on the wire are dropped.
	stopped atomic.Bool

	shards []*shard

	invalid, skipped, queued, dropped atomic.Int64
}

// shard holds the counters and the recorder of some workers, so that
// results are counted without a lock shared by all of them.
type shard struct {
	rec *stats.Recorder // has its own lock, shared only within the shard

	sent, ok, errs, retries, bytesOut, bytesIn atomic.Int64
	classes                                    [8]atomic.Int64 // by stats.Classes index
	_                                          [64]byte        // keeps neighbours off this cache line
}

var _ sinks.Sink = (*Sender)(nil)

// New validates cfg, loads TLS material and starts the workers.
func New(cfg Config) (*Sender, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("http sink: no target")
	}
	switch cfg.Mode {
	case ModeSingle:
		if len(cfg.Targets) > 1 {
			return nil, fmt.Errorf("http sink: %d targets need mode %q or %q", len(cfg.Targets), ModeMirror, ModeSplit)
		}
	case ModeMirror, ModeSplit:
	default:
		return nil, fmt.Errorf("http sink: unknown mode %q (want %q or %q)", cfg.Mode, ModeMirror, ModeSplit)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4 * cfg.Workers
	}
	if cfg.KeepLimit <= 0 {
		cfg.KeepLimit = DefaultKeepLimit
	}
	if cfg.MaxConnections <= 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	// No dialer timeout: each dial's context carries its target's.
	s := &Sender{cfg: cfg, dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	names := map[string]bool{}
	cas := CAPools{}
	for i, t := range cfg.Targets {
		u := t.URL
		if u == nil || u.Host == "" {
			return nil, fmt.Errorf("http sink: target %d: URL with a host required", i)
		}
		tt := target{name: t.Name, scheme: strings.ToLower(u.Scheme), host: u.Host, hostBytes: []byte(u.Host), timeout: t.Timeout}
		if tt.timeout <= 0 {
			tt.timeout = cfg.Timeout
		}
		if tt.name == "" {
			tt.name = u.Host
		}
		if names[tt.name] {
			return nil, fmt.Errorf("http sink: two targets named %q", tt.name)
		}
		names[tt.name] = true
		port := u.Port()
		switch tt.scheme {
		case "http":
			if port == "" {
				port = "80"
			}
		case "https":
			if port == "" {
				port = "443"
			}
			roots, err := cas.Get(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("http sink: target %s: %w", tt.name, err)
			}
			tt.tls = &tls.Config{
				ServerName:         cmp.Or(t.ServerName, u.Hostname()),
				InsecureSkipVerify: t.InsecureSkipVerify,
				RootCAs:            roots,
				NextProtos:         []string{"http/1.1"},
				ClientSessionCache: tls.NewLRUClientSessionCache(0),
			}
		default:
			return nil, fmt.Errorf("http sink: target %s: scheme %q is not http or https", u.Redacted(), u.Scheme)
		}
		tt.addr = net.JoinHostPort(u.Hostname(), port)
		tt.seed = TargetSeed(tt.name)
		s.targets = append(s.targets, tt)
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	n := 4 * runtime.GOMAXPROCS(0)
	if !cfg.Open {
		n = min(n, cfg.Workers)
	}
	for range n {
		s.shards = append(s.shards, &shard{rec: stats.New(cfg.Stats)})
	}
	if cfg.Open {
		s.pool = newPool(s)
		return s, nil
	}
	s.shared = make(chan job, cfg.QueueSize)
	if s.useLoops() {
		s.lq = newJobQueue(cfg.QueueSize)
		if err := s.startLoops(); err != nil {
			return nil, err
		}
		return s, nil
	}
	if cfg.Session {
		s.own = make([]chan job, cfg.Workers)
		for i := range s.own {
			s.own[i] = make(chan job, max(cfg.QueueSize/cfg.Workers, 1))
		}
	}
	for i := range cfg.Workers {
		w := s.newWorker(i)
		w.br = bufio.NewReaderSize(nil, readBufSize)
		w.bw = bufio.NewWriterSize(nil, writeBufSize)
		var own chan job
		if s.own != nil {
			own = s.own[i]
		}
		s.wg.Go(func() { w.run(own) })
	}
	return s, nil
}

// Send queues req for the workers and returns; it blocks while the queue is
// full (backpressure) until ctx is done. With mode mirror the request is
// queued once per target.
func (s *Sender) Send(ctx context.Context, req Request) error {
	if len(req.Raw) == 0 {
		s.invalid.Add(1)
		return fmt.Errorf("http sink: request %q: %w", req.ID, ErrEmptyRequest)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.stopped.Load() {
		return fmt.Errorf("http sink: request %q: %w", req.ID, errStopped)
	}
	info := inspect(req.Raw)
	if s.cfg.PreserveHost || req.KeepHost {
		info.hostStart, info.hostEnd, info.absolute = -1, -1, false // nothing to retarget
	}
	if s.pool != nil {
		return s.sendOpen(ctx, req, info)
	}
	q := s.shared
	if s.own != nil && req.ConnID != "" {
		q = s.own[hashString(req.ConnID)%uint64(len(s.own))]
	}
	switch s.cfg.Mode {
	case ModeMirror:
		for t := range s.targets {
			if err := s.enqueue(ctx, q, s.job(req, info, t)); err != nil {
				return err
			}
		}
		return nil
	case ModeSplit:
		key := req.ConnID
		if key == "" {
			key = req.ID
		}
		return s.enqueue(ctx, q, s.job(req, info, s.pick(key)))
	}
	return s.enqueue(ctx, q, s.job(req, info, 0))
}

// job is req's job for target t. An absolute-form request (as proxies
// receive) whose Host is not kept gets, besides the target's Host, the
// target's scheme and authority in its request line, which is what a
// server goes by (RFC 9112 §3.2.2): edited in a copy, as set-host edits it
// (httpraw), since that form is rare. The origin-form requests, nearly
// all, only get the Host value replaced on the wire, uncopied.
func (s *Sender) job(req Request, info reqInfo, t int) job {
	if info.absolute {
		tg := &s.targets[t]
		if r, err := httpraw.ParseRequestHead(req.Raw); err == nil && r.Retarget(tg.scheme, tg.host) == nil {
			req.Raw = r.Bytes()
			info = inspect(req.Raw)
			info.hostStart, info.hostEnd, info.absolute = -1, -1, false // done
		}
	}
	return job{req: req, info: info, t: t}
}

func (s *Sender) enqueue(ctx context.Context, q chan job, j job) error {
	if s.lq != nil {
		if err := s.lq.put(ctx, j); err != nil {
			return fmt.Errorf("http sink: queue request %q: %w", j.req.ID, err)
		}
		s.queued.Add(1)
		s.wakeLoops()
		return nil
	}
	select {
	case q <- j:
		s.queued.Add(1)
		return nil
	default:
	}
	select {
	case q <- j:
		s.queued.Add(1)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("http sink: queue request %q: %w", j.req.ID, ctx.Err())
	}
}

// sendOpen dispatches req to the open model's pool, once per target with
// mode mirror.
func (s *Sender) sendOpen(ctx context.Context, req Request, info reqInfo) error {
	switch s.cfg.Mode {
	case ModeMirror:
		for t := range s.targets {
			if err := s.pool.dispatch(ctx, s.job(req, info, t)); err != nil {
				return err
			}
		}
		return nil
	case ModeSplit:
		key := req.ConnID
		if key == "" {
			key = req.ID
		}
		return s.pool.dispatch(ctx, s.job(req, info, s.pick(key)))
	}
	return s.pool.dispatch(ctx, s.job(req, info, 0))
}

// Preconnect opens Config.MinConnections connections to each target (open
// model; nothing otherwise) and waits until they are open or failed, or
// ctx ends. It returns how many are open and were asked for; err is the
// first failed dial (the connections that did open stay) or ctx's error.
// Call it before the first Send: a paced replay's first requests then find
// connections instead of each waiting for a dial.
func (s *Sender) Preconnect(ctx context.Context) (open, asked int, err error) {
	if s.pool == nil || s.cfg.MinConnections <= 0 {
		return 0, 0, nil
	}
	open, asked, err = s.pool.preconnect(ctx, s.cfg.MinConnections)
	if err != nil {
		err = fmt.Errorf("http sink: open %d connections per target ahead: %w", s.cfg.MinConnections, err)
	}
	return open, asked, err
}

// Stop makes the sender drop every request not yet on the wire: each counts
// as "dropped-on-stop" (not as sent) and is given to OnResult with class
// "canceled" and no Start; requests already sent still get their response,
// within their target's timeout. Sends after Stop fail. It is what an
// interrupt does: stop sending at once. Safe to call more than once and
// concurrently with Send.
func (s *Sender) Stop() {
	s.stopped.Store(true)
	if s.pool != nil {
		s.pool.stop()
	}
	s.kickLoops()
}

// useLoops tells whether the closed model runs on event loops: plain-TCP
// targets, no sessions (TLS and sessions keep the worker goroutines), and
// no KeepResponse: OnResult runs on the goroutine that read the answer, and
// a caller keeping responses does work there (a replay's compare: parses and
// diffs both bodies), which on a loop would delay every other request of
// that loop and inflate their latency.
func (s *Sender) useLoops() bool {
	if !loopSupported || s.cfg.Open || s.cfg.Session || s.cfg.KeepResponse {
		return false
	}
	for _, t := range s.targets {
		if t.tls != nil {
			return false
		}
	}
	return true
}

// pick chooses a target for key by rendezvous hashing: a key keeps its
// target while targets are added or removed elsewhere in the list.
func (s *Sender) pick(key string) int {
	return Rendezvous(key, len(s.targets), func(i int) uint64 { return s.targets[i].seed })
}

// CAPool returns the system roots plus the PEM certificates of file, or nil
// (the system roots) when file is empty.
func CAPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return roots, nil
}

// CAPools loads each CA file once, for the targets that share it.
type CAPools map[string]*x509.CertPool

// Get returns CAPool(file), loaded on the first call for file.
func (c CAPools) Get(file string) (*x509.CertPool, error) {
	if p, ok := c[file]; ok {
		return p, nil
	}
	p, err := CAPool(file)
	if err != nil {
		return nil, err
	}
	c[file] = p
	return p, nil
}

// TargetSeed is the rendezvous-hashing seed of a target's name.
func TargetSeed(name string) uint64 { return mix(hashString(name)) }

// Rendezvous returns which of n targets (their seeds from TargetSeed) key
// goes to: the highest score of key mixed with each seed. A key keeps its
// target while other targets come and go; the HTTP/2 sender uses it too.
func Rendezvous(key string, n int, seed func(i int) uint64) int {
	h := hashString(key)
	best, bestScore := 0, uint64(0)
	for i := range n {
		if sc := mix(h ^ seed(i)); i == 0 || sc > bestScore {
			best, bestScore = i, sc
		}
	}
	return best
}

// Write implements sinks.Sink: it sends a request message with Scheduled =
// now. Messages that are not requests are skipped and counted
// ("skipped-non-request").
func (s *Sender) Write(ctx context.Context, m *message.Message) error {
	if m.Kind != message.Request {
		s.skipped.Add(1)
		return nil
	}
	return s.Send(ctx, Request{Raw: bytes.Clone(m.Raw), ConnID: m.ConnID, ID: m.ID, Scheduled: time.Now()})
}

// Close stops accepting requests and waits until every queued and in-flight
// request has its result. If ctx ends first, queued requests are dropped
// with class "canceled" (in-flight ones end within their target's timeout)
// and Close returns ctx.Err() once the workers are done.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.pool != nil {
		s.pool.close()
	} else {
		close(s.shared)
		for _, q := range s.own {
			close(q)
		}
		if s.lq != nil {
			s.lq.close()
			s.kickLoops()
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		s.abort()
		return nil
	case <-ctx.Done():
		s.abort()
		<-done
		return fmt.Errorf("http sink: close: %w", ctx.Err())
	}
}

// Stats returns the counters: sent (results), ok, errors, retries,
// bytes-out, bytes-in, queued, invalid (empty requests refused by Send),
// skipped-non-request, dropped-on-stop, errors-<class> for each class seen,
// and for the open model max-connections (the effective cap),
// connections-peak, connections-opened, pool-exhausted (requests that
// waited for a connection because the cap was reached) and
// connections-bounded (requests that waited for a busy connection because
// the connections open were already what the schedule needs: see demand).
func (s *Sender) Stats() map[string]int64 {
	var sent, ok, errs, retries, out, in int64
	var classes [8]int64
	for _, sh := range s.shards {
		sent += sh.sent.Load()
		ok += sh.ok.Load()
		errs += sh.errs.Load()
		retries += sh.retries.Load()
		out += sh.bytesOut.Load()
		in += sh.bytesIn.Load()
		for i := range classes {
			classes[i] += sh.classes[i].Load()
		}
	}
	m := map[string]int64{
		"sent":                sent,
		"ok":                  ok,
		"errors":              errs,
		"retries":             retries,
		"bytes-out":           out,
		"bytes-in":            in,
		"queued":              s.queued.Load(),
		"invalid":             s.invalid.Load(),
		"skipped-non-request": s.skipped.Load(),
		"dropped-on-stop":     s.dropped.Load(),
	}
	for i, c := range stats.Classes {
		if classes[i] > 0 {
			m["errors-"+c] = classes[i]
		}
	}
	if p := s.pool; p != nil {
		p.mu.Lock()
		m["max-connections"] = int64(p.cap)
		m["connections-peak"] = int64(p.peak)
		if p.preOpen > 0 {
			m["connections-preopened"] = int64(p.preOpen)
		}
		p.mu.Unlock()
		m["connections-opened"] = p.opened.Load()
		m["pool-exhausted"] = p.exhausted.Load()
		m["connections-bounded"] = p.bounded.Load()
	}
	return m
}

// Summary merges the results recorded by every shard.
func (s *Sender) Summary() stats.Summary {
	return s.Recorder().Summary()
}

// Recorder returns a new recorder holding every result recorded so far
// (the shards merged, histograms bucket by bucket).
func (s *Sender) Recorder() *stats.Recorder {
	cfg := s.cfg.Stats
	for _, sh := range s.shards {
		if o := sh.rec.Origin(); !o.IsZero() && (cfg.Origin.IsZero() || o.Before(cfg.Origin)) {
			cfg.Origin = o
		}
	}
	out := stats.New(cfg)
	for _, sh := range s.shards {
		out.Merge(sh.rec)
	}
	return out
}

// finish classifies r's error, counts r in sh and hands it to OnResult.
func (s *Sender) finish(sh *shard, r *Result) {
	if r.Err != nil {
		r.ErrClass = stats.Classify(r.Err)
	}
	sh.count(r)
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(*r)
	}
}

func (sh *shard) count(r *Result) {
	sh.rec.Record(r.Result)
	sh.sent.Add(1)
	sh.bytesOut.Add(r.BytesOut)
	sh.bytesIn.Add(r.BytesIn)
	if r.Retried {
		sh.retries.Add(1)
	}
	if r.Err == nil {
		sh.ok.Add(1)
		return
	}
	sh.errs.Add(1)
	for i, c := range stats.Classes {
		if c == r.ErrClass || c == stats.ClassOther {
			sh.classes[i].Add(1)
			return
		}
	}
}

// fdLimit raises the soft limit of open files to the hard limit (Go does
// it at start-up too; this makes it explicit) and returns the soft limit,
// 0 if unknown.
func fdLimit() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	if lim.Cur > 1<<30 {
		return 1 << 30
	}
	return int(lim.Cur)
}

func hashString(s string) uint64 { // FNV-1a
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func mix(x uint64) uint64 { // splitmix64 finalizer
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
