// Package h2sink replays requests over HTTP/2: cleartext with prior
// knowledge (h2c) to http:// targets, and over TLS with ALPN "h2" to
// https:// targets. Requests come in h2text's form (as captured from
// HTTP/2) or as HTTP/1.x bytes, which are sent as HTTP/2 streams (the
// connection-specific fields left out). Bodies, gRPC framing included, go
// out byte for byte; request trailers (an HTTP/1.x chunked body's
// included) are sent as trailers.
//
// Many streams share a connection: up to MaxStreams at once each, so
// Workers concurrent requests open about Workers/MaxStreams connections
// per target. With Session, the streams of one recorded connection all go
// over one replayed connection. The HTTP/2 client is the package's own
// (clientConn: x/net's Framer and HPACK, without its Transport): the
// recorded fields go out in their order, repeated names as recorded, with
// no field added, and no goroutine is started per stream. Results are
// httpsink.Results, the response rendered in h2text's form with its fields
// in the order the server sent them, so compare reads them as it reads
// HTTP/1.x answers.
//
// Errors are classified: rst-stream-<code> (RST_STREAM from the server,
// e.g. rst-stream-refused_stream), goaway (the connection went away under
// the stream), reset (the connection ended under it), alpn (a TLS target
// that does not offer h2), bad-response (a target that answers in
// HTTP/1.x: ErrHTTP1Answer, logged once per target; a malformed answer,
// a 101 included; more than 5 informational answers before the final one;
// a WINDOW_UPDATE overflowing a stream's send window), invalid-request (a field HTTP/2 cannot carry), and the
// transport classes of stats.Classify. A stream the server did not process
// (REFUSED_STREAM, above a GOAWAY's last stream) is sent once more on
// another connection. A request that times out makes its connection send
// a PING; no answer within the timeout closes it. Answers with a
// grpc-status other than 0 are counted by code (grpc-status-<code>).
package h2sink

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// DefaultMaxStreams is the default of Config.MaxStreams.
const DefaultMaxStreams = 100

// maxSessions caps the open session connections per target; past it the
// least recently used one is closed.
const maxSessions = 1024

// Config configures a Sender: the fields of an HTTP/1.x sender's Config
// (Targets with their timeouts and TLS settings, Mode, Workers, Session,
// PreserveHost, Timeout, QueueSize, KeepResponse, KeepLimit, OnResult) mean
// the same here.
type Config struct {
	httpsink.Config
	// MaxStreams caps the concurrent streams per connection (default 100);
	// the server's SETTINGS_MAX_CONCURRENT_STREAMS caps it further.
	MaxStreams int
	// Logger gets the warnings (a target that answers in HTTP/1.x);
	// nil: slog.Default().
	Logger *slog.Logger
}

// ErrNoH2 is returned when a TLS target does not negotiate h2 by ALPN.
var ErrNoH2 = errors.New("target did not negotiate h2 (ALPN)")

// ErrHTTP1Answer is wrapped by the errors (class bad-response) of the
// streams of a connection whose server answered in HTTP/1.x.
var ErrHTTP1Answer = errors.New("target answered in HTTP/1.x")

type classed struct {
	err   error
	class string
}

func (c *classed) Error() string    { return c.err.Error() }
func (c *classed) Unwrap() error    { return c.err }
func (c *classed) ErrClass() string { return c.class }

type target struct {
	name    string
	addr    string // host:port to dial
	host    string // :authority unless PreserveHost
	scheme  string
	tls     *tls.Config
	timeout time.Duration // httpsink.Target.Timeout or Config.Timeout
	seed    uint64
	pool    pool
	warned  atomic.Bool // ErrHTTP1Answer logged
}

type job struct {
	req httpsink.Request
	t   int
}

// Sender sends requests as HTTP/2 streams. Send from any number of
// goroutines; Close once.
type Sender struct {
	cfg     Config
	targets []*target
	dialer  net.Dialer
	queue   chan job
	ctx     context.Context
	abort   context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.RWMutex
	closed  bool

	sent, ok, errs, retries, bytesOut, bytesIn, invalid, skipped, queued, conns atomic.Int64
	cmu                                                                         sync.Mutex
	counts                                                                      map[string]int64 // errors-<class>, grpc-status-<code>
	methods                                                                     methods
}

var _ sinks.Sink = (*Sender)(nil)

