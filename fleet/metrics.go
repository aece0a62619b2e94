package fleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are an agent's Prometheus metrics. A nil *Metrics records nothing.
type Metrics struct {
	reg        *prometheus.Registry
	heartbeats prometheus.Counter
	runs       prometheus.Gauge
	queuedN    prometheus.Gauge
	finishes   *prometheus.CounterVec
	refusals   prometheus.Counter
	malformedN prometheus.Counter
	suppressed prometheus.Counter
}

// NewMetrics registers the agent's metrics.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replayctl_agent_heartbeats_total", Help: "Heartbeats published."}),
		runs: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replayctl_agent_runs", Help: "Jobs or shards running on this agent."}),
		queuedN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "replayctl_agent_runs_queued", Help: "Jobs or shards taken by this agent and waiting for a free run (--max-concurrent)."}),
		finishes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "replayctl_agent_runs_finished_total", Help: "Runs finished, by final state."}, []string{"state"}),
		refusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replayctl_agent_refusals_total", Help: "Job specs refused (see replayctl jobs show for reasons)."}),
		malformedN: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replayctl_agent_jobs_malformed_total", Help: "Malformed records read on the jobs topic (ignored)."}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "replayctl_agent_refusals_suppressed_total", Help: "Refusals of unverified specs and cancels not published to the status topic (rate limit); they were refused all the same."}),
	}
	m.reg.MustRegister(m.heartbeats, m.runs, m.queuedN, m.finishes, m.refusals, m.malformedN, m.suppressed,
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) heartbeat() {
	if m != nil {
		m.heartbeats.Inc()
	}
}

func (m *Metrics) running(d float64) {
	if m != nil {
		m.runs.Add(d)
	}
}

func (m *Metrics) finished(s State) {
	if m != nil {
		m.finishes.WithLabelValues(string(s)).Inc()
	}
}

func (m *Metrics) refused(string) {
	if m != nil {
		m.refusals.Inc()
	}
}

func (m *Metrics) malformed() {
	if m != nil {
		m.malformedN.Inc()
	}
}

// Serve serves /metrics on addr until ctx ends. addr must be a loopback
// address: an agent opens no port to the network.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, <-chan error, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, nil, fmt.Errorf("--metrics-listen %q: only a loopback address (127.0.0.1:PORT, [::1]:PORT): an agent opens no port to the network", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr(), errc, nil
}

func (m *Metrics) refusalSuppressed() {
	if m != nil {
		m.suppressed.Inc()
	}
}

func (m *Metrics) queued(d float64) {
	if m != nil {
		m.queuedN.Add(d)
	}
}
