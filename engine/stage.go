package engine

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/vm"

	"github.com/replayctl/replayctl/report"

	"github.com/replayctl/replayctl/exprenv"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/rewrite"
	"github.com/replayctl/replayctl/sample"
	"github.com/replayctl/replayctl/scenario"
)

// counters are a job's named counts, safe for concurrent use.
type counters struct {
	mu sync.Mutex
	m  map[string]int64
}

func newCounters() *counters { return &counters{m: map[string]int64{}} }

func (c *counters) add(name string, n int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] += n
	return c.m[name]
}

// addAll adds another component's counters under a prefix, summing them
// over the passes of a looped replay.
func (c *counters) addAll(prefix string, m map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range m {
		report.AddCounter(c.m, prefix+k, v)
	}
}

// merge sets another component's counters under a prefix ("source.", "sink.").
func (c *counters) merge(prefix string, m map[string]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range m {
		c.m[prefix+k] = v
	}
}

func (c *counters) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.m)
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// requestStage filters, samples and rewrites requests. It runs on the
// source's goroutine.
type requestStage struct {
	filter   *vm.Program
	percent  float64 // 0: no sampling
	sampleBy *vm.Program
	chain    []rewrite.Action
	needJSON bool
	getenv   func(string) string // env("NAME"): the scenario's --env-file, then the process environment
	c        *counters
	log      *slog.Logger
	hostSet  bool // the last request's Host was set by the chain (see processHost)
}

func newRequestStage(scn *scenario.Scenario, j *scenario.Job, acts []rewrite.Action, c *counters, log *slog.Logger) *requestStage {
	st := &requestStage{chain: acts, getenv: scn.Getenv, c: c, log: log}
	exprs := []*scenario.Expr{j.Filter}
	if j.Filter != nil {
		st.filter = j.Filter.Program
	}
	if j.Sample != nil {
		st.percent = j.Sample.Percent
		if j.Sample.By != nil {
			st.sampleBy = j.Sample.By.Program
			exprs = append(exprs, j.Sample.By)
		}
	}
	for _, rw := range j.Rewrite {
		exprs = append(exprs, rw.Value, rw.If)
	}
	for _, e := range exprs {
		if e != nil && exprenv.UsesJSON(e.Program) {
			st.needJSON = true
		}
	}
	return st
}

// active reports whether the stage does anything.
func (st *requestStage) active() bool {
	return st.filter != nil || st.percent > 0 || len(st.chain) > 0
}

// stageErrors are the counters of the requests a job's stages dropped
// because the request or an expression failed on it, not by the
// scenario's choice (filter, sample, drop): what a record job did not
// record and a replay did not send. What says why, of the requests.
var stageErrors = []struct{ counter, what string }{
	{"unparsable-requests", "they cannot be parsed as HTTP requests"},
	{"filter-errors", "the filter failed on them"},
	{"sample-errors", "the sample key failed on them"},
	{"rewrite-errors", "the rewrite failed on them"},
}

// undecodable are the counters of a replay's input that does not decode,
// by cause: not sent, and a loss as stageErrors are.
var undecodable = []struct{ counter, cause, what string }{
	{"source.bad-records", "bad-records", "records of the window that are not GoReplay messages"},
	{"source.bad-payloads", "bad-payloads", "payloads of the .gor file that do not decode"},
}

// droppedOnError counts the requests the stages dropped on errors
// (stageErrors), the input that does not decode, and the requests a live
// capture's stop cut, among a replay's counters.
func droppedOnError(counters map[string]int64) int64 {
	var n int64
	for _, se := range stageErrors {
		n += counters[se.counter]
	}
	for _, u := range undecodable {
		n += counters[u.counter]
	}
	return n + counters[notSentAtStop]
}

// warn logs the first few occurrences of a counted problem.
func (st *requestStage) warn(counter, msg string, args ...any) {
	if st.c.add(counter, 1) <= 5 {
		st.log.Warn(msg, args...)
	}
}

// warnRequest is warn for an error about request m: its text is logged
// with the request's values masked (scrubRequestValues).
func (st *requestStage) warnRequest(counter, msg string, m *message.Message, err error, args ...any) {
	if st.c.add(counter, 1) <= 5 {
		st.log.Warn(msg, append([]any{"id", m.ID, "err", scrubRequestValues(err.Error(), m.Raw)}, args...)...)
	}
}

// process returns the request bytes to send, or keep=false when the request
// is filtered out, sampled out, dropped by a rewrite, or cannot be processed
// (each counted).
func (st *requestStage) process(m *message.Message) (raw []byte, keep bool) {
	if !st.active() {
		return m.Raw, true
	}
	var env *exprenv.RequestEnv
	if st.filter != nil || st.sampleBy != nil {
		r, err := httpraw.ParseRequest(m.Raw)
		if err != nil {
			st.warnRequest("unparsable-requests", "request cannot be parsed; dropped", m, err)
			return nil, false
		}
		e := requestEnv(r, m, st.needJSON, st.getenv)
		env = &e
	}
	if st.filter != nil {
		out, err := expr.Run(st.filter, *env)
		if err != nil {
			st.warnRequest("filter-errors", "filter failed; request dropped", m, err)
			return nil, false
		}
		if ok, _ := out.(bool); !ok {
			st.c.add("filtered", 1)
			return nil, false
		}
	}
	if st.percent > 0 {
		// A connection's requests are kept or dropped together; a .gor
		// file names no connection (nor a window recorded from one):
		// then each request is sampled on its own.
		key, sampled := m.ConnID, true
		if key == "" {
			key = m.ID
		}
		if st.sampleBy != nil {
			out, err := expr.Run(st.sampleBy, *env)
			if err != nil {
				st.warnRequest("sample-errors", "sample key failed; request dropped", m, err)
				return nil, false
			}
			switch v := out.(type) {
			case nil:
				sampled = false // no key: the request is not sampled, it is kept
			case string:
				// "" is no key either: req.header of a header the request
				// lacks. Hashed, it put every such request in one bucket,
				// kept or dropped together (percent 90 could send none).
				key, sampled = v, v != ""
			default:
				key = fmt.Sprint(v)
			}
		}
		if sampled && !sample.Keep(key, st.percent) {
			st.c.add("sampled-out", 1)
			return nil, false
		}
	}
	if len(st.chain) == 0 {
		return m.Raw, true
	}
	chain := rewrite.Chain{
		Actions: st.chain,
		Env:     func(r *httpraw.Request) any { return requestEnv(r, m, st.needJSON, st.getenv) },
		OnNotJSON: func(a rewrite.Action, err error) {
			st.warnRequest("rewrite-skipped-not-json", "body is not JSON; rewrite step skipped", m, err, "action", a.String())
		},
		OnNoMatch: func(a rewrite.Action) {
			st.warn("rewrite-set-json-no-match", "set-json's path matches nothing in the body, and it creates members only along plain names ($.a.b); rewrite step skipped", "id", m.ID, "action", a.String())
		},
	}
	out, hostSet, dropped, err := chain.ApplyHost(m.Raw)
	st.hostSet = hostSet
	switch {
	case err != nil:
		st.warnRequest("rewrite-errors", "rewrite failed; request dropped", m, err)
		return nil, false
	case dropped:
		st.c.add("dropped", 1)
		return nil, false
	}
	return out, true
}

// processHost is process that also reports whether the rewrite chain set
// the request's Host (set-host, set-header Host): a replay sends that Host,
// not the target's.
func (st *requestStage) processHost(m *message.Message) (raw []byte, keep, hostSet bool) {
	st.hostSet = false
	raw, keep = st.process(m)
	return raw, keep, keep && st.hostSet
}