// New validates cfg, loads TLS material and starts the workers.
func New(cfg Config) (*Sender, error) {
	if len(cfg.Targets) == 0 {
		return nil, errors.New("h2 sink: no target")
	}
	switch cfg.Mode {
	case httpsink.ModeSingle:
		if len(cfg.Targets) > 1 {
			return nil, fmt.Errorf("h2 sink: %d targets need mode %q or %q", len(cfg.Targets), httpsink.ModeMirror, httpsink.ModeSplit)
		}
	case httpsink.ModeMirror, httpsink.ModeSplit:
	default:
		return nil, fmt.Errorf("h2 sink: unknown mode %q", cfg.Mode)
	}
	if cfg.Workers <= 0 {
		cfg.Workers = httpsink.DefaultWorkers
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = httpsink.DefaultTimeout
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4 * cfg.Workers
	}
	if cfg.KeepLimit <= 0 {
		cfg.KeepLimit = httpsink.DefaultKeepLimit
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = DefaultMaxStreams
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// No dialer timeout: each dial's context carries its target's.
	s := &Sender{cfg: cfg, counts: map[string]int64{}, dialer: net.Dialer{KeepAlive: 30 * time.Second}}
	names := map[string]bool{}
	cas := httpsink.CAPools{}
	for i, t := range cfg.Targets {
		u := t.URL
		if u == nil || u.Host == "" {
			return nil, fmt.Errorf("h2 sink: target %d: URL with a host required", i)
		}
		tt := &target{name: t.Name, host: u.Host, scheme: strings.ToLower(u.Scheme), timeout: t.Timeout}
		if tt.timeout <= 0 {
			tt.timeout = cfg.Timeout
		}
		if tt.name == "" {
			tt.name = u.Host
		}
		if names[tt.name] {
			return nil, fmt.Errorf("h2 sink: two targets named %q", tt.name)
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
				return nil, fmt.Errorf("h2 sink: target %s: %w", tt.name, err)
			}
			tt.tls = &tls.Config{ServerName: cmp.Or(t.ServerName, u.Hostname()), InsecureSkipVerify: t.InsecureSkipVerify, RootCAs: roots,
				NextProtos: []string{http2.NextProtoTLS, "http/1.1"}, ClientSessionCache: tls.NewLRUClientSessionCache(0)}
		default:
			return nil, fmt.Errorf("h2 sink: target %s: scheme %q is not http or https", u.Redacted(), u.Scheme)
		}
		tt.addr = net.JoinHostPort(u.Hostname(), port)
		tt.seed = httpsink.TargetSeed(tt.name)
		tt.pool = pool{s: s, t: tt, sessions: map[string]*pconn{}}
		s.targets = append(s.targets, tt)
	}
	s.ctx, s.abort = context.WithCancel(context.Background())
	s.queue = make(chan job, cfg.QueueSize)
	for range cfg.Workers {
		s.wg.Go(func() {
			for j := range s.queue {
				s.do(j)
			}
		})
	}
	return s, nil
}

// Send queues req (once per target with mode mirror) and returns; it
// blocks while the queue is full until ctx is done.
func (s *Sender) Send(ctx context.Context, req httpsink.Request) error {
	if len(req.Raw) == 0 {
		s.invalid.Add(1)
		return fmt.Errorf("h2 sink: request %q: %w", req.ID, httpsink.ErrEmptyRequest)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return httpsink.ErrClosed
	}
	switch s.cfg.Mode {
	case httpsink.ModeMirror:
		for t := range s.targets {
			if err := s.enqueue(ctx, job{req, t}); err != nil {
				return err
			}
		}
		return nil
	case httpsink.ModeSplit:
		key := req.ConnID
		if key == "" {
			key = req.ID
		}
		return s.enqueue(ctx, job{req, s.pick(key)})
	}
	return s.enqueue(ctx, job{req, 0})
}

func (s *Sender) enqueue(ctx context.Context, j job) error {
	select {
	case s.queue <- j:
		s.queued.Add(1)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("h2 sink: queue request %q: %w", j.req.ID, ctx.Err())
	}
}

// pick chooses a target by rendezvous hashing, as the HTTP/1.x sender does.
func (s *Sender) pick(key string) int {
	return httpsink.Rendezvous(key, len(s.targets), func(i int) uint64 { return s.targets[i].seed })
}

