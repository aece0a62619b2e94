// Package exprenv defines the typed environments that expr-lang expressions in
// scenarios are compiled against and run with: the request environment
// (filter, sample, rewrite, drop, if) and the summary environment (assert).
// The scenario validator and the runtime engine share them, so an expression
// that validates is an expression that runs.
package exprenv

import (
	"encoding/json"
	"net/textproto"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
)

// Request is what a request expression sees as `req`.
//
// Fields: req.method, req.path (no query), req.query (raw query string),
// req.url (path?query), req.proto, req.host, req.headers (canonical-case
// keys), req.body, req.json (parsed body, nil when not JSON or not parsed),
// req.time (capture time), req.conn, req.src, req.id.
// Functions: req.header("Name") (case-insensitive, "" when absent) and
// req.param("name") (first query value, "" when absent); and, outside req,
// regexReplace(s, pattern, replacement) (Go's regexp, $1 expanded).
type Request struct {
	Method  string            `expr:"method"`
	Path    string            `expr:"path"`
	Query   string            `expr:"query"`
	URL     string            `expr:"url"`
	Proto   string            `expr:"proto"`
	Host    string            `expr:"host"`
	Headers map[string]string `expr:"headers"`
	Body    string            `expr:"body"`
	JSON    any               `expr:"json"`
	Time    time.Time         `expr:"time"`
	Conn    string            `expr:"conn"`
	Src     string            `expr:"src"`
	ID      string            `expr:"id"`

	// Header and Param are set by Init (and NewRequest); expressions call
	// them as req.header("X-Name") and req.param("name").
	Header func(name string) string `expr:"header"`
	Param  func(name string) string `expr:"param"`

	params url.Values // parsed lazily from Query
}

// NewRequest builds a Request from a request line's parts, the headers (any
// case; the Host header fills req.host) and the body. requestURI is the
// request target as on the wire ("/a/b?x=1", or absolute form). When
// parseJSON is true and the body is valid JSON, req.json holds it. The
// caller may then set Time, Conn, Src and ID.
func NewRequest(method, requestURI, proto string, headers map[string]string, body []byte, parseJSON bool) *Request {
	r := &Request{Method: method, Proto: proto, Body: string(body)}
	r.Headers = make(map[string]string, len(headers))
	for k, v := range headers {
		r.Headers[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	target := requestURI
	if i := strings.Index(target, "://"); i >= 0 && !strings.HasPrefix(target, "/") {
		// absolute form: scheme://host/path?query
		rest := target[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			if r.Host == "" {
				r.Host = rest[:j]
			}
			target = rest[j:]
		} else {
			r.Host = rest
			target = "/"
		}
	}
	r.URL = target
	r.Path, r.Query, _ = strings.Cut(target, "?")
	if h, ok := r.Headers["Host"]; ok {
		r.Host = h
	}
	if parseJSON {
		r.ParseJSON()
	}
	r.Init()
	return r
}

// Init sets the Header and Param functions. Call it on a Request built by
// hand (NewRequest calls it).
func (r *Request) Init() {
	r.Header = r.header
	r.Param = r.param
}

// ParseJSON parses Body into JSON when it is valid JSON; otherwise JSON
// stays nil. It reports whether the body was JSON.
func (r *Request) ParseJSON() bool {
	var v any
	if len(r.Body) == 0 || json.Unmarshal([]byte(r.Body), &v) != nil {
		r.JSON = nil
		return false
	}
	r.JSON = v
	return true
}

func (r *Request) header(name string) string {
	if v, ok := r.Headers[name]; ok {
		return v
	}
	if v, ok := r.Headers[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func (r *Request) param(name string) string {
	if r.params == nil {
		p, err := url.ParseQuery(r.Query)
		if err != nil && p == nil {
			p = url.Values{}
		}
		r.params = p
	}
	return r.params.Get(name)
}

// RequestEnv is the environment of request expressions: `req` and the
// function env("NAME"): the engine reads the scenario's --env-file, then
// the process environment, at run time (NewRequestEnv: the process
// environment alone).
type RequestEnv struct {
	Req *Request                 `expr:"req"`
	Env func(name string) string `expr:"env"`
}

// NewRequestEnv returns the environment to run a request program with.
func NewRequestEnv(r *Request) RequestEnv {
	return RequestEnv{Req: r, Env: os.Getenv}
}

// RequestOptions returns the options to compile request expressions with;
// add expr.AsBool() or expr.AsKind(reflect.String) as the use requires.
func RequestOptions() []expr.Option {
	return []expr.Option{expr.Env(RequestEnv{}), regexReplaceFunc}
}

// UsesJSON reports whether a compiled request program reads req.json, so the
// engine parses bodies only when some expression needs them.
func UsesJSON(p *vm.Program) bool {
	if p == nil {
		return false
	}
	node := p.Node()
	if node == nil {
		return strings.Contains(p.Source().String(), "json")
	}
	v := &jsonFinder{}
	ast.Walk(&node, v)
	return v.found
}

type jsonFinder struct{ found bool }

func (f *jsonFinder) Visit(n *ast.Node) {
	m, ok := (*n).(*ast.MemberNode)
	if !ok {
		return
	}
	if s, ok := m.Property.(*ast.StringNode); ok && s.Value == "json" {
		f.found = true
	}
}
