// Package httpsink replays raw HTTP/1.x requests to one or more targets,
// byte for byte: the bytes on the wire are the request bytes it is given,
// except the Host header's value, replaced by the target's host unless
// PreserveHost is set (a minimal edit of that one line; a request without a
// Host header is sent unchanged). Responses are read by a small parser of its
// own (no net/http on the client side) over pooled keep-alive connections.
package httpsink

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
	// maxSessions caps the open session connections per worker; past it the
	// least recently used one is closed.
	maxSessions = 64
)

// Target is one HTTP target. Only its scheme, host and port are used: the
// request target (path) is the recorded one.
type Target struct {
	URL  *url.URL
	Name string // tags results; default URL.Host
}

// Config configures a Sender.
type Config struct {
	Targets []Target
	Mode    string // "", "mirror" or "split"
	Workers int    // concurrent requests (and connections per target); default 16
	// Session sends all requests of one recorded ConnID, in order, over one
	// replay connection (per target).
	Session bool
	// PreserveHost keeps the recorded Host header.
	PreserveHost bool
	// Timeout bounds connecting (dial + TLS) and, separately, each request
	// (write + full response); default 10s.
	Timeout            time.Duration
	InsecureSkipVerify bool
	ServerName         string // TLS SNI and verified name; default the target URL's host
	CAFile             string // PEM CA certificates trusted besides the system's
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
}

