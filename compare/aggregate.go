package compare

import (
	"bytes"
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/replayctl/replayctl/httpraw"
)

// Aggregator bounds.
const (
	// MaxExampleBytes bounds each body (and request head) kept in an example.
	MaxExampleBytes = 4 << 10
	// MaxExamples is the number of mismatch examples kept per endpoint.
	MaxExamples = 3
	// MaxTopFields is the number of fields listed per endpoint.
	MaxTopFields = 10
	// MaxExampleDiffs bounds the diffs kept per example.
	MaxExampleDiffs = 20
	// MaxEndpoints bounds distinct endpoints; later ones are counted under
	// OtherEndpoint.
	MaxEndpoints = 1000
	// maxFieldsPerEndpoint bounds the distinct fields counted per endpoint;
	// later ones are counted under otherField.
	maxFieldsPerEndpoint = 1000
	// OtherEndpoint collects endpoints beyond MaxEndpoints.
	OtherEndpoint = "(other endpoints)"
	otherField    = "(other fields)"
)

// DiffSummary is the "diff" section of the JSON report.
type DiffSummary struct {
	// Compared counts compared responses.
	Compared int64 `json:"compared"`
	// Mismatches counts responses with at least one regression.
	Mismatches int64 `json:"mismatches"`
	// Rate is Mismatches / Compared (0 when nothing was compared).
	Rate float64 `json:"mismatch_rate"`
	// NoiseDiffs counts diffs classified as noise.
	NoiseDiffs int64 `json:"noise_diffs"`
	// NoiseFields lists, sorted, "<endpoint> <field>" for every field seen
	// as noise (field as FieldKey names it).
	NoiseFields []string `json:"noise_fields"`
	// Endpoints is sorted by mismatches (most first), then by name.
	Endpoints []EndpointSummary `json:"endpoints"`
}

// EndpointSummary aggregates one endpoint.
type EndpointSummary struct {
	Endpoint   string  `json:"endpoint"`
	Requests   int64   `json:"requests"`
	Mismatches int64   `json:"mismatches"`
	Rate       float64 `json:"mismatch_rate"`
	NoiseDiffs int64   `json:"noise_diffs"`
	// TopFields lists the fields with regressions, most frequent first, at
	// most MaxTopFields.
	TopFields []FieldCount `json:"top_fields"`
	// Examples holds the first MaxExamples mismatches.
	Examples []Example `json:"examples"`
}

// FieldCount is how many responses differed on one field.
type FieldCount struct {
	// Field is named as FieldKey names it (array indexes folded).
	Field string `json:"field"`
	Count int64  `json:"count"`
}

// Example is one mismatching response pair. Texts are truncated to
// MaxExampleBytes (then Truncated is set) and made valid UTF-8.
type Example struct {
	// Request is the request's head (request line and headers) as sent,
	// after the rewrites; the engine masks its credentials (see
	// engine.maskHead).
	Request        string `json:"request"`
	RecordedStatus int    `json:"recorded_status"`
	ReplayedStatus int    `json:"replayed_status"`
	// RecordedBody and ReplayedBody are the decoded bodies (the raw
	// response when it does not parse).
	RecordedBody string `json:"recorded_body"`
	ReplayedBody string `json:"replayed_body"`
	Truncated    bool   `json:"truncated"`
	// Diffs are the regressions, at most MaxExampleDiffs.
	Diffs []Diff `json:"diffs"`
	// Noise are the diffs classified as noise, at most MaxExampleDiffs.
	Noise []Diff `json:"noise,omitempty"`
}

type endpointAgg struct {
	requests, mismatches, noise int64
	fields                      map[string]int64
	noiseFields                 map[string]bool
	examples                    []Example
}

// Aggregator accumulates comparison results per endpoint; it is safe for
// concurrent use.
type Aggregator struct {
	mu        sync.Mutex
	compared  int64
	mismatch  int64
	noise     int64
	endpoints map[string]*endpointAgg
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	return &Aggregator{endpoints: make(map[string]*endpointAgg)}
}

