// Package compare checks that a replayed HTTP response answers like the
// recorded (production) one: status, chosen headers, and the body — a
// structural diff by JSON path when both bodies are JSON, a byte diff
// otherwise. It also separates noise from regressions (NoiseFilter), folds
// request paths into endpoints (Endpoint) and aggregates results for the
// report (Aggregator).
//
// # Comparison rules
//
//   - Status (Config.Status): the status codes must be equal; a Diff of kind
//     "status" with path "status".
//   - Headers (Config.Headers): for each listed name (case-insensitive), the
//     values of all fields of that name, joined with ", ", must be equal; a
//     missing header renders as "<absent>". Kind "header", path the name as
//     configured.
//   - Body (Config.Body): bodies are compared after removing chunked framing
//     and decoding Content-Encoding gzip/deflate (up to 16 MiB; a body that
//     fails to decode is compared as it is). When both bodies are JSON — the
//     Content-Type mentions json, or the body starts with '{' or '[' — and
//     both decode, they are diffed structurally: object members by name
//     (the first of duplicate names), arrays by index, each difference named
//     by its concrete path ($.items[2].price, $['odd key']). Kinds:
//     body-field-added, body-field-removed, body-field-changed,
//     body-type-changed. Otherwise the bodies are compared as bytes: one
//     Diff of kind "body-bytes", path "body", whose renderings give the
//     first differing offset and a short context of each side.
//   - Ignore (Config.Ignore): JSONPath patterns (see package jsonpath, such
//     as $.items[*].updatedAt or $..requestId); a matching path and
//     everything below it are skipped.
//   - Tolerance (Config.Tolerance, >= 0): two JSON numbers a and b are equal
//     when |a-b| <= Tolerance (absolute) or |a-b| <= Tolerance*max(|a|,|b|)
//     (relative); so 0.01 accepts 1% or 0.01, whichever is larger. With 0,
//     numbers are equal when their values are (1.0 == 1), and integer
//     literals are compared exactly, beyond float64 precision.
//   - A response that does not parse gives one Diff of kind "unparsable"
//     with path "recorded" or "replayed"; Compare never panics.
//
// A Result holds at most MaxDiffs diffs; the rest are counted in Omitted.
//
// # Noise
//
// See NoiseFilter for the rule that tells noise from regressions.
package compare

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

// Diff kinds.
const (
	KindStatus       = "status"
	KindHeader       = "header"
	KindFieldAdded   = "body-field-added"
	KindFieldRemoved = "body-field-removed"
	KindFieldChanged = "body-field-changed"
	KindTypeChanged  = "body-type-changed"
	KindBodyBytes    = "body-bytes"
	KindUnparsable   = "unparsable"
)

const (
	absent            = "<absent>"
	maxDecodedBody    = 16 << 20
	maxRender         = 120
	contextBefore     = 24
	contextAfter      = 40
	bodyPath          = "body"
	statusPath        = "status"
	unparsableRecPath = "recorded"
	unparsableRepPath = "replayed"
)

// MaxDiffs bounds the diffs one Result holds; further ones are counted in
// Result.Omitted.
const MaxDiffs = 200

// Config says what to compare. The zero Config compares nothing; see
// DefaultConfig.
type Config struct {
	// Status compares status codes.
	Status bool `json:"status" yaml:"status"`
	// Headers lists header names whose values must match.
	Headers []string `json:"headers,omitempty" yaml:"headers"`
	// Body compares bodies (JSON-aware).
	Body bool `json:"body" yaml:"body"`
	// Ignore lists JSONPath patterns of body fields to skip.
	Ignore []string `json:"ignore,omitempty" yaml:"ignore"`
	// Tolerance is the numeric tolerance, absolute or relative (see the
	// package doc).
	Tolerance float64 `json:"tolerance,omitempty" yaml:"tolerance"`
	// GRPCDescriptors is a protobuf descriptor set file: gRPC bodies of the
	// methods it describes are compared as JSON (see grpc.go).
	GRPCDescriptors string `json:"grpc_descriptors,omitempty" yaml:"grpc-descriptors"`
}

// DefaultConfig compares status and body.
func DefaultConfig() Config { return Config{Status: true, Body: true} }