// Request is one request to replay.
type Request struct {
	// Raw is the request as it goes on the wire (Host aside). The sender
	// keeps it until the result is delivered: do not modify it after Send.
	Raw       []byte
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

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("http sink closed")

// ErrEmptyRequest is returned by Send for a request without bytes.
var ErrEmptyRequest = errors.New("empty request")

type target struct {
	name string
	addr string // host:port to dial
	host string // Host header value
	tls  *tls.Config
	seed uint64
}

type job struct {
	req  Request
	info reqInfo
	t    int
}

// Sender sends requests through a pool of workers. Send from any number of
// goroutines; Close once.
type Sender struct {
	cfg     Config
	targets []target
	dialer  net.Dialer
	shared  chan job
	own     []chan job // per worker, session mode
	ctx     context.Context
	abort   context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool

	sent, ok, errs, retries, bytesOut, bytesIn, invalid, skipped, queued atomic.Int64
	classes                                                              [8]atomic.Int64 // by stats.Classes index

	// dropping (DropQueued): the workers drop what is still queued.
	dropping      atomic.Bool
	droppedQueued atomic.Int64
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
	var roots *x509.CertPool
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("http sink: read CA file: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("http sink: CA file %s holds no PEM certificate", cfg.CAFile)
		}
	}
	s := &Sender{cfg: cfg, dialer: net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}}
	names := map[string]bool{}
	for i, t := range cfg.Targets {
		u := t.URL
		if u == nil || u.Host == "" {
			return nil, fmt.Errorf("http sink: target %d: URL with a host required", i)
		}
		tt := target{name: t.Name, host: u.Host}
		if tt.name == "" {
			tt.name = u.Host
		}
		if names[tt.name] {
			return nil, fmt.Errorf("http sink: two targets named %q", tt.name)
		}
		names[tt.name] = true
		port := u.Port()
		switch strings.ToLower(u.Scheme) {
		case "http":
			if port == "" {
				port = "80"
			}
		case "https":
			if port == "" {
				port = "443"
			}
			sni := cfg.ServerName
			if sni == "" {
				sni = u.Hostname()
			}
			tt.tls = &tls.Config{
				ServerName:         sni,
				InsecureSkipVerify: cfg.InsecureSkipVerify,
				RootCAs:            roots,
				NextProtos:         []string{"http/1.1"},
				ClientSessionCache: tls.NewLRUClientSessionCache(0),
			}
		default:
			return nil, fmt.Errorf("http sink: target %s: scheme %q is not http or https", u.Redacted(), u.Scheme)
		}
		tt.addr = net.JoinHostPort(u.Hostname(), port)
		tt.seed = mix(hashString(tt.name))
		s.targets = append(s.targets, tt)
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	s.shared = make(chan job, cfg.QueueSize)
	if cfg.Session {
		s.own = make([]chan job, cfg.Workers)
		for i := range s.own {
			s.own[i] = make(chan job, max(cfg.QueueSize/cfg.Workers, 1))
		}
	}
	for i := range cfg.Workers {
		w := &worker{s: s, conns: make([]*conn, len(s.targets)), sessions: map[sessionKey]*conn{}}
		w.br = bufio.NewReaderSize(nil, readBufSize)
		w.bw = bufio.NewWriterSize(nil, 32<<10)
		w.p = parser{keep: cfg.KeepResponse, limit: cfg.KeepLimit}
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
	info := inspect(req.Raw)
	q := s.shared
	if s.own != nil && req.ConnID != "" {
		q = s.own[hashString(req.ConnID)%uint64(len(s.own))]
	}
	switch s.cfg.Mode {
	case ModeMirror:
		for t := range s.targets {
			if err := s.enqueue(ctx, q, job{req: req, info: info, t: t}); err != nil {
				return err
			}
		}
		return nil
	case ModeSplit:
		key := req.ConnID
		if key == "" {
			key = req.ID
		}
		return s.enqueue(ctx, q, job{req: req, info: info, t: s.pick(key)})
	}
	return s.enqueue(ctx, q, job{req: req, info: info})
}

func (s *Sender) enqueue(ctx context.Context, q chan job, j job) error {
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

// pick chooses a target for key by rendezvous hashing: a key keeps its
// target while targets are added or removed elsewhere in the list.
func (s *Sender) pick(key string) int {
	h := hashString(key)
	best, bestScore := 0, uint64(0)
	for i, t := range s.targets {
		if sc := mix(h ^ t.seed); i == 0 || sc > bestScore {
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
// with class "canceled" (in-flight ones end within Timeout) and Close
// returns ctx.Err() once the workers are done.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.shared)
	for _, q := range s.own {
		close(q)
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

// DropQueued makes the workers drop the requests still queued instead of
// sending them (counted as dropped-queued, with no result); a request
// already on the wire still gets its answer, up to the timeout. It is what
// an interrupt does: Ctrl-C stops the sends at once. Safe at any time.
func (s *Sender) DropQueued() { s.dropping.Store(true) }

// Stats returns the counters: sent (results), ok, errors, retries,
// bytes-out, bytes-in, queued, invalid (empty requests refused by Send),
// skipped-non-request, dropped-queued (DropQueued), and errors-<class> for
// each class seen.
func (s *Sender) Stats() map[string]int64 {
	m := map[string]int64{
		"sent":                s.sent.Load(),
		"ok":                  s.ok.Load(),
		"errors":              s.errs.Load(),
		"retries":             s.retries.Load(),
		"bytes-out":           s.bytesOut.Load(),
		"bytes-in":            s.bytesIn.Load(),
		"queued":              s.queued.Load(),
		"invalid":             s.invalid.Load(),
		"skipped-non-request": s.skipped.Load(),
		"dropped-queued":      s.droppedQueued.Load(),
	}
	for i, c := range stats.Classes {
		if n := s.classes[i].Load(); n > 0 {
			m["errors-"+c] = n
		}
	}
	return m
}

func (s *Sender) count(r *Result) {
	s.sent.Add(1)
	s.bytesOut.Add(r.BytesOut)
	s.bytesIn.Add(r.BytesIn)
	if r.Retried {
		s.retries.Add(1)
	}
	if r.Err == nil {
		s.ok.Add(1)
		return
	}
	s.errs.Add(1)
	for i, c := range stats.Classes {
		if c == r.ErrClass || c == stats.ClassOther {
			s.classes[i].Add(1)
			return
		}
	}
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
