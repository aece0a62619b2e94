package serve

import (
	"bytes"
	"container/list"
	"crypto/ed25519"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/replayctl/replayctl/fleet"
)

// specCacheSize bounds the spec records whose view a serve keeps
// (specCache): a view is a spec without its scenario text (its envelope is
// the bus's own bytes), some 2 KiB for a replay of two shards, so about 32
// MiB at most, beside the bus's copy of every record. A list request reads
// every spec record on the jobs topic (to show each job's latest): beyond
// this many, the least recently used are read again, as every record was
// before views were kept.
const specCacheSize = 16384

// verdict is what verifying a job's spec said: whether it verified, the
// signing key's fingerprint, and why not.
type verdict struct {
	verified bool
	signer   string
	why      string
}

// specRef names one record of the jobs topic. Kafka never changes a
// record once written, so what serve reads from one is kept under it.
type specRef struct {
	topic     string
	partition int32
	offset    int64
}

func refOf(jr fleet.JobRecord) specRef {
	return specRef{topic: fleet.JobsTopic, partition: jr.Partition, offset: jr.Offset}
}

// specView is what serve reads from one spec record: the spec decoded,
// its scenario text left out (the bulk of a spec, which no list shows:
// fullSpec reads it again), and once asked, whether its signature
// verified for the job its key names (checked, verdict).
type specView struct {
	spec    fleet.Spec
	bad     bool // the payload is not a spec
	checked bool
	verdict verdict
}

// specCache keeps the views of the latest specCacheSize spec records read,
// least recently used evicted first, forged specs as well as verified
// ones: a record is decoded and its signature checked once per process,
// however often it is listed, and a flood of forged specs costs what it
// costs without the cache, never more memory. A view is kept for the
// record as read (its key and envelope): the same offset read again with
// other bytes (a jobs topic deleted and created again) is read afresh.
// The keys a serve trusts never change while it runs, so a verdict kept
// stays true. The zero value is ready to use.
type specCache struct {
	mu    sync.Mutex
	max   int // specCacheSize when zero (tests set less)
	order *list.List
	byRef map[specRef]*list.Element

	// What it did, for /metrics: records decoded, signatures checked,
	// verdicts found kept, views evicted.
	reads, checks, hits, evicted atomic.Int64
}

type specEntry struct {
	ref  specRef
	key  string         // the record's
	env  fleet.Envelope // the record's, as read
	view specView
}

// read returns the view of a spec record, decoding it on first read.
func (c *specCache) read(jr fleet.JobRecord) specView {
	if v, ok := c.get(jr); ok {
		return v
	}
	var v specView
	c.reads.Add(1)
	if err := jsonUnmarshal(jr.Envelope.Payload, &v.spec); err != nil {
		v.bad = true
	}
	v.spec.Scenario = ""
	c.put(jr, v)
	return v
}

// judged returns the view of a spec record with its verdict: checked as an
// agent would (checkSpec), against trusted, on first ask.
func (c *specCache) judged(jr fleet.JobRecord, trusted []ed25519.PublicKey) specView {
	v := c.read(jr)
	if v.checked {
		c.hits.Add(1)
		return v
	}
	id := strings.TrimPrefix(jr.Key, "spec/")
	v.verdict, v.checked = checkSpec(id, jr.Envelope, trusted), true
	c.checks.Add(1)
	c.put(jr, v)
	return v
}

// get returns the view kept for a record, and marks it used.
func (c *specCache) get(jr fleet.JobRecord) (specView, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byRef[refOf(jr)]
	if !ok {
		return specView{}, false
	}
	en := e.Value.(*specEntry)
	if !sameRecord(en, jr) {
		return specView{}, false
	}
	c.order.MoveToFront(e)
	return en.view, true
}

// sameRecord reports whether an entry is of this record as read: its key
// and every field of its envelope. The bytes of a record the bus keeps are
// the same memory on every read, which bytes.Equal compares at once.
func sameRecord(en *specEntry, jr fleet.JobRecord) bool {
	a, b := en.env, jr.Envelope
	return en.key == jr.Key && a.Type == b.Type && bytes.Equal(a.Payload, b.Payload) && bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Signature, b.Signature)
}

// put keeps a record's view, evicting the least recently used beyond the
// bound.
func (c *specCache) put(jr fleet.JobRecord, v specView) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byRef == nil {
		c.order, c.byRef = list.New(), map[specRef]*list.Element{}
	}
	ref := refOf(jr)
	if e, ok := c.byRef[ref]; ok {
		e.Value = &specEntry{ref: ref, key: jr.Key, env: jr.Envelope, view: v}
		c.order.MoveToFront(e)
		return
	}
	c.byRef[ref] = c.order.PushFront(&specEntry{ref: ref, key: jr.Key, env: jr.Envelope, view: v})
	limit := c.max
	if limit <= 0 {
		limit = specCacheSize
	}
	for c.order.Len() > limit {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byRef, last.Value.(*specEntry).ref)
		c.evicted.Add(1)
	}
}

// len is the number of views kept.
func (c *specCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.order == nil {
		return 0
	}
	return c.order.Len()
}
