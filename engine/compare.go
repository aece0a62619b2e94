package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/replayctl/replayctl/compare"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/httpsink"
)

// maxPendingCompares and maxPendingBytes bound the requests waiting for
// their recorded, replayed (and reference) responses; beyond them
// comparisons are skipped and counted.
const (
	maxPendingCompares = 100_000
	maxPendingBytes    = 256 << 20
)

// The two reference answers of a request carry its ID with these suffixes.
const (
	refSuffixA = "\x00ref-a"
	refSuffixB = "\x00ref-b"
)

// comparison joins, per request ID, the recorded response (from the
// source), the replayed response (from the target) and, with a noise
// target, two answers of the reference target to the same request; when all
// have arrived it compares them. Fields that differ between the two
// reference answers are noise for the request's endpoint (they change
// between two replays of the same request against the same target), so the
// same fields differing between the recording and the replay are not
// regressions. Everything it skips is counted.
type comparison struct {
	cmp   *compare.Comparer
	noise *compare.NoiseFilter // nil without a noise target
	agg   *compare.Aggregator
	ref   replaySender // the noise target's sender
	c     *counters

	mu        sync.Mutex
	pending   map[string]*pendingCompare
	bytes     int64  // held by pending
	discarded *idSet // requests not sent: their recorded responses are not kept
	// sentHost is the Host the sender puts on the requests (its one
	// target's), for the examples' heads to show the request as sent;
	// empty when the Host is kept (preserve-host, several targets).
	sentHost string
}

type pendingCompare struct {
	endpoint  string
	path      string // the request path (gRPC: the method)
	head      []byte // the request head, for examples
	recorded  []byte
	cut       bool // the recorded body was cut when recorded
	replayed  []byte
	repCut    bool    // the replayed body was cut by the sender (KeepLimit)
	refCut    [2]bool // the reference answers' bodies were cut so
	reference [2][]byte
	gotRep    bool
	refs      int  // reference answers arrived (0–2); 2 without a noise target
	failed    bool // no usable replayed or reference response
}

func (p *pendingCompare) size() int64 {
	return int64(len(p.head) + len(p.recorded) + len(p.replayed) + len(p.reference[0]) + len(p.reference[1]))
}

// newComparison returns nil when the job does not compare.
func newComparison(r *runner, j *scenario.Job, c *counters) (*comparison, error) {
	cfgIn := j.Compare
	if cfgIn == nil {
		return nil, nil
	}
	cmp, err := compare.New(compare.Config{Status: cfgIn.Status, Headers: cfgIn.Headers, Body: cfgIn.Body, Ignore: cfgIn.Ignore, Tolerance: cfgIn.Tolerance,
		GRPCDescriptors: cfgIn.GRPCDescriptors.Abs})
	if err != nil {
		return nil, invalidf("%s: compare: %w", j.Pos, err)
	}
	co := &comparison{cmp: cmp, agg: compare.NewAggregator(), c: c, pending: map[string]*pendingCompare{}, discarded: newIDSet(100_000)}
	if t := cfgIn.Noise; t != nil {
		u, err := r.targetURL(t)
		if err != nil {
			return nil, err
		}
		co.noise = compare.NewNoiseFilter()
		co.ref, err = newReplaySender(j.Sink.HTTP, httpsink.Config{
			Targets:      []httpsink.Target{sinkTarget(t, u, t.Timeout)},
			Workers:      j.Sink.HTTP.Workers,
			PreserveHost: j.Sink.HTTP.PreserveHost,
			KeepResponse: true,
			OnResult:     co.referenced,
		}, nil, r.log)
		if err != nil {
			return nil, fmt.Errorf("%s: noise target: %w", t.Pos, err)
		}
	}
	return co, nil
}

// entry returns the pending comparison for id, creating it; nil when the
// table is full.
func (co *comparison) entry(id string) *pendingCompare {
	p, ok := co.pending[id]
	if !ok {
		if len(co.pending) >= maxPendingCompares || co.bytes >= maxPendingBytes {
			co.c.add("compare-skipped-overflow", 1)
			return nil
		}
		p = &pendingCompare{}
		co.pending[id] = p
	}
	return p
}

// sent registers a request about to be sent (and sends it to the noise
// target, keepHost as to the targets).
func (co *comparison) sent(ctx context.Context, m *message.Message, raw []byte, keepHost bool) error {
	method, path := "?", "?"
	if r, err := httpraw.ParseRequest(raw); err == nil {
		method, path = r.Method(), r.Path()
	}
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i]
	}
	co.mu.Lock()
	if p := co.entry(m.ID); p != nil && p.endpoint == "" {
		p.endpoint = compare.Endpoint(method, path)
		p.path = path
		if co.sentHost != "" && !keepHost {
			head = withHost(head, co.sentHost)
		}
		p.head = maskHead(head)
		co.bytes += int64(len(p.head))
		if co.ref == nil {
			p.refs = 2
		}
	}
	co.mu.Unlock()
	if co.ref == nil {
		return nil
	}
	for _, suffix := range []string{refSuffixA, refSuffixB} {
		if err := co.ref.Send(ctx, httpsink.Request{Raw: raw, KeepHost: keepHost, ConnID: m.ConnID + suffix, ID: m.ID + suffix}); err != nil {
			return err
		}
	}
	return nil
}

// discard notes a request that is not sent (filtered, sampled out,
// dropped): its recorded response is not kept.
func (co *comparison) discard(m *message.Message) {
	co.mu.Lock()
	defer co.mu.Unlock()
	co.discarded.add(m.ID)
}