// Add records one comparison. res is the Comparer's Result (or one holding
// only the regressions); noise holds the diffs NoiseFilter classified as
// noise (nil without a noise filter). A diff of res also present in noise
// (same kind and path) counts as noise; the response is a mismatch when any
// other diff remains or res.Omitted > 0 (omitted diffs are unclassified).
// recordedReq (the raw request), recorded and replayed (raw responses) are
// kept only for the first MaxExamples mismatches.
func (a *Aggregator) Add(endpoint string, recordedReq []byte, recorded, replayed []byte, res Result, noise []Diff) {
	var regs []Diff
	for _, d := range res.Diffs {
		if !containsDiff(noise, d) {
			regs = append(regs, d)
		}
	}
	mismatch := len(regs) > 0 || res.Omitted > 0 // omitted diffs are not classified

	a.mu.Lock()
	defer a.mu.Unlock()
	e := a.endpoints[endpoint]
	if e == nil {
		if len(a.endpoints) >= MaxEndpoints {
			endpoint = OtherEndpoint
			e = a.endpoints[endpoint]
		}
		if e == nil {
			e = &endpointAgg{fields: make(map[string]int64), noiseFields: make(map[string]bool)}
			a.endpoints[endpoint] = e
		}
	}
	a.compared++
	e.requests++
	a.noise += int64(len(noise))
	e.noise += int64(len(noise))
	for _, d := range noise {
		k := FieldKey(d)
		if e.noiseFields[k] || len(e.noiseFields) < maxFieldsPerEndpoint {
			e.noiseFields[k] = true
		}
	}
	if !mismatch {
		return
	}
	a.mismatch++
	e.mismatches++
	seen := make(map[string]bool, len(regs))
	for _, d := range regs {
		k := FieldKey(d)
		if seen[k] {
			continue // count responses, not array elements
		}
		seen[k] = true
		if _, ok := e.fields[k]; !ok && len(e.fields) >= maxFieldsPerEndpoint {
			k = otherField
		}
		e.fields[k]++
	}
	if len(e.examples) < MaxExamples {
		e.examples = append(e.examples, makeExample(recordedReq, recorded, replayed, regs, noise))
	}
}

func containsDiff(list []Diff, d Diff) bool {
	for _, n := range list {
		if n.Kind == d.Kind && n.Path == d.Path {
			return true
		}
	}
	return false
}

func makeExample(req, recorded, replayed []byte, regs, noise []Diff) Example {
	ex := Example{
		Diffs: slices.Clone(regs[:min(len(regs), MaxExampleDiffs)]),
		Noise: slices.Clone(noise[:min(len(noise), MaxExampleDiffs)]),
	}
	if ex.Diffs == nil {
		ex.Diffs = []Diff{}
	}
	head := req
	if i := bytes.Index(req, []byte("\r\n\r\n")); i >= 0 {
		head = req[:i]
	} else if i := bytes.Index(req, []byte("\n\n")); i >= 0 {
		head = req[:i]
	}
	var t1, t2, t3 bool
	ex.Request, t1 = exampleText(head)
	ex.RecordedStatus, ex.RecordedBody, t2 = exampleBody(recorded)
	ex.ReplayedStatus, ex.ReplayedBody, t3 = exampleBody(replayed)
	ex.Truncated = t1 || t2 || t3
	return ex
}

func exampleBody(raw []byte) (int, string, bool) {
	r, err := httpraw.ParseResponse(raw)
	if err != nil {
		s, t := exampleText(raw)
		return 0, s, t
	}
	b, err := body(r)
	if err != nil {
		b = r.Body()
	}
	s, t := exampleText(b)
	return r.StatusCode(), s, t
}

func exampleText(b []byte) (string, bool) {
	trunc := len(b) > MaxExampleBytes
	if trunc {
		b = b[:MaxExampleBytes]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), trunc
}

// Summary returns a snapshot of the aggregate.
func (a *Aggregator) Summary() DiffSummary {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := DiffSummary{
		Compared:    a.compared,
		Mismatches:  a.mismatch,
		Rate:        ratio(a.mismatch, a.compared),
		NoiseDiffs:  a.noise,
		NoiseFields: []string{},
		Endpoints:   make([]EndpointSummary, 0, len(a.endpoints)),
	}
	for name, e := range a.endpoints {
		es := EndpointSummary{
			Endpoint:   name,
			Requests:   e.requests,
			Mismatches: e.mismatches,
			Rate:       ratio(e.mismatches, e.requests),
			NoiseDiffs: e.noise,
			TopFields:  make([]FieldCount, 0, len(e.fields)),
			Examples:   slices.Clone(e.examples),
		}
		if es.Examples == nil {
			es.Examples = []Example{}
		}
		for k, n := range e.fields {
			es.TopFields = append(es.TopFields, FieldCount{Field: k, Count: n})
		}
		slices.SortFunc(es.TopFields, func(x, y FieldCount) int {
			return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Field, y.Field))
		})
		es.TopFields = es.TopFields[:min(len(es.TopFields), MaxTopFields)]
		for k := range e.noiseFields {
			s.NoiseFields = append(s.NoiseFields, name+" "+k)
		}
		s.Endpoints = append(s.Endpoints, es)
	}
	slices.Sort(s.NoiseFields)
	slices.SortFunc(s.Endpoints, func(x, y EndpointSummary) int {
		return cmp.Or(cmp.Compare(y.Mismatches, x.Mismatches), cmp.Compare(x.Endpoint, y.Endpoint))
	})
	return s
}

func ratio(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}
