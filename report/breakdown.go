package report

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/stats"
)

// Breakdown is one part of a replay's results in its JSON report: the
// requests sent over one protocol (member "protocols"), or the calls of one
// gRPC method (member "grpc"). State is the part's lossless stats: the
// parts of shards merge exactly (Merge), so that assertions reading
// protocols[…] and grpc[…] hold the merged totals to what one run would
// have read.
type Breakdown struct {
	Requests     stats.ReportRequests `json:"requests"`
	Status       map[int]int64        `json:"status"`
	GRPCStatus   map[int]int64        `json:"grpc_status,omitempty"`
	ErrorClasses map[string]int64     `json:"error_classes"`
	Latency      stats.ReportLatency  `json:"latency"`
	State        *stats.State         `json:"state,omitempty"`
}

// BreakdownOf is the breakdown of a part's summary, its lossless state
// (nil: none) and, for a gRPC method, its answers by grpc-status.
func BreakdownOf(s stats.Summary, st *stats.State, grpcStatus map[int]int64) Breakdown {
	r := s.Report("")
	return Breakdown{Requests: r.Requests, Status: r.Status, GRPCStatus: grpcStatus, ErrorClasses: r.ErrorClasses, Latency: r.Latency, State: st}
}

// EnvBreakdown is a part's summary in the assert environment.
func EnvBreakdown(s stats.Summary, grpcStatus map[int]int64) exprenv.Breakdown {
	b := exprenv.Breakdown{
		Requests:   exprenv.Requests{Sent: int(s.Sent), OK: int(s.OK), Errors: int(s.Errors)},
		Errors:     exprenv.Errors{Count: int(s.Errors), Rate: ratio(s.Errors, s.Sent)},
		Status:     map[int]int{},
		GRPCStatus: map[int]int{},
		Latency: exprenv.Latency{P50: s.Latency.P50, P90: s.Latency.P90, P99: s.Latency.P99, P999: s.Latency.P999,
			Max: s.Latency.Max, Mean: s.Latency.Mean},
	}
	for k, v := range s.Status {
		b.Status[k] = int(v)
	}
	for k, v := range grpcStatus {
		b.GRPCStatus[k] = int(v)
	}
	return b
}

// otherMethods is the key under which a run adds up the gRPC methods past
// the first 1000 it saw (h2sink.OtherMethods).
const otherMethods = "(other)"

// mergedPart is one breakdown's part added up over the reports.
type mergedPart struct {
	rec        *stats.Recorder
	grpcStatus map[int]int64
}

// breakdowns is the merge of the reports' breakdowns.
type breakdowns struct {
	protocols, grpc map[string]*mergedPart
	// unmerged says, by the assert environment's name ("protocols",
	// "grpc"), why that breakdown could not be merged exactly: an
	// assertion reading it is not evaluated, and fails.
	unmerged map[string]string
}