// recorded registers a recorded response.
func (co *comparison) recorded(m *message.Message) {
	if m.Kind != message.Response {
		return
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	if co.discarded.take(m.ID) {
		co.c.add("compare-responses-of-unsent-requests", 1)
		return
	}
	if p := co.entry(m.ID); p != nil && p.recorded == nil {
		p.recorded, p.cut = bytes.Clone(m.Raw), m.Truncated
		co.bytes += int64(len(p.recorded))
		co.ready(m.ID, p)
	}
}

// replayed registers the target's answer (the first one, with amplify).
func (co *comparison) replayed(res httpsink.Result) {
	co.mu.Lock()
	defer co.mu.Unlock()
	p := co.entry(res.ID)
	if p == nil || p.gotRep {
		return
	}
	p.gotRep = true
	if res.Err != nil || res.Response == nil {
		p.failed = true
		co.c.add("compare-skipped-errors", 1)
	} else {
		p.replayed, p.repCut = res.Response, res.ResponseTruncated
		co.bytes += int64(len(p.replayed))
	}
	co.ready(res.ID, p)
}

// referenced registers one of the noise target's two answers.
func (co *comparison) referenced(res httpsink.Result) {
	id, which := strings.TrimSuffix(res.ID, refSuffixA), 0
	if id == res.ID {
		id, which = strings.TrimSuffix(res.ID, refSuffixB), 1
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	p := co.entry(id)
	if p == nil || p.reference[which] != nil || p.refs >= 2 {
		return
	}
	p.refs++
	if res.Err != nil || res.Response == nil {
		p.failed = true
		co.c.add("compare-skipped-reference-errors", 1)
	} else {
		p.reference[which], p.refCut[which] = res.Response, res.ResponseTruncated
		co.bytes += int64(len(res.Response))
	}
	co.ready(id, p)
}

// ready compares once every part has arrived. Called with mu held.
func (co *comparison) ready(id string, p *pendingCompare) {
	if p.endpoint == "" || p.recorded == nil || !p.gotRep || p.refs < 2 {
		return
	}
	delete(co.pending, id)
	co.bytes -= p.size()
	if p.failed {
		return
	}
	// A body cut when recorded, or cut by the sender past its KeepLimit,
	// is no answer to compare a body with: status and headers only,
	// counted.
	if p.cut {
		co.c.add("compare-bodies-cut-when-recorded", 1)
	}
	if p.repCut {
		co.c.add("compare-bodies-cut-when-replayed", 1)
	}
	res := co.cmp.CompareCuts(p.path, p.recorded, p.replayed, p.cut, p.repCut)
	var noise []compare.Diff
	if co.noise != nil {
		co.noise.Learn(p.endpoint, co.cmp.CompareCuts(p.path, p.reference[0], p.reference[1], p.refCut[0], p.refCut[1]))
		var regs []compare.Diff
		regs, noise = co.noise.Classify(p.endpoint, res)
		res = compare.Result{Match: len(regs) == 0 && res.Omitted == 0, Diffs: regs, Omitted: res.Omitted}
	}
	co.agg.Add(p.endpoint, p.head, p.recorded, p.replayed, res, noise)
}

// finish waits for the noise target, counts what was never compared and
// returns the diff summary.
func (co *comparison) finish(ctx context.Context) *compare.DiffSummary {
	if co.ref != nil {
		_ = co.ref.Close(ctx)
		co.c.merge("noise.", co.ref.Stats())
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	for _, p := range co.pending {
		switch {
		case p.endpoint == "":
			co.c.add("compare-responses-of-unsent-requests", 1)
		case p.recorded == nil:
			co.c.add("compare-no-recorded-response", 1)
		default:
			co.c.add("compare-incomplete", 1)
		}
	}
	co.pending = nil
	if co.noise != nil {
		if n := co.noise.Dropped(); n > 0 {
			co.c.add("compare-noise-fields-over-limit", n)
		}
	}
	s := co.agg.Summary()
	return &s
}

// withHost returns a copy of a request head with its Host field's value
// host, as the sender retargets it.
func withHost(head []byte, host string) []byte {
	lines := bytes.Split(head, []byte("\n"))
	for i, l := range lines[1:] {
		if name, _, ok := bytes.Cut(l, []byte(":")); ok && strings.EqualFold(string(name), "host") {
			cr := bytes.HasSuffix(l, []byte("\r"))
			l = append([]byte("Host: "), host...)
			if cr {
				l = append(l, '\r')
			}
			lines[i+1] = l
		}
	}
	return bytes.Join(lines, []byte("\n"))
}

// maskHead returns a copy of a request head for a diff example, with the
// values of credential headers (scenario.SecretName: Authorization, Cookie,
// X-Api-Key, any name holding token, secret, key, auth, …) and of secret
// query parameters masked as the plan masks them: the head is the request
// as sent, after the rewrites that put working credentials back in.
func maskHead(head []byte) []byte {
	lines := strings.Split(string(head), "\n")
	for i, l := range lines {
		cr := strings.HasSuffix(l, "\r")
		l = strings.TrimSuffix(l, "\r")
		if i == 0 {
			if method, rest, ok := strings.Cut(l, " "); ok {
				target, proto, _ := strings.Cut(rest, " ")
				l = method + " " + scenario.MaskURL(target)
				if proto != "" {
					l += " " + proto
				}
			}
		} else if name, value, ok := strings.Cut(l, ":"); ok && scenario.SecretName(name) {
			l = name + ": " + scenario.MaskCredential(strings.TrimSpace(value))
		}
		if cr {
			l += "\r"
		}
		lines[i] = l
	}
	return []byte(strings.Join(lines, "\n"))
}
