package exprenv

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Explain says what an assert expression read from env, so a failed
// assertion shows its actual values: each comparison as
// "latency.p99 = 312ms, want < 250ms" (or both sides when neither is a
// constant), and any other summary value it reads as "name = value".
// Parts are joined with "; ". It returns "" when there is nothing to show.
func Explain(p *vm.Program, env Summary) string {
	if p == nil || p.Node() == nil {
		return ""
	}
	e := &explainer{env: env}
	e.node(p.Node())
	return strings.Join(slices.Compact(e.parts), "; ")
}

type explainer struct {
	env   Summary
	parts []string
}

var flipped = map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}

func (e *explainer) node(n ast.Node) {
	switch x := n.(type) {
	case *ast.BinaryNode:
		switch x.Operator {
		case "&&", "||", "and", "or":
			e.node(x.Left)
			e.node(x.Right)
			return
		}
		if _, ok := flipped[x.Operator]; ok {
			e.compare(x)
			return
		}
	case *ast.UnaryNode:
		if x.Operator == "!" || x.Operator == "not" {
			e.node(x.Node)
			return
		}
	case *ast.ConditionalNode:
		e.node(x.Cond)
		e.node(x.Exp1)
		e.node(x.Exp2)
		return
	}
	e.reads(n)
}

// compare explains one comparison.
func (e *explainer) compare(x *ast.BinaryNode) {
	l, r := x.Left, x.Right
	op := x.Operator
	if !readsEnv(l) && readsEnv(r) {
		l, r, op = r, l, flipped[op]
	}
	lv, lerr := e.eval(l)
	rv, rerr := e.eval(r)
	if lerr != nil || rerr != nil {
		e.reads(x)
		return
	}
	if !readsEnv(r) {
		e.parts = append(e.parts, fmt.Sprintf("%s = %s, want %s %s", source(l), lv, op, rv))
		return
	}
	e.parts = append(e.parts, fmt.Sprintf("%s = %s, %s = %s", source(l), lv, source(r), rv))
}

// reads explains every summary value n reads (outermost member chains and
// identifiers).
func (e *explainer) reads(n ast.Node) {
	if n == nil {
		return
	}
	if isRead(n) {
		if v, err := e.eval(n); err == nil {
			e.parts = append(e.parts, fmt.Sprintf("%s = %s", source(n), v))
		}
		return
	}
	for _, c := range children(n) {
		e.reads(c)
	}
}

// isRead reports whether n is a summary value: an identifier or a member
// chain on one (latency.p99, status[503]), not a function.
func isRead(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.IdentifierNode:
		return x.Value != "duration" && x.Value != "env"
	case *ast.MemberNode:
		return isRead(x.Node)
	}
	return false
}

// readsEnv reports whether n reads any summary value.
func readsEnv(n ast.Node) bool {
	if isRead(n) {
		return true
	}
	for _, c := range children(n) {
		if readsEnv(c) {
			return true
		}
	}
	return false
}

func children(n ast.Node) []ast.Node {
	switch x := n.(type) {
	case *ast.BinaryNode:
		return []ast.Node{x.Left, x.Right}
	case *ast.UnaryNode:
		return []ast.Node{x.Node}
	case *ast.MemberNode:
		return []ast.Node{x.Node, x.Property}
	case *ast.CallNode:
		return append([]ast.Node{x.Callee}, x.Arguments...)
	case *ast.BuiltinNode:
		return x.Arguments
	case *ast.ConditionalNode:
		return []ast.Node{x.Cond, x.Exp1, x.Exp2}
	case *ast.ArrayNode:
		return x.Nodes
	case *ast.ChainNode:
		return []ast.Node{x.Node}
	case *ast.SliceNode:
		return []ast.Node{x.Node, x.From, x.To}
	}
	return nil
}

// source prints n as written (the bare `duration` identifier included).
func source(n ast.Node) string {
	return strings.ReplaceAll(n.String(), durationField, "duration")
}

// eval evaluates the sub-expression n against the summary.
func (e *explainer) eval(n ast.Node) (string, error) {
	p, err := expr.Compile(n.String(), SummaryOptions()...)
	if err != nil {
		return "", err
	}
	v, err := expr.Run(p, e.env)
	if err != nil {
		return "", err
	}
	return FormatValue(v), nil
}

// FormatValue prints a summary value: durations rounded to the µs below a
// millisecond, to 0.1 ms below a second and to the ms above; floats with 4
// significant digits.
func FormatValue(v any) string {
	switch v := v.(type) {
	case time.Duration:
		switch {
		case v < time.Millisecond && v > -time.Millisecond:
			return v.Round(time.Microsecond).String()
		case v < time.Second && v > -time.Second:
			return v.Round(100 * time.Microsecond).String()
		}
		return v.Round(time.Millisecond).String()
	case float64:
		return strconv.FormatFloat(v, 'g', 4, 64)
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprint(v)
}