// mergeBreakdowns adds up the reports' breakdowns by protocol and by gRPC
// method exactly (their lossless states, bucket by bucket). A report that
// sent requests and has no breakdown by protocol adding up to them, or one
// whose breakdowns have no state (a report of an older replayctl), cannot
// be added: the breakdown is then unmerged, and says which report. So is
// the gRPC breakdown when a report lumped methods together under
// "(other)" (past its first 1000): which of them another report counted
// one by one is not known.
func mergeBreakdowns(kept []*Input, label func(*Input) string) (*breakdowns, error) {
	b := &breakdowns{protocols: map[string]*mergedPart{}, grpc: map[string]*mergedPart{}, unmerged: map[string]string{}}
	var noProto, noState, lumped []string
	for _, in := range kept {
		var sent int64
		stateless := false
		for _, p := range in.Protocols {
			if p.State == nil {
				stateless = true
				continue
			}
			sent += p.State.Sent
		}
		for _, p := range in.GRPC {
			stateless = stateless || p.State == nil
		}
		switch {
		case stateless:
			noState = append(noState, label(in))
		case in.State != nil && sent != in.State.Sent:
			noProto = append(noProto, fmt.Sprintf("%s (%d of its %d requests broken down)", label(in), sent, in.State.Sent))
		}
		if _, ok := in.GRPC[otherMethods]; ok {
			lumped = append(lumped, label(in))
		}
	}
	var why []string
	if noProto != nil {
		why = append(why, "these reports have no breakdown by protocol of all the requests they sent (a replayctl older than this one?): "+strings.Join(noProto, ", "))
	}
	if noState != nil {
		why = append(why, "these reports' breakdowns have no lossless state (a replayctl older than this one?): "+strings.Join(noState, ", "))
	}
	if why != nil {
		reason := strings.Join(why, "; ")
		b.unmerged["protocols"], b.unmerged["grpc"] = reason, reason
		return b, nil
	}
	if lumped != nil {
		b.unmerged["grpc"] = fmt.Sprintf("these reports lumped the gRPC methods past their first 1000 under %q, so a method's calls on them are not all known: %s", otherMethods, strings.Join(lumped, ", "))
	}
	add := func(into map[string]*mergedPart, parts map[string]Breakdown, in *Input) error {
		for _, k := range slices.Sorted(maps.Keys(parts)) {
			p := parts[k]
			r, err := stats.FromState(*p.State, stats.Config{MaxSeries: 2})
			if err != nil {
				return fmt.Errorf("merge: %s: breakdown %s: %w", in.Name, k, err)
			}
			m := into[k]
			if m == nil {
				m = &mergedPart{rec: stats.New(stats.Config{MaxSeries: 2})}
				into[k] = m
			}
			m.rec.Merge(r)
			for c, n := range p.GRPCStatus {
				if m.grpcStatus == nil {
					m.grpcStatus = map[int]int64{}
				}
				m.grpcStatus[c] += n
			}
		}
		return nil
	}
	for _, in := range kept {
		if err := add(b.protocols, in.Protocols, in); err != nil {
			return nil, err
		}
		if err := add(b.grpc, in.GRPC, in); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// report returns the merged breakdowns as a report's members (nil when
// empty or unmerged).
func (b *breakdowns) report() (protocols, grpc map[string]Breakdown) {
	conv := func(name string, parts map[string]*mergedPart) map[string]Breakdown {
		if len(parts) == 0 || b.unmerged[name] != "" {
			return nil
		}
		out := map[string]Breakdown{}
		for k, m := range parts {
			st := m.rec.State()
			out[k] = BreakdownOf(m.rec.Summary(), &st, m.grpcStatus)
		}
		return out
	}
	return conv("protocols", b.protocols), conv("grpc", b.grpc)
}

// env fills the breakdowns of an assert environment.
func (b *breakdowns) env(env *exprenv.Summary) {
	env.Protocols = map[string]exprenv.Breakdown{}
	env.GRPC = map[string]exprenv.Breakdown{}
	if b.unmerged["protocols"] == "" {
		for k, m := range b.protocols {
			env.Protocols[k] = EnvBreakdown(m.rec.Summary(), nil)
		}
	}
	if b.unmerged["grpc"] == "" {
		for k, m := range b.grpc {
			env.GRPC[k] = EnvBreakdown(m.rec.Summary(), m.grpcStatus)
		}
	}
}

// GRPCStatusText lists answers by grpc-status, as "0: 36, 5: 4".
func GRPCStatusText(codes map[int]int64) string {
	parts := make([]string, 0, len(codes))
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, strconv.Itoa(c)+": "+strconv.FormatInt(codes[c], 10))
	}
	return strings.Join(parts, ", ")
}

// BreakdownRows are a report's rows of breakdowns, as the HTML report
// shows them: one per protocol when several were used, one per gRPC
// method, sorted by name.
func BreakdownRows(protocols, grpc map[string]Breakdown) []BreakdownRow {
	row := func(kind, name string, b Breakdown) BreakdownRow {
		return BreakdownRow{Kind: kind, Name: name, Sent: b.Requests.Sent, OK: b.Requests.OK, Errors: b.Requests.Errors,
			P50: b.Latency.P50, P99: b.Latency.P99, GRPCStatus: GRPCStatusText(b.GRPCStatus)}
	}
	var out []BreakdownRow
	if len(protocols) > 1 {
		for _, k := range slices.Sorted(maps.Keys(protocols)) {
			out = append(out, row("protocol", k, protocols[k]))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(grpc)) {
		out = append(out, row("grpc", k, grpc[k]))
	}
	return out
}

// BreakdownLines are the rows of BreakdownRows as a terminal summary
// prints them: "grpc      /p.S/Fail: sent 2  errors 0  p99 9.0ms
// grpc-status 14: 2".
func BreakdownLines(protocols, grpc map[string]Breakdown) []string {
	var out []string
	for _, r := range BreakdownRows(protocols, grpc) {
		line := fmt.Sprintf("%-8s  %s: sent %d  errors %d  p99 %s", r.Kind, r.Name, r.Sent, r.Errors, stats.DurationText(stats.MSDuration(r.P99)))
		if r.GRPCStatus != "" {
			line += "  grpc-status " + r.GRPCStatus
		}
		out = append(out, line)
	}
	return out
}
