// Package serve is `replayctl serve`: a REST API (under /v1, described by
// an OpenAPI document) and a web UI over the fleet's Kafka topics. It keeps
// no state of its own: jobs, agents and statuses come from the fleet topics,
// recordings from the window catalog, tokens from a shared file, so any
// number of instances answer alike.
//
// engine and fleet know nothing of this package.
package serve

import (
	"context"
	"crypto/ed25519"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio"
)

// Config configures a server.
type Config struct {
	Kafka       kafkaio.Config
	ScenarioDir string
	TokensFile  string
	Key         ed25519.PrivateKey // signs job specs and cancels
	// Trust are further keys whose specs are shown as verified (those
	// `replayctl jobs submit` signs, which agents trust with --trust):
	// serve signs nothing with them, and runs again only what Key signed.
	Trust  []ed25519.PublicKey
	Logger *slog.Logger
	// MaxBody bounds request bodies (default 1 MiB).
	MaxBody int64
	// BodyTimeout bounds the time a client takes to send a request body
	// (default 30s): the listener's ReadHeaderTimeout covers only the
	// headers, and a body sent a byte a minute would hold its connection
	// for ever.
	BodyTimeout time.Duration
	// Version is reported by /healthz.
	Version string
}

// Server is a running API over the fleet.
type Server struct {
	cfg     Config
	bus     *fleet.Bus
	events  *statusLog
	dir     *scenarioDir
	tokens  *tokenStore
	log     *slog.Logger
	mux     *http.ServeMux
	reg     *prometheus.Registry
	reqs    *prometheus.CounterVec
	submits *prometheus.CounterVec
	streams prometheus.Gauge
	// specs keeps what was read from spec records: the spec decoded and
	// whether it verified (specIndex, verifiedSpec).
	specs specCache
	// index names each job's spec records on the jobs topic (specOffsets).
	index specOffsets
}

//go:embed openapi.json
var openAPI []byte

//go:embed ui
var uiFiles embed.FS

// route is one API operation; the OpenAPI document lists the same set.
type route struct {
	method, pattern string
	scope           string // "" public; otherwise the scope required (kind-dependent ones check more)
	handler         func(*Server, http.ResponseWriter, *http.Request, Token)
}

// routes is the API. TestOpenAPIMatchesRoutes checks it against
// openapi.json both ways.
var routes = []route{
	{"GET", "/healthz", "", (*Server).healthz},
	{"GET", "/metrics", "", nil}, // promhttp
	{"GET", "/v1/openapi.json", "", (*Server).openapi},
	{"GET", "/v1/whoami", ScopeRead, (*Server).whoami},
	{"GET", "/v1/jobs", ScopeRead, (*Server).listJobs},
	{"POST", "/v1/jobs", ScopeRead, (*Server).submitJob},
	{"GET", "/v1/jobs/{id}", ScopeRead, (*Server).getJob},
	{"POST", "/v1/jobs/{id}/cancel", ScopeRead, (*Server).cancelJob},
	{"POST", "/v1/jobs/{id}/rerun", ScopeRead, (*Server).rerunJob},
	{"GET", "/v1/jobs/{id}/events", ScopeRead, (*Server).jobEvents},
	{"GET", "/v1/jobs/{id}/logs", ScopeRead, (*Server).jobLogs},
	{"GET", "/v1/jobs/{id}/report.json", ScopeRead, (*Server).reportJSON},
	{"GET", "/v1/jobs/{id}/report.html", ScopeRead, (*Server).reportHTML},
	{"GET", "/v1/states", ScopeRead, (*Server).listStates},
	{"GET", "/v1/agents", ScopeRead, (*Server).listAgents},
	{"GET", "/v1/windows", ScopeRead, (*Server).listWindows},
	{"GET", "/v1/windows/{name}", ScopeRead, (*Server).getWindow},
	{"DELETE", "/v1/windows/{name}", ScopeRecord, (*Server).deleteWindow},
	{"GET", "/v1/scenarios", ScopeRead, (*Server).listScenarios},
	{"POST", "/v1/compat/gor/start", ScopeReplay, (*Server).gorStart},
	{"POST", "/v1/compat/gor/stop", ScopeReplay, (*Server).gorStop},
}

