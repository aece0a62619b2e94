package exprenv

import (
	"fmt"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Summary is the environment of assert expressions: a job's results.
//
//	requests.sent, requests.ok, requests.errors        int
//	errors.count int, errors.rate float (errors / sent, 0 when nothing sent)
//	status[200]                                        int (keys are ints; status["200"] does not compile)
//	latency.p50 .p90 .p99 .p999 .max .mean             duration
//	rate.scheduled, rate.achieved                      float, requests/s
//	lateness.p50 .p99 .max                             duration
//	diff.compared, diff.mismatches int, diff.rate float
//	duration                                           the run's wall time
//	protocols["HTTP/2.0"], protocols["HTTP/1.x"]       a Breakdown of the requests sent over that protocol
//	grpc["/pkg.Service/Method"]                        a Breakdown of one gRPC method's calls
//
// A Breakdown has requests, errors, status and latency as above, and
// grpc_status[14] (answers by grpc-status; gRPC methods only).
//
// The builtin duration("250ms") still works: a call of duration is the
// builtin, a bare duration is the wall time (see SummaryOptions).
type Summary struct {
	Requests Requests      `expr:"requests"`
	Errors   Errors        `expr:"errors"`
	Status   map[int]int   `expr:"status"`
	Latency  Latency       `expr:"latency"`
	Rate     Rates         `expr:"rate"`
	Lateness Lateness      `expr:"lateness"`
	Diff     Diff          `expr:"diff"`
	Duration time.Duration `expr:"__duration"`
	// Protocols and GRPC break the results down (HTTP/2 and gRPC).
	Protocols map[string]Breakdown `expr:"protocols"`
	GRPC      map[string]Breakdown `expr:"grpc"`
}

// Breakdown is the results of part of a job's requests: one protocol, or
// one gRPC method.
type Breakdown struct {
	Requests   Requests    `expr:"requests"`
	Errors     Errors      `expr:"errors"`
	Status     map[int]int `expr:"status"`
	GRPCStatus map[int]int `expr:"grpc_status"`
	Latency    Latency     `expr:"latency"`
}

// Requests counts requests.
type Requests struct {
	Sent   int `expr:"sent"`
	OK     int `expr:"ok"`
	Errors int `expr:"errors"`
}

// Errors counts failed requests.
type Errors struct {
	Count int     `expr:"count"`
	Rate  float64 `expr:"rate"`
}

// Latency holds response latency percentiles.
type Latency struct {
	P50  time.Duration `expr:"p50"`
	P90  time.Duration `expr:"p90"`
	P99  time.Duration `expr:"p99"`
	P999 time.Duration `expr:"p999"`
	Max  time.Duration `expr:"max"`
	Mean time.Duration `expr:"mean"`
}

// Rates holds request rates in requests per second.
type Rates struct {
	Scheduled float64 `expr:"scheduled"`
	Achieved  float64 `expr:"achieved"`
}

// Lateness holds actual minus scheduled send time percentiles.
type Lateness struct {
	P50 time.Duration `expr:"p50"`
	P99 time.Duration `expr:"p99"`
	Max time.Duration `expr:"max"`
}

// Diff holds response comparison counts.
type Diff struct {
	Compared   int     `expr:"compared"`
	Mismatches int     `expr:"mismatches"`
	Rate       float64 `expr:"rate"`
}

// durationField is the env name the bare identifier `duration` is rewritten
// to, so it does not shadow the builtin duration("…").
const durationField = "__duration"

// SummaryOptions returns the options to compile assert expressions with;
// add expr.AsBool().
func SummaryOptions() []expr.Option {
	return []expr.Option{expr.Env(Summary{}), expr.Patch(durationPatch{})}
}

// durationPatch renames identifiers `duration` to the wall-time field, except
// where duration is called (the builtin). Walk is post-order: the callee
// identifier is renamed first, then renamed back by its CallNode.
type durationPatch struct{}

func (durationPatch) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if x.Value == "duration" {
			x.Value = durationField
		}
	case *ast.CallNode:
		if id, ok := x.Callee.(*ast.IdentifierNode); ok && id.Value == durationField {
			id.Value = "duration"
		}
	}
}

// CheckLiterals reports the first duration("…") call in p whose constant
// argument is not a valid duration, which would otherwise fail only at run
// time.
func CheckLiterals(p *vm.Program) error {
	if p == nil || p.Node() == nil {
		return nil
	}
	node := p.Node()
	c := &literalChecker{}
	ast.Walk(&node, c)
	return c.err
}

type literalChecker struct{ err error }

func (c *literalChecker) Visit(n *ast.Node) {
	if c.err != nil {
		return
	}
	var args []ast.Node
	switch x := (*n).(type) {
	case *ast.BuiltinNode:
		if x.Name != "duration" {
			return
		}
		args = x.Arguments
	case *ast.CallNode:
		id, ok := x.Callee.(*ast.IdentifierNode)
		if !ok || id.Value != "duration" {
			return
		}
		args = x.Arguments
	default:
		return
	}
	if len(args) != 1 {
		return
	}
	s, ok := args[0].(*ast.StringNode)
	if !ok {
		return
	}
	if _, err := time.ParseDuration(s.Value); err != nil {
		c.err = fmt.Errorf("duration(%q): %w", s.Value, err)
	}
}

// Reads reports whether p reads the summary's member name (its name in
// expressions: "protocols", "grpc"). A let of that name counts as a read.
func Reads(p *vm.Program, name string) bool {
	if p == nil || p.Node() == nil {
		return false
	}
	for _, x := range postOrderNodes(p.Node()) {
		if id, ok := x.(*ast.IdentifierNode); ok && id.Value == name {
			return true
		}
	}
	return false
}