// Write implements sinks.Sink: it sends a request message now; other
// messages are skipped and counted.
func (s *Sender) Write(ctx context.Context, m *message.Message) error {
	if m.Kind != message.Request {
		s.skipped.Add(1)
		return nil
	}
	return s.Send(ctx, httpsink.Request{Raw: bytes.Clone(m.Raw), ConnID: m.ConnID, ID: m.ID, Scheduled: time.Now()})
}

// Close stops accepting requests and waits for every queued and in-flight
// one; if ctx ends first, in-flight requests are aborted.
func (s *Sender) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		s.abort()
		<-done
		err = fmt.Errorf("h2 sink: close: %w", ctx.Err())
	}
	s.abort()
	for _, t := range s.targets {
		t.pool.closeAll()
	}
	return err
}

// Stats returns the counters: sent, ok, errors, retries, bytes-out,
// bytes-in (bytes of the textual form: HPACK and framing not counted;
// bytes-out only for the requests whose HEADERS went on a connection),
// queued, invalid, skipped-non-request, connections (opened),
// errors-<class> and grpc-status-<code> (answers with a gRPC status other
// than 0).
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
		"connections":         s.conns.Load(),
	}
	s.cmu.Lock()
	for k, v := range s.counts {
		m[k] = v
	}
	s.cmu.Unlock()
	return m
}

func (s *Sender) countKey(k string) {
	s.cmu.Lock()
	s.counts[k]++
	s.cmu.Unlock()
}

// do sends one request and delivers its result.
func (s *Sender) do(j job) {
	t := s.targets[j.t]
	r := httpsink.Result{
		Result:   stats.Result{Scheduled: j.req.Scheduled, Start: time.Now()},
		Target:   t.name,
		ID:       j.req.ID,
		ConnID:   j.req.ConnID,
		Expected: j.req.Expected,
	}
	defer s.finish(&r)
	pr, err := h2text.ParseRequest(j.req.Raw)
	if err != nil {
		r.Err = &classed{fmt.Errorf("send to %s: %w", t.name, err), "invalid-request"}
		return
	}
	code := ""
	if isGRPC(pr) {
		defer func() { s.methods.record(pr.Path, code, r) }()
	}
	session := ""
	if s.cfg.Session {
		session = j.req.ConnID
	}
	for attempt := 0; ; attempt++ {
		if err := s.ctx.Err(); err != nil {
			r.Err = fmt.Errorf("send to %s: %w", t.name, err)
			return
		}
		pc, connect, err := t.pool.get(s.ctx, session)
		r.Connect += connect
		if err != nil {
			r.Err = fmt.Errorf("connect to %s: %w", t.name, err)
			return
		}
		var retry bool
		retry, code = s.roundTrip(t, pc, pr, int64(len(j.req.Raw)), j.req.KeepHost, &r)
		t.pool.put(pc, session)
		if !retry || attempt > 0 {
			return
		}
		r.Retried = true
		r.Err = nil
	}
}

// roundTrip sends pr on pc and fills r. It returns true when the stream
// was refused before the server processed it (the connection was going
// away), so that it may be sent again on another connection, and the
// answer's grpc-status. r.BytesOut grows by size (the request's) when its
// HEADERS were written to the connection (once per attempt that was).
func (s *Sender) roundTrip(t *target, pc *pconn, pr *h2text.Request, size int64, keepHost bool, r *httpsink.Result) (bool, string) {
	ctx, cancel := context.WithTimeout(s.ctx, t.timeout)
	defer cancel()
	authority := t.host
	if (s.cfg.PreserveHost || keepHost) && pr.Authority != "" {
		// preserve-host, or a rewrite set the Host (Request.KeepHost).
		authority = pr.Authority
	}
	// Only what the result keeps of the answer is kept (KeepLimit bytes
	// of its rendering at most, none without KeepResponse); the rest of a
	// large body is counted, not held.
	req := outRequest{pr: pr, authority: authority, scheme: t.scheme, keepBody: s.cfg.KeepLimit, discardBody: !s.cfg.KeepResponse}
	for _, f := range pr.Header {
		req.hasLength = req.hasLength || f.Name == "content-length"
	}
	r.Start = time.Now()
	resp, wrote, err := pc.cc.roundTrip(ctx, &req)
	if wrote {
		r.BytesOut += size
	}
	if err != nil {
		if line := pc.cc.bc.http1Answer(); line != "" {
			r.Err = s.http1Answer(t, line)
			return false, ""
		}
		r.Err = s.classify(t, err)
		return retryable(err), ""
	}
	r.Latency = time.Since(r.Start)
	r.Status = resp.status
	fields := make([]h2text.Field, 0, 1+len(resp.header))
	fields = append(fields, h2text.Field{Name: ":status", Value: strconv.Itoa(resp.status)})
	fields = append(fields, resp.header...)
	raw, err := h2text.AppendResponsePrefix(nil, fields, resp.body, resp.size, resp.trailer)
	if err != nil {
		r.Err = &classed{fmt.Errorf("response from %s: %w", t.name, err), stats.ClassBadResponse}
		return false, ""
	}
	r.BytesIn = int64(len(raw)-len(resp.body)) + resp.size
	code := grpcStatus(resp)
	if code != "" && code != "0" {
		s.countKey("grpc-status-" + code)
	}
	if s.cfg.KeepResponse {
		if len(raw) > s.cfg.KeepLimit {
			raw, r.ResponseTruncated = raw[:s.cfg.KeepLimit], true
		}
		if int64(len(resp.body)) < resp.size {
			r.ResponseTruncated = true
		}
		r.Response = raw
	}
	return false, code
}

