// Package rewrite applies a scenario's replay-time rewrite actions to one raw
// HTTP request: header, method, path, query, host and JSON body edits, and
// drops. Expressions are compiled by the engine and arrive here as
// Evaluators; each action sees the request as the previous actions left it.
package rewrite

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

// Evaluator evaluates a compiled expression against an environment.
type Evaluator func(env any) (any, error)

// EnvFunc builds the expression environment from the current request.
type EnvFunc func(r *httpraw.Request) any

// ErrNotJSON is wrapped by the error set-json and remove-json return when
// the body is not a JSON document (or is content-encoded).
var ErrNotJSON = errors.New("body is not JSON")

// Action is one rewrite step. Apply edits r in place, or reports that the
// request is to be dropped; env returns the expression environment for r as
// it is now (computed on demand).
type Action interface {
	Apply(r *httpraw.Request, env func() any) (drop bool, err error)
	// String names the action as in the scenario, e.g. "set-header X-Replay".
	String() string
}

// Compile-time checks.
var (
	_ Action = SetHeader{}
	_ Action = RemoveHeader{}
	_ Action = SetMethod{}
	_ Action = SetPath{}
	_ Action = SetQueryString{}
	_ Action = SetURL{}
	_ Action = SetQuery{}
	_ Action = RemoveQuery{}
	_ Action = SetHost{}
	_ Action = SetJSON{}
	_ Action = RemoveJSON{}
	_ Action = Drop{}
)

// Chain applies actions in order.
type Chain struct {
	Actions []Action
	// Env builds the environment for the evaluators; nil passes a nil env.
	Env EnvFunc
	// OnNotJSON, when set, is called for a set-json or remove-json action on
	// a body that is not JSON (or is content-encoded), and the chain goes on
	// with the request unchanged by that action. When nil, such an action
	// fails the chain with an error wrapping ErrNotJSON.
	OnNotJSON func(a Action, err error)
	// OnNoMatch, when set, is called for a set-json action whose path
	// matched nothing in the body's JSON and created nothing (a filter
	// or an index: $.items[3] of a shorter array): the request goes on
	// unchanged by it. When nil, that is no error either.
	OnNoMatch func(a Action)
}

// Apply parses raw, applies the actions and returns the edited request.
// dropped is true when a Drop action fired (out is then nil). A chain that
// changes nothing returns raw itself. Errors name the failing action.
func (c *Chain) Apply(raw []byte) (out []byte, dropped bool, err error) {
	out, _, dropped, err = c.ApplyHost(raw)
	return out, dropped, err
}

// ApplyHost is Apply that also reports whether an action set the Host
// header (set-host, or set-header of Host, its if: true), even to the
// value it had: the request is then meant for that Host, which a replay
// sends instead of its target's.
func (c *Chain) ApplyHost(raw []byte) (out []byte, hostSet, dropped bool, err error) {
	if len(c.Actions) == 0 {
		return raw, false, false, nil
	}
	r, err := httpraw.ParseRequest(raw)
	if err != nil {
		return nil, false, false, fmt.Errorf("rewrite: %w", err)
	}
	var (
		env    any
		envFor *byte // first byte of the request bytes env was built from
	)
	envf := func() any {
		if c.Env == nil {
			return nil
		}
		if b := r.Bytes(); envFor == nil || &b[0] != envFor {
			env, envFor = c.Env(r), &b[0]
		}
		return env
	}
	for i, a := range c.Actions {
		drop, err := a.Apply(r, envf)
		if errors.Is(err, errNoMatch) {
			if c.OnNoMatch != nil {
				c.OnNoMatch(a)
			}
			continue
		}
		if err != nil && c.OnNotJSON != nil && errors.Is(err, ErrNotJSON) {
			c.OnNotJSON(a, err)
			continue
		}
		if err != nil {
			return nil, false, false, fmt.Errorf("rewrite: action %d (%s): %w", i+1, a, err)
		}
		if drop {
			return nil, false, true, nil
		}
	}
	return r.Bytes(), r.HostSet(), false, nil
}

// when evaluates an optional condition; nil is true.
func when(cond Evaluator, env func() any, what string) (bool, error) {
	if cond == nil {
		return true, nil
	}
	v, err := cond(env())
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s is %T, want bool", what, v)
	}
	return b, nil
}

func eval(e Evaluator, env func() any) (any, error) {
	if e == nil {
		return nil, errors.New("no value expression")
	}
	v, err := e(env())
	if err != nil {
		return nil, fmt.Errorf("value: %w", err)
	}
	return v, nil
}

func evalString(e Evaluator, env func() any) (string, error) {
	v, err := eval(e, env)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("value is %T, want string", v)
	}
	return s, nil
}

// SetHeader sets header Name (see httpraw SetHeader) to the string Value.
type SetHeader struct {
	Name  string
	Value Evaluator
	If    Evaluator
}

func (a SetHeader) String() string { return "set-header " + a.Name }

// Apply implements Action.
func (a SetHeader) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetHeader(a.Name, v)
}

// RemoveHeader removes every header named Name.
type RemoveHeader struct {
	Name string
	If   Evaluator
}

func (a RemoveHeader) String() string { return "remove-header " + a.Name }

