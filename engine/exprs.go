package engine

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/expr-lang/expr"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/rewrite"
	"github.com/replayctl/replayctl/scenario"
)

// evaluator runs a compiled scenario expression; nil for a nil expression.
func evaluator(e *scenario.Expr) rewrite.Evaluator {
	if e == nil {
		return nil
	}
	prog := e.Program
	return func(env any) (any, error) { return expr.Run(prog, env) }
}

// compileRewrites turns the job's rewrite steps into actions.
func compileRewrites(j *scenario.Job) ([]rewrite.Action, scenario.Diagnostics) {
	var (
		acts  []rewrite.Action
		diags scenario.Diagnostics
	)
	for _, rw := range j.Rewrite {
		val, cond := evaluator(rw.Value), evaluator(rw.If)
		var path *jsonpath.Path
		if rw.Action == scenario.SetJSON || rw.Action == scenario.RemoveJSON {
			p, err := jsonpath.Compile(rw.JSONPath)
			if err != nil {
				diags = append(diags, scenario.Diagnostic{Pos: rw.Pos, Message: fmt.Sprintf("%s: %v", rw.Action, err)})
				continue
			}
			path = p
		}
		var a rewrite.Action
		switch rw.Action {
		case scenario.SetHeader:
			a = rewrite.SetHeader{Name: rw.Name, Value: val, If: cond}
		case scenario.RemoveHeader:
			a = rewrite.RemoveHeader{Name: rw.Name, If: cond}
		case scenario.SetMethod:
			a = rewrite.SetMethod{Value: val, If: cond}
		case scenario.SetPath:
			a = rewrite.SetPath{Value: val, If: cond}
		case scenario.SetURL:
			a = rewrite.SetURL{Value: val, If: cond}
		case scenario.SetQueryString:
			a = rewrite.SetQueryString{Value: val, If: cond}
		case scenario.SetQuery:
			a = rewrite.SetQuery{Name: rw.Name, Value: val, If: cond}
		case scenario.RemoveQuery:
			a = rewrite.RemoveQuery{Name: rw.Name, If: cond}
		case scenario.SetHost:
			a = rewrite.SetHost{Value: val, If: cond}
		case scenario.SetJSON:
			a = rewrite.SetJSON{Path: path, Value: val, If: cond}
		case scenario.RemoveJSON:
			a = rewrite.RemoveJSON{Path: path, If: cond}
		case scenario.Drop:
			a = rewrite.Drop{Cond: val, If: cond}
		default:
			diags = append(diags, scenario.Diagnostic{Pos: rw.Pos, Message: fmt.Sprintf("unknown rewrite action %q", rw.Action)})
			continue
		}
		acts = append(acts, a)
	}
	return acts, diags
}

// requestEnv builds the request expression environment from a parsed
// request and the message it came from.
func requestEnv(r *httpraw.Request, m *message.Message, parseJSON bool, getenv func(string) string) exprenv.RequestEnv {
	fields := r.Headers()
	headers := make(map[string]string, len(fields))
	for _, f := range fields {
		if _, seen := headers[f.Name]; !seen {
			headers[f.Name] = f.Value
		}
	}
	body, err := r.DecodedBody()
	if err != nil {
		body = r.Body()
	}
	req := exprenv.NewRequest(r.Method(), r.Target(), r.Proto(), headers, body, parseJSON)
	req.Time = time.Unix(0, m.Time)
	req.Conn = m.ConnID
	req.ID = m.ID
	if m.Src != (netip.AddrPort{}) {
		req.Src = m.Src.String()
	}
	return exprenv.RequestEnv{Req: req, Env: getenv}
}