// grpcStatus is the grpc-status of an answer (trailer, or header of a
// trailers-only answer), "" when none.
func grpcStatus(resp *response) string {
	for _, fields := range [][]h2text.Field{resp.trailer, resp.header} {
		for _, f := range fields {
			if f.Name == "grpc-status" {
				return f.Value
			}
		}
	}
	return ""
}

// retryable reports whether err ended a stream the server never
// processed: refused (RST_STREAM REFUSED_STREAM), above a GOAWAY's last
// stream, or not opened because the connection was no longer usable.
func retryable(err error) bool {
	var se http2.StreamError
	var ga *goAwayError
	switch {
	case errors.As(err, &se):
		return se.Code == http2.ErrCodeRefusedStream
	case errors.As(err, &ga):
		return !ga.processed
	}
	return errors.Is(err, errNotUsable)
}

// http1Answer is the error of a stream whose server answered in HTTP/1.x
// (its status line line); the first one of each target is logged.
func (s *Sender) http1Answer(t *target, line string) error {
	hint := "h2c with prior knowledge needs a server that speaks HTTP/2 without TLS"
	if t.tls != nil {
		hint = "the server chose h2 by ALPN, then answered in HTTP/1.x"
	}
	if t.warned.CompareAndSwap(false, true) {
		s.cfg.Logger.Warn("h2 sink: the target answered in HTTP/1.x, not HTTP/2; its requests fail as bad-response",
			"target", t.name, "answer", line, "hint", hint)
	}
	return &classed{fmt.Errorf("send to %s: %w (%q), not HTTP/2: %s", t.name, ErrHTTP1Answer, line, hint), stats.ClassBadResponse}
}

// classify wraps err with its class.
func (s *Sender) classify(t *target, err error) error {
	err = fmt.Errorf("send to %s: %w", t.name, err)
	var se http2.StreamError
	var ga *goAwayError
	var inv *invalidFieldError
	switch {
	case errors.As(err, &inv):
		return err // its own class
	case errors.As(err, &se):
		return &classed{err, "rst-stream-" + strings.ToLower(se.Code.String())}
	case errors.As(err, &ga):
		return &classed{err, "goaway"}
	case errors.Is(err, context.DeadlineExceeded):
		return &classed{err, stats.ClassTimeout}
	case errors.Is(err, errConnLost), errors.Is(err, errNotUsable):
		return &classed{err, stats.ClassReset}
	}
	return err
}

func (s *Sender) finish(r *httpsink.Result) {
	s.sent.Add(1)
	s.bytesOut.Add(r.BytesOut)
	s.bytesIn.Add(r.BytesIn)
	if r.Retried {
		s.retries.Add(1)
	}
	if r.Err == nil {
		s.ok.Add(1)
	} else {
		s.errs.Add(1)
		if r.ErrClass == "" {
			r.ErrClass = stats.Classify(r.Err)
		}
		s.countKey("errors-" + r.ErrClass)
	}
	if s.cfg.OnResult != nil {
		s.cfg.OnResult(*r)
	}
}
