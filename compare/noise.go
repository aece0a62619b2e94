package compare

import (
	"slices"
	"strings"
	"sync"
)

// maxNoisyFields bounds the noisy fields remembered per endpoint.
const maxNoisyFields = 1000

// NoiseFilter tells noise from regressions, after Diffy. Each request is
// also sent to a reference target running the same code as production;
// comparing the recorded (production) response with the reference's answer
// gives a reference Result whose diffs cannot come from a code change: they
// are noise (timestamps, request IDs, random order…).
//
// The rule, per endpoint (see Endpoint):
//
//   - Learn marks as noisy the field of every diff of a reference Result,
//     except unparsable ones: a body diff (any body-field-* or
//     body-type-changed kind) by its path with array indexes folded to [*]
//     ($.items[3].at → $.items[*].at); a header by its name
//     (case-insensitive); the status; the whole body for a body-bytes diff.
//   - Classify puts a diff into noise when its field is noisy for the
//     endpoint, or for a body path, when it lies below a noisy path
//     ($.meta noisy makes $.meta.ts noise, not the other way round).
//     Everything else, and every unparsable diff, is a regression.
//
// Learn the reference Result of a request before classifying the
// candidate's Result of the same request: noise accumulates, so later
// requests benefit from what earlier ones taught. At most 1000 noisy fields
// are kept per endpoint. A NoiseFilter is safe for concurrent use.
type NoiseFilter struct {
	mu    sync.Mutex
	noisy map[string]map[string]bool // endpoint → field key
	extra int64                      // fields beyond the bound
}

// NewNoiseFilter returns an empty NoiseFilter.
func NewNoiseFilter() *NoiseFilter {
	return &NoiseFilter{noisy: make(map[string]map[string]bool)}
}

// Learn records the fields that differ in reference, the comparison of the
// recorded response with the reference target's answer, as noisy for
// endpoint.
func (n *NoiseFilter) Learn(endpoint string, reference Result) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, d := range reference.Diffs {
		k, ok := fieldKey(d)
		if !ok {
			continue
		}
		m := n.noisy[endpoint]
		if m == nil {
			m = make(map[string]bool)
			n.noisy[endpoint] = m
		}
		if !m[k] && len(m) >= maxNoisyFields {
			n.extra++
			continue
		}
		m[k] = true
	}
}

// Classify splits the diffs of r, a candidate's Result for endpoint, into
// regressions and noise by the rule in the type doc.
func (n *NoiseFilter) Classify(endpoint string, r Result) (regressions, noise []Diff) {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := n.noisy[endpoint]
	for _, d := range r.Diffs {
		if n.isNoise(m, d) {
			noise = append(noise, d)
		} else {
			regressions = append(regressions, d)
		}
	}
	return regressions, noise
}

func (n *NoiseFilter) isNoise(m map[string]bool, d Diff) bool {
	k, ok := fieldKey(d)
	if !ok || len(m) == 0 {
		return false
	}
	if m[k] {
		return true
	}
	if !strings.HasPrefix(k, "$") {
		return false
	}
	for p := range m {
		if strings.HasPrefix(p, "$") && len(k) > len(p) && strings.HasPrefix(k, p) &&
			(k[len(p)] == '.' || k[len(p)] == '[') {
			return true
		}
	}
	return false
}

// Fields returns the noisy fields learned for endpoint, sorted: folded JSON
// paths, "header:<name>" (lower case), "status" and "body".
func (n *NoiseFilter) Fields(endpoint string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]string, 0, len(n.noisy[endpoint]))
	for k := range n.noisy[endpoint] {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Dropped counts noisy fields not remembered because an endpoint already
// had 1000.
func (n *NoiseFilter) Dropped() int64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.extra
}

// FieldKey names the field a diff is about, as NoiseFilter and Aggregator
// count it: a folded JSON path (FoldPath), "header:<name>" in lower case,
// "status", "body" (byte diff) or "unparsable:<side>".
func FieldKey(d Diff) string {
	if k, ok := fieldKey(d); ok {
		return k
	}
	return d.Kind + ":" + d.Path
}

func fieldKey(d Diff) (string, bool) {
	switch d.Kind {
	case KindStatus:
		return statusPath, true
	case KindHeader:
		return "header:" + strings.ToLower(d.Path), true
	case KindBodyBytes:
		return bodyPath, true
	case KindFieldAdded, KindFieldRemoved, KindFieldChanged, KindTypeChanged:
		return FoldPath(d.Path), true
	}
	return "", false
}

// FoldPath turns a concrete path from a Diff into a pattern: every array
// index becomes [*] ($.items[3].tags[0] → $.items[*].tags[*]). Quoted
// names are kept as they are.
func FoldPath(p string) string {
	var sb strings.Builder
	for i := 0; i < len(p); {
		c := p[i]
		if c != '[' {
			sb.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(p) && (p[i+1] == '\'' || p[i+1] == '"') {
			// Quoted name: copy through the closing quote and bracket.
			q := p[i+1]
			j := i + 2
			for j < len(p) && p[j] != q {
				if p[j] == '\\' {
					j++
				}
				j++
			}
			end := min(len(p), j+2) // quote and ']'
			sb.WriteString(p[i:end])
			i = end
			continue
		}
		j := i + 1
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		if j > i+1 && j < len(p) && p[j] == ']' {
			sb.WriteString("[*]")
			i = j + 1
			continue
		}
		sb.WriteByte(c)
		i++
	}
	return sb.String()
}
