package engine

import (
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

func (p *protocolStats) summaries() map[string]stats.Summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]stats.Summary{}
	for k, r := range p.rec {
		out[k] = r.Summary()
	}
	return out
}

// BreakdownReport is one part of a replay's results in the JSON report.
type BreakdownReport struct {
	Requests     stats.ReportRequests `json:"requests"`
	Status       map[int]int64        `json:"status"`
	GRPCStatus   map[int]int64        `json:"grpc_status,omitempty"`
	ErrorClasses map[string]int64     `json:"error_classes"`
	Latency      stats.ReportLatency  `json:"latency"`
}

func breakdownReport(s stats.Summary, grpcStatus map[int]int64) BreakdownReport {
	r := s.Report("")
	return BreakdownReport{Requests: r.Requests, Status: r.Status, GRPCStatus: grpcStatus, ErrorClasses: r.ErrorClasses, Latency: r.Latency}
}

// replayReport is a replay's JSON report: stats' report plus the
// breakdowns by protocol and by gRPC method.
type replayReport struct {
	stats.Report
	Protocols map[string]BreakdownReport `json:"protocols,omitempty"`
	GRPC      map[string]BreakdownReport `json:"grpc,omitempty"`
}

func withBreakdown(rep stats.Report, res *jobResult) any {
	if len(res.protocols) == 0 && len(res.grpc) == 0 {
		return rep
	}
	out := replayReport{Report: rep, Protocols: map[string]BreakdownReport{}, GRPC: map[string]BreakdownReport{}}
	for k, s := range res.protocols {
		out.Protocols[k] = breakdownReport(s, nil)
	}
	for k, m := range res.grpc {
		out.GRPC[k] = breakdownReport(m.Summary, m.GRPCStatus)
	}
	return out
}

func envBreakdown(s stats.Summary, grpcStatus map[int]int64) exprenv.Breakdown {
	b := exprenv.Breakdown{
		Requests:   exprenv.Requests{Sent: int(s.Sent), OK: int(s.OK), Errors: int(s.Errors)},
		Errors:     exprenv.Errors{Count: int(s.Errors)},
		Status:     map[int]int{},
		GRPCStatus: map[int]int{},
		Latency: exprenv.Latency{P50: s.Latency.P50, P90: s.Latency.P90, P99: s.Latency.P99, P999: s.Latency.P999,
			Max: s.Latency.Max, Mean: s.Latency.Mean},
	}
	if s.Sent > 0 {
		b.Errors.Rate = float64(s.Errors) / float64(s.Sent)
	}
	for k, v := range s.Status {
		b.Status[k] = int(v)
	}
	for k, v := range grpcStatus {
		b.GRPCStatus[k] = int(v)
	}
	return b
}

// addBreakdownEnv fills the breakdowns of an assert environment.
func addBreakdownEnv(env *exprenv.Summary, res *jobResult) {
	env.Protocols = map[string]exprenv.Breakdown{}
	env.GRPC = map[string]exprenv.Breakdown{}
	for k, s := range res.protocols {
		env.Protocols[k] = envBreakdown(s, nil)
	}
	for k, m := range res.grpc {
		env.GRPC[k] = envBreakdown(m.Summary, m.GRPCStatus)
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
		codes := make([]int, 0, len(m.GRPCStatus))
		for c := range m.GRPCStatus {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		if len(codes) > 0 {
			line += "  grpc-status"
			for _, c := range codes {
				line += " " + strconv.Itoa(c) + ": " + strconv.Itoa(int(m.GRPCStatus[c]))
			}
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
		codes := make([]int, 0, len(m.GRPCStatus))
		for c := range m.GRPCStatus {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for i, c := range codes {
			if i > 0 {
				r.GRPCStatus += ", "
			}
			r.GRPCStatus += strconv.Itoa(c) + ": " + strconv.FormatInt(m.GRPCStatus[c], 10)
		}
		out = append(out, r)
	}
	return out
}