// Diff is one difference between a recorded and a replayed response.
type Diff struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Path is a concrete JSON path ($.a.b[2]), a header name, "status",
	// "body" (byte diff) or, for unparsable, which side failed.
	Path string `json:"path"`
	// Recorded and Replayed are short renderings of both sides ("" when
	// the side has no value, as for an added or removed field).
	Recorded string `json:"recorded"`
	Replayed string `json:"replayed"`
}

// Result is the outcome of one comparison.
type Result struct {
	// Match is true when there is no diff.
	Match bool `json:"match"`
	// Diffs lists the differences, at most MaxDiffs.
	Diffs []Diff `json:"diffs,omitempty"`
	// Omitted counts diffs beyond MaxDiffs.
	Omitted int `json:"omitted,omitempty"`
}

// Comparer compares responses by a Config; it is safe for concurrent use.
type Comparer struct {
	cfg    Config
	ignore []*jsonpath.Path
	protos *protoregistry.Files // GRPCDescriptors, loaded
}

// New validates cfg and compiles its ignore patterns.
func New(cfg Config) (*Comparer, error) {
	if cfg.Tolerance < 0 || math.IsNaN(cfg.Tolerance) || math.IsInf(cfg.Tolerance, 0) {
		return nil, fmt.Errorf("compare: tolerance %v: want a finite number >= 0", cfg.Tolerance)
	}
	c := &Comparer{cfg: cfg}
	for _, h := range cfg.Headers {
		if strings.TrimSpace(h) == "" {
			return nil, fmt.Errorf("compare: empty header name")
		}
	}
	for _, p := range cfg.Ignore {
		cp, err := jsonpath.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("compare: ignore pattern: %w", err)
		}
		c.ignore = append(c.ignore, cp)
	}
	if cfg.GRPCDescriptors != "" {
		var err error
		if c.protos, err = loadDescriptors(cfg.GRPCDescriptors); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Config returns the configuration the Comparer was built with.
func (c *Comparer) Config() Config { return c.cfg }

// diffs collects diffs up to MaxDiffs.
type diffs struct {
	list    []Diff
	omitted int
}

func (d *diffs) add(kind, path, rec, rep string) {
	if len(d.list) >= MaxDiffs {
		d.omitted++
		return
	}
	d.list = append(d.list, Diff{Kind: kind, Path: path, Recorded: rec, Replayed: rep})
}

func (d *diffs) result() Result {
	return Result{Match: len(d.list) == 0 && d.omitted == 0, Diffs: d.list, Omitted: d.omitted}
}

// Compare compares two raw HTTP/1.x responses: the recorded one and the one
// the target gave on replay.
func (c *Comparer) Compare(recorded, replayed []byte) Result {
	return c.CompareRequest("", recorded, replayed)
}

// CompareRequest is Compare for the answers to a request with the given
// path: gRPC bodies are decoded by the called method's message type.
func (c *Comparer) CompareRequest(path string, recorded, replayed []byte) Result {
	return c.compare(path, recorded, replayed, false, false)
}

// CompareCut is CompareRequest for a recorded response whose body was cut
// when recorded (max-body, or bytes the capture lost): its status and
// headers are compared, its body is not (a prefix is no answer to compare
// with).
func (c *Comparer) CompareCut(path string, recorded, replayed []byte) Result {
	return c.compare(path, recorded, replayed, true, false)
}

// CompareCuts is CompareRequest for answers either of which may be cut:
// recordedCut when recorded (as CompareCut), replayedCut when the sender
// kept only a prefix of it (Result.ResponseTruncated, at KeepLimit). A
// cut one is read by its head, and when either is cut, status and
// headers are compared, bodies are not.
func (c *Comparer) CompareCuts(path string, recorded, replayed []byte, recordedCut, replayedCut bool) Result {
	return c.compare(path, recorded, replayed, recordedCut, replayedCut)
}

func (c *Comparer) compare(path string, recorded, replayed []byte, recCut, repCut bool) Result {
	var d diffs
	parseRec, parseRep := httpraw.ParseResponse, httpraw.ParseResponse
	if recCut {
		parseRec = httpraw.ParseResponseHead
	}
	if repCut {
		parseRep = httpraw.ParseResponseHead
	}
	rec, errRec := parseRec(recorded)
	rep, errRep := parseRep(replayed)
	if errRec != nil {
		d.add(KindUnparsable, unparsableRecPath, clipString(errRec.Error()), "")
	}
	if errRep != nil {
		d.add(KindUnparsable, unparsableRepPath, "", clipString(errRep.Error()))
	}
	if errRec != nil || errRep != nil {
		return d.result()
	}
	if c.cfg.Status && rec.StatusCode() != rep.StatusCode() {
		d.add(KindStatus, statusPath, strconv.Itoa(rec.StatusCode()), strconv.Itoa(rep.StatusCode()))
	}
	if c.cfg.Status {
		c.compareGRPCStatus(&d, rec, rep)
	}
	for _, name := range c.cfg.Headers {
		a, b := headerValue(rec, name), headerValue(rep, name)
		if a != b {
			d.add(KindHeader, name, clipString(a), clipString(b))
		}
	}
	if c.cfg.Body && !recCut && !repCut {
		c.compareBody(&d, path, rec, rep)
	}
	return d.result()
}

func headerValue(r *httpraw.Response, name string) string {
	vs := r.Values(name)
	if len(vs) == 0 {
		return absent
	}
	return strings.Join(vs, ", ")
}

func (c *Comparer) compareBody(d *diffs, path string, rec, rep *httpraw.Response) {
	a, errA := body(rec)
	b, errB := body(rep)
	if errA != nil {
		d.add(KindUnparsable, unparsableRecPath, clipString(errA.Error()), "")
	}
	if errB != nil {
		d.add(KindUnparsable, unparsableRepPath, "", clipString(errB.Error()))
	}
	if errA != nil || errB != nil {
		return
	}
	if c.protos != nil && c.compareGRPCBody(d, path, rec, rep, a, b) {
		return
	}
	if looksJSON(rec, a) && looksJSON(rep, b) {
		va, errA := jsonpath.Decode(a)
		vb, errB := jsonpath.Decode(b)
		if errA == nil && errB == nil {
			c.walk(d, nil, va, vb)
			return
		}
	}
	if !bytes.Equal(a, b) {
		off := commonPrefix(a, b)
		d.add(KindBodyBytes, bodyPath, byteContext(a, off), byteContext(b, off))
	}
}

// body returns the decoded body: chunked framing removed, gzip or deflate
// Content-Encoding undone when it decodes.
func body(r *httpraw.Response) ([]byte, error) {
	b, err := r.DecodedBody()
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	enc, _ := r.Header("Content-Encoding")
	var zr io.Reader
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "gzip", "x-gzip":
		g, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return b, nil
		}
		zr = g
	case "deflate":
		zr = flate.NewReader(bytes.NewReader(b))
	default:
		return b, nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxDecodedBody+1))
	if err != nil || len(out) > maxDecodedBody {
		return b, nil
	}
	return out, nil
}