// New connects to Kafka, reads the fleet topics and prepares the handler.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 1 << 20
	}
	if cfg.BodyTimeout == 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.Key == nil {
		return nil, errors.New("serve: a signing key is required (agents run only signed specs)")
	}
	if cfg.TokensFile == "" {
		return nil, errors.New("serve: --tokens FILE is required (replayctl tokens add NAME --scope … --tokens FILE)")
	}
	// A missing file would hold no token: every call would be a 401, with
	// nothing saying why. It is made by the first `replayctl tokens add`.
	if _, err := os.Stat(cfg.TokensFile); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("serve: tokens file %s does not exist (every API call would be refused): create it with replayctl tokens add NAME --scope … --tokens %s", cfg.TokensFile, cfg.TokensFile)
	}
	if _, err := ReadTokens(cfg.TokensFile); err != nil {
		return nil, err
	}
	dir, err := openScenarioDir(cfg.ScenarioDir)
	if err != nil {
		return nil, err
	}
	bus, err := fleet.OpenBus(ctx, cfg.Kafka, cfg.Logger)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := bus.Sync(sctx); err != nil {
		bus.Close()
		return nil, err
	}
	events, err := openStatusLog(cfg.Kafka, cfg.Logger)
	if err != nil {
		bus.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, bus: bus, events: events, dir: dir, tokens: &tokenStore{path: cfg.TokensFile}, log: cfg.Logger, reg: prometheus.NewRegistry()}
	s.reqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replayctl_serve_requests_total", Help: "API requests by route and status code."}, []string{"route", "code"})
	s.submits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "replayctl_serve_jobs_submitted_total", Help: "Jobs submitted through the API, by kind."}, []string{"kind"})
	s.streams = prometheus.NewGauge(prometheus.GaugeOpts{Name: "replayctl_serve_event_streams", Help: "Open job event streams."})
	verdicts := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "replayctl_serve_spec_reads_total", Help: "Job spec records decoded: once per record while its view is kept."},
			func() float64 { return float64(s.specs.reads.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "replayctl_serve_spec_verifications_total", Help: "Job spec signatures checked: once per spec record while its view is kept."},
			func() float64 { return float64(s.specs.checks.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "replayctl_serve_spec_verdict_hits_total", Help: "Job specs shown with a verdict kept from an earlier check."},
			func() float64 { return float64(s.specs.hits.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "replayctl_serve_spec_verdicts_evicted_total", Help: fmt.Sprintf("Spec records' views (decoded, with their verdict) dropped, least recently used first, to keep at most %d.", specCacheSize)},
			func() float64 { return float64(s.specs.evicted.Load()) }),
	}
	s.reg.MustRegister(append(verdicts, s.reqs, s.submits, s.streams, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))...)
	s.mux = http.NewServeMux()
	for _, rt := range routes {
		rt := rt
		pattern := rt.method + " " + rt.pattern
		if rt.pattern == "/metrics" {
			s.mux.Handle(pattern, s.count(rt.pattern, promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})))
			continue
		}
		s.mux.Handle(pattern, s.count(rt.pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var tok Token
			if rt.scope != "" {
				var ok bool
				if tok, ok = s.authorize(w, r, rt.scope); !ok {
					return
				}
			}
			rt.handler(s, w, r, tok)
		})))
	}
	s.mux.Handle("GET /v1/", s.count("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fail(w, http.StatusNotFound, "no API route %s %s (see /v1/openapi.json)", r.Method, r.URL.Path)
	})))
	sub, _ := fs.Sub(uiFiles, "ui")
	static := http.FileServerFS(sub)
	s.mux.Handle("GET /", s.count("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		static.ServeHTTP(w, r)
	})))
	return s, nil
}

// Close stops reading the topics.
func (s *Server) Close() {
	s.events.Close()
	s.bus.Close()
	_ = s.dir.root.Close()
}

// Handler is the API and the UI.
func (s *Server) Handler() http.Handler {
	h := secureHeaders(s.mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.bodyDeadline(w, r)
		h.ServeHTTP(w, r)
	})
}

