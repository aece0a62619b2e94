package serve

import (
	"container/list"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/replayctl/replayctl/fleet"
)

// verdictCacheSize bounds the verdicts a serve keeps (verdictCache): at
// 4096, a few hundred KiB. GET /v1/jobs verifies at most a page (500
// specs) per request, so a page's verdicts always fit.
const verdictCacheSize = 4096

// verdict is what verifying a job's spec said: whether it verified, the
// signing key's fingerprint, and why not.
type verdict struct {
	verified bool
	signer   string
	why      string
}

// verdictKey names one verification: the sha256 of the job ID, every field
// of the envelope that Open reads (type, payload, key, signature) and the
// keys trusted at the time, each prefixed with its length. Another
// envelope, even republished at the same offset or under the same job, or
// another set of keys, is another key: its spec is verified afresh.
type verdictKey [sha256.Size]byte

func verdictKeyOf(id string, env fleet.Envelope, trusted []ed25519.PublicKey) verdictKey {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field([]byte(id))
	field([]byte(env.Type))
	field(env.Payload)
	field(env.Key)
	field(env.Signature)
	for _, k := range trusted {
		field(k)
	}
	var out verdictKey
	h.Sum(out[:0])
	return out
}

// verdictCache keeps the latest verdictCacheSize verdicts, least recently
// used evicted first, refusals as well as verified specs: a spec is
// verified once per process, however often it is listed, and a flood of
// forged specs costs what it costs without the cache, never more memory.
// The zero value is ready to use.
type verdictCache struct {
	mu    sync.Mutex
	max   int // verdictCacheSize when zero (tests set less)
	order *list.List
	byKey map[verdictKey]*list.Element

	// What it did, for /metrics: signatures checked (every verdict not
	// found), verdicts found, verdicts evicted.
	checks, hits, evicted atomic.Int64
}

type verdictEntry struct {
	key verdictKey
	v   verdict
}

// get returns a kept verdict and marks it used.
func (c *verdictCache) get(k verdictKey) (verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byKey[k]
	if !ok {
		return verdict{}, false
	}
	c.order.MoveToFront(e)
	c.hits.Add(1)
	return e.Value.(*verdictEntry).v, true
}

// put keeps a verdict, evicting the least recently used beyond the bound.
func (c *verdictCache) put(k verdictKey, v verdict) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byKey == nil {
		c.order, c.byKey = list.New(), map[verdictKey]*list.Element{}
	}
	if e, ok := c.byKey[k]; ok {
		e.Value.(*verdictEntry).v = v
		c.order.MoveToFront(e)
		return
	}
	c.byKey[k] = c.order.PushFront(&verdictEntry{key: k, v: v})
	limit := c.max
	if limit <= 0 {
		limit = verdictCacheSize
	}
	for c.order.Len() > limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*verdictEntry).key)
		c.evicted.Add(1)
	}
}

// len is the number of verdicts kept.
func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.order == nil {
		return 0
	}
	return c.order.Len()
}