func looksJSON(r *httpraw.Response, b []byte) bool {
	if ct, ok := r.Header("Content-Type"); ok && strings.Contains(strings.ToLower(ct), "json") {
		return true
	}
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

func (c *Comparer) ignored(elems []string) bool {
	for _, p := range c.ignore {
		if p.Match(elems) {
			return true
		}
	}
	return false
}

// elem is one path element while walking: a member name or an index.
type pathElem struct {
	name  string
	index int
	isIdx bool
}

func (c *Comparer) walk(d *diffs, path []pathElem, a, b any) {
	if len(c.ignore) > 0 && c.ignored(elemStrings(path)) {
		return
	}
	ta, tb := typeOf(a), typeOf(b)
	if ta != tb {
		d.add(KindTypeChanged, formatPath(path), render(a), render(b))
		return
	}
	switch va := a.(type) {
	case jsonpath.Object:
		vb := b.(jsonpath.Object)
		seen := make(map[string]bool, len(va))
		for _, kv := range va {
			if seen[kv.Key] {
				continue
			}
			seen[kv.Key] = true
			child := append(path[:len(path):len(path)], pathElem{name: kv.Key})
			if w, ok := vb.Get(kv.Key); ok {
				c.walk(d, child, kv.Value, w)
			} else if len(c.ignore) == 0 || !c.ignored(elemStrings(child)) {
				d.add(KindFieldRemoved, formatPath(child), render(kv.Value), "")
			}
		}
		for _, kv := range vb {
			if seen[kv.Key] {
				continue
			}
			seen[kv.Key] = true
			child := append(path[:len(path):len(path)], pathElem{name: kv.Key})
			if len(c.ignore) == 0 || !c.ignored(elemStrings(child)) {
				d.add(KindFieldAdded, formatPath(child), "", render(kv.Value))
			}
		}
	case []any:
		vb := b.([]any)
		for i := 0; i < max(len(va), len(vb)); i++ {
			child := append(path[:len(path):len(path)], pathElem{index: i, isIdx: true})
			switch {
			case i < len(va) && i < len(vb):
				c.walk(d, child, va[i], vb[i])
			case len(c.ignore) > 0 && c.ignored(elemStrings(child)):
			case i < len(va):
				d.add(KindFieldRemoved, formatPath(child), render(va[i]), "")
			default:
				d.add(KindFieldAdded, formatPath(child), "", render(vb[i]))
			}
		}
	case json.Number:
		if !numbersEqual(va, b.(json.Number), c.cfg.Tolerance) {
			d.add(KindFieldChanged, formatPath(path), render(a), render(b))
		}
	default:
		if a != b {
			d.add(KindFieldChanged, formatPath(path), render(a), render(b))
		}
	}
}

func typeOf(v any) string {
	switch v.(type) {
	case jsonpath.Object:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// numbersEqual applies the tolerance rule of the package doc.
func numbersEqual(a, b json.Number, tol float64) bool {
	if a == b {
		return true
	}
	fa, errA := strconv.ParseFloat(string(a), 64)
	fb, errB := strconv.ParseFloat(string(b), 64)
	if errA != nil || errB != nil {
		return false // out of float64 range and textually different
	}
	if tol == 0 {
		if isInteger(string(a)) && isInteger(string(b)) {
			return strings.TrimPrefix(string(a), "-") == "0" && strings.TrimPrefix(string(b), "-") == "0"
		}
		return fa == fb
	}
	diff := math.Abs(fa - fb)
	return diff <= tol || diff <= tol*math.Max(math.Abs(fa), math.Abs(fb))
}

func isInteger(s string) bool {
	s = strings.TrimPrefix(s, "-")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func elemStrings(path []pathElem) []string {
	out := make([]string, len(path))
	for i, e := range path {
		if e.isIdx {
			out[i] = strconv.Itoa(e.index)
		} else {
			out[i] = e.name
		}
	}
	return out
}

// formatPath renders a concrete path: $.name for plain names, $['name'] for
// others, [N] for indexes. FoldPath reads this form back.
func formatPath(path []pathElem) string {
	var sb strings.Builder
	sb.WriteByte('$')
	for _, e := range path {
		switch {
		case e.isIdx:
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(e.index))
			sb.WriteByte(']')
		case plainName(e.name):
			sb.WriteByte('.')
			sb.WriteString(e.name)
		default:
			sb.WriteString("['")
			for i := 0; i < len(e.name); i++ {
				if e.name[i] == '\'' || e.name[i] == '\\' {
					sb.WriteByte('\\')
				}
				sb.WriteByte(e.name[i])
			}
			sb.WriteString("']")
		}
	}
	return sb.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// render gives a short JSON rendering of v.
func render(v any) string {
	b, err := jsonpath.Encode(v)
	if err != nil {
		return clipString(fmt.Sprint(v))
	}
	return clipString(string(b))
}

// clipString shortens s to about maxRender bytes on a rune boundary.
func clipString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxRender {
		return s
	}
	cut := maxRender
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// byteContext renders the bytes of b around off as
// `@OFF/LEN "…context…"`.
func byteContext(b []byte, off int) string {
	lo := max(0, off-contextBefore)
	hi := min(len(b), off+contextAfter)
	q := strconv.Quote(string(b[lo:hi]))
	pre, post := "", ""
	if lo > 0 {
		pre = "…"
	}
	if hi < len(b) {
		post = "…"
	}
	return fmt.Sprintf("@%d/%d %s%s%s", off, len(b), pre, q, post)
}