// apiCSP is the policy of every answer but the UI's own files: an answer is
// data (JSON, text, an event stream, a report page with no script), never a
// page that runs anything or that another site may frame.
const apiCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// secureHeaders sets the headers every answer carries, errors included:
// browsers never sniff a type (a job's logs or an error naming a window are
// text, whatever bytes a Kafka record put in them), and no other site
// frames serve. Handlers that serve pages set their own policy over this.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Content-Security-Policy", apiCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		h.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) count(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		s.reqs.WithLabelValues(route, fmt.Sprint(rec.code)).Inc()
	})
}

// apiError is the JSON body of every error answer.
type apiError struct {
	Error    string   `json:"error"`
	Problems []string `json:"problems,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func fail(w http.ResponseWriter, code int, format string, args ...any) {
	writeJSON(w, code, apiError{Error: fmt.Sprintf(format, args...)})
}

// authorize checks the bearer token and its scope: 401 without a valid
// token, 403 without the scope.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope string) (Token, bool) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(secret) == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="replayctl"`)
		fail(w, http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>; replayctl tokens add NAME --scope …)")
		return Token{}, false
	}
	tok, found, err := s.tokens.lookup(strings.TrimSpace(secret))
	if err != nil {
		s.log.Error("tokens file", "err", err)
		fail(w, http.StatusInternalServerError, "tokens file unreadable")
		return Token{}, false
	}
	if !found {
		w.Header().Set("WWW-Authenticate", `Bearer realm="replayctl", error="invalid_token"`)
		fail(w, http.StatusUnauthorized, "unknown token")
		return Token{}, false
	}
	if !tok.Has(scope) {
		fail(w, http.StatusForbidden, "token %q lacks scope %q (it has %s)", tok.Name, scope, strings.Join(tok.Scopes, ", "))
		return Token{}, false
	}
	return tok, true
}

// need checks a further scope inside a handler (the job kind's).
func need(w http.ResponseWriter, tok Token, scope string) bool {
	if tok.Has(scope) {
		return true
	}
	fail(w, http.StatusForbidden, "token %q lacks scope %q (it has %s)", tok.Name, scope, strings.Join(tok.Scopes, ", "))
	return false
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ Token) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.bus.Sync(ctx); err != nil {
		// Anyone may ask: the answer does not say where Kafka is or what
		// it said (broker addresses, listener names); the log does.
		s.log.Warn("healthz: kafka unreachable", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "kafka unreachable", "error": "the fleet topics cannot be read (see serve's log)"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": s.cfg.Version})
}

func (s *Server) openapi(w http.ResponseWriter, _ *http.Request, _ Token) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(openAPI)
}

func (s *Server) whoami(w http.ResponseWriter, _ *http.Request, tok Token) {
	writeJSON(w, http.StatusOK, map[string]any{"name": tok.Name, "scopes": tok.Scopes})
}

// bodyDeadline gives a request with a body BodyTimeout to send all of it:
// reading past the deadline fails, and the connection is closed. Once the
// body is read to its end, the deadline is lifted, so that it cuts neither
// a long answer nor the server's watch for the client going away.
func (s *Server) bodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)) != nil {
		return
	}
	r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
}

// deadlineBody lifts the read deadline once the body is read to its end.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// decode reads a JSON body strictly: bounded, no unknown field, one value.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBody)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, "request body over %d bytes", tooBig.Limit)
			return false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			w.Header().Set("Connection", "close")
			fail(w, http.StatusRequestTimeout, "request body not received within %s", s.cfg.BodyTimeout)
			return false
		}
		fail(w, http.StatusBadRequest, "malformed JSON body: %v", err)
		return false
	}
	if dec.More() {
		fail(w, http.StatusBadRequest, "malformed JSON body: more than one value")
		return false
	}
	return true
}

// sync waits until the fleet topics are read up to now, so that an answer
// includes what any instance wrote before the request.
func (s *Server) sync(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.bus.Sync(sctx)
}

// syncAgents is sync for a request that says which agents are alive: in
// the first fleet.LostAfter after serve opened its bus, it also waits for
// the next heartbeats of the agents whose latest one is from before
// (fleet.Bus.AwaitHeartbeats): dated by the agent's own clock on a broker
// that keeps its producers' timestamps, one from an agent whose clock is
// behind made it look lost.
func (s *Server) syncAgents(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return s.bus.AwaitHeartbeats(sctx)
}