// Apply implements Action.
func (a RemoveHeader) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	r.RemoveHeader(a.Name)
	return false, nil
}

// SetMethod replaces the method with the string Value.
type SetMethod struct {
	Value Evaluator
	If    Evaluator
}

func (a SetMethod) String() string { return "set-method" }

// Apply implements Action.
func (a SetMethod) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetMethod(v)
}

// SetPath replaces the path (keeping the query) with the string Value.
type SetPath struct {
	Value Evaluator
	If    Evaluator
}

func (a SetPath) String() string { return "set-path" }

// Apply implements Action.
func (a SetPath) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetPath(v)
}

// SetURL replaces the path and query of the request target with the
// string Value ("/path?query"), keeping the scheme and authority of an
// absolute-form target.
type SetURL struct {
	Value Evaluator
	If    Evaluator
}

func (a SetURL) String() string { return "set-url" }

// Apply implements Action.
func (a SetURL) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetPathAndQuery(v)
}

// SetQueryString replaces the whole query string (without '?') with the
// string Value; "" removes it, '?' included.
type SetQueryString struct {
	Value Evaluator
	If    Evaluator
}

func (a SetQueryString) String() string { return "set-query-string" }

// Apply implements Action.
func (a SetQueryString) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetRawQuery(strings.TrimPrefix(v, "?"))
}

// SetQuery sets query parameter Name to the string Value.
type SetQuery struct {
	Name  string
	Value Evaluator
	If    Evaluator
}

func (a SetQuery) String() string { return "set-query " + a.Name }

// Apply implements Action.
func (a SetQuery) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetQueryParam(a.Name, v)
}

// RemoveQuery removes every query parameter named Name.
type RemoveQuery struct {
	Name string
	If   Evaluator
}

func (a RemoveQuery) String() string { return "remove-query " + a.Name }

// Apply implements Action.
func (a RemoveQuery) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	r.RemoveQueryParam(a.Name)
	return false, nil
}

// SetHost sets the Host header (and an absolute-form target's authority) to
// the string Value. A request whose Host a chain set is sent with it (see
// ApplyHost), as is one whose Host a SetHeader set.
type SetHost struct {
	Value Evaluator
	If    Evaluator
}

func (a SetHost) String() string { return "set-host" }

// Apply implements Action.
func (a SetHost) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	v, err := evalString(a.Value, env)
	if err != nil {
		return false, err
	}
	return false, r.SetHost(v)
}

// SetJSON sets the values at Path in a JSON body to Value (any JSON-able
// value; see jsonpath Set for creation of missing members).
type SetJSON struct {
	Path  *jsonpath.Path
	Value Evaluator
	If    Evaluator
}

func (a SetJSON) String() string { return "set-json " + pathString(a.Path) }

// Apply implements Action.
func (a SetJSON) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	if a.Path == nil {
		return false, errors.New("no path")
	}
	v, err := eval(a.Value, env)
	if err != nil {
		return false, err
	}
	matched := true
	err = editJSON(r, func(doc any) (any, int, error) {
		out, n, err := a.Path.Set(doc, v)
		matched = n > 0
		return out, n, err
	})
	if err == nil && !matched {
		return false, errNoMatch
	}
	return false, err
}

// errNoMatch is what SetJSON returns when its path matched nothing in a
// JSON body (Chain.OnNoMatch).
var errNoMatch = errors.New("the path matches nothing in the body")

// RemoveJSON removes the members or elements at Path from a JSON body.
type RemoveJSON struct {
	Path *jsonpath.Path
	If   Evaluator
}

func (a RemoveJSON) String() string { return "remove-json " + pathString(a.Path) }

// Apply implements Action.
func (a RemoveJSON) Apply(r *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	if a.Path == nil {
		return false, errors.New("no path")
	}
	return false, editJSON(r, func(doc any) (any, int, error) {
		out, n := a.Path.Remove(doc)
		return out, n, nil
	})
}

// editJSON decodes the body, applies fn and, when fn touched something,
// writes the re-encoded document back.
func editJSON(r *httpraw.Request, fn func(doc any) (any, int, error)) error {
	if ce, ok := r.Header("Content-Encoding"); ok && !strings.EqualFold(ce, "identity") {
		return fmt.Errorf("%w: Content-Encoding is %s", ErrNotJSON, ce)
	}
	body, err := r.DecodedBody()
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil // no body: nothing to edit
	}
	doc, err := jsonpath.Decode(body)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	out, n, err := fn(doc)
	if err != nil || n == 0 {
		return err
	}
	b, err := jsonpath.Encode(out)
	if err != nil {
		return err
	}
	return r.SetBody(b)
}

func pathString(p *jsonpath.Path) string {
	if p == nil {
		return "<nil>"
	}
	return p.String()
}

// Drop drops the request when Cond (nil: always) and If are true.
type Drop struct {
	Cond Evaluator
	If   Evaluator
}

func (a Drop) String() string { return "drop" }

// Apply implements Action.
func (a Drop) Apply(_ *httpraw.Request, env func() any) (bool, error) {
	if ok, err := when(a.If, env, "if"); !ok || err != nil {
		return false, err
	}
	return when(a.Cond, env, "condition")
}
