package engine

import (
	"maps"
	"sort"
	"strconv"
	"sync"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// Protocol keys of the breakdown.
const (
	protoHTTP1 = "HTTP/1.x"
	protoHTTP2 = "HTTP/2.0"
)

// protocolStats records the results by the protocol they were sent over.
type protocolStats struct {
	mu  sync.Mutex
	rec map[string]*stats.Recorder
}

func (p *protocolStats) record(proto string, r httpsink.Result) {
	p.mu.Lock()
	rec := p.rec[proto]
	if rec == nil {
		if p.rec == nil {
			p.rec = map[string]*stats.Recorder{}
		}
		rec = stats.New(stats.Config{MaxSeries: 2})
		p.rec[proto] = rec
	}
	p.mu.Unlock()
	rec.Record(r.Result)
}

// parts returns the results by protocol: summaries and lossless states.
func (p *protocolStats) parts() (map[string]stats.Summary, map[string]stats.State) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out, states := map[string]stats.Summary{}, map[string]stats.State{}
	for k, r := range p.rec {
		out[k], states[k] = r.Summary(), r.State()
	}
	return out, states
}

// BreakdownReport is one part of a replay's results in the JSON report,
// with its lossless state (report merge adds the parts of shards up).
type BreakdownReport = report.Breakdown

// replayReport is a replay's JSON report: stats' report plus the
// breakdowns by protocol and by gRPC method.
type replayReport struct {
	stats.Report
	Protocols map[string]BreakdownReport `json:"protocols,omitempty"`
	GRPC      map[string]BreakdownReport `json:"grpc,omitempty"`
}

// breakdowns are a replay's results by protocol and by gRPC method, each
// part with its lossless state (nil maps when it sent nothing).
func breakdowns(res *jobResult) (protocols, grpc map[string]BreakdownReport) {
	if len(res.protocols) > 0 {
		protocols = map[string]BreakdownReport{}
	}
	for k, s := range res.protocols {
		var st *stats.State
		if x, ok := res.protocolStates[k]; ok {
			st = &x
		}
		protocols[k] = report.BreakdownOf(s, st, nil)
	}
	if len(res.grpc) > 0 {
		grpc = map[string]BreakdownReport{}
	}
	for k, m := range res.grpc {
		st := m.State
		grpc[k] = report.BreakdownOf(m.Summary, &st, m.GRPCStatus)
	}
	return protocols, grpc
}

func withBreakdown(rep stats.Report, res *jobResult) any {
	if len(res.protocols) == 0 && len(res.grpc) == 0 {
		return rep
	}
	out := replayReport{Report: rep, Protocols: map[string]BreakdownReport{}, GRPC: map[string]BreakdownReport{}}
	p, g := breakdowns(res)
	maps.Copy(out.Protocols, p)
	maps.Copy(out.GRPC, g)
	return out
}

// addBreakdownEnv fills the breakdowns of an assert environment.
func addBreakdownEnv(env *exprenv.Summary, res *jobResult) {
	env.Protocols = map[string]exprenv.Breakdown{}
	env.GRPC = map[string]exprenv.Breakdown{}
	for k, s := range res.protocols {
		env.Protocols[k] = report.EnvBreakdown(s, nil)
	}
	for k, m := range res.grpc {
		env.GRPC[k] = report.EnvBreakdown(m.Summary, m.GRPCStatus)
	}
}

// breakdownLines are the summary's lines for the breakdowns: one per
// protocol when both were used, one per gRPC method.
func breakdownLines(res *jobResult) [][2]string {
	var out [][2]string
	if len(res.protocols) > 1 {
		for _, k := range sortedKeys(res.protocols) {
			s := res.protocols[k]
			out = append(out, [2]string{"protocol", k + ": " + partLine(s)})
		}
	}
	names := make([]string, 0, len(res.grpc))
	for k := range res.grpc {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		m := res.grpc[k]
		line := k + ": " + partLine(m.Summary)
		if len(m.GRPCStatus) > 0 {
			line += "  grpc-status " + report.GRPCStatusText(m.GRPCStatus)
		}
		out = append(out, [2]string{"grpc", line})
	}
	return out
}

func partLine(s stats.Summary) string {
	return "sent " + strconv.Itoa(int(s.Sent)) + "  errors " + strconv.Itoa(int(s.Errors)) + "  p99 " + ms(s.Latency.P99)
}

// breakdownRows are the HTML report's rows: one per protocol when both
// were used, one per gRPC method.
func breakdownRows(res *jobResult) []report.BreakdownRow {
	row := func(kind, name string, s stats.Summary) report.BreakdownRow {
		return report.BreakdownRow{Kind: kind, Name: name, Sent: s.Sent, OK: s.OK, Errors: s.Errors, P50: stats.MS(s.Latency.P50), P99: stats.MS(s.Latency.P99)}
	}
	var out []report.BreakdownRow
	if len(res.protocols) > 1 {
		for _, k := range sortedKeys(res.protocols) {
			out = append(out, row("protocol", k, res.protocols[k]))
		}
	}
	for _, k := range sortedKeys(res.grpc) {
		m := res.grpc[k]
		r := row("grpc", k, m.Summary)
		r.GRPCStatus = report.GRPCStatusText(m.GRPCStatus)
		out = append(out, r)
	}
	return out
}
