package kafkaio

import (
	"encoding/binary"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The layout of a record batch (magic 2) as far as stamping needs it.
const (
	batchMagicAt          = 16
	batchCRCAt            = 17 // int32 CRC-32C of the bytes from batchAttributesAt on
	batchAttributesAt     = 21 // int16 attributes
	batchFirstTimestampAt = 27 // int64 ms; a record's is this plus its delta
	batchMaxTimestampAt   = 35 // int64 ms
	batchHeaderLen        = 61
	attrLogAppendTime     = 0x0008 // timestamp type: LogAppendTime
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// logAppendStamper makes the embedded broker honour a topic's
// message.timestamp.type=LogAppendTime, as Apache Kafka does: a record
// produced to such a topic carries the broker's time of its append, not
// its producer's clock (a fleet agent's clock offset is measured so, and a
// job is dated by the broker, not by its submitter's clock).
//
// kfake stamps a batch only when its producer marked it LogAppendTime,
// which no producer does, and then keeps the batch's old CRC: readers
// refuse the batch ("encoded crc does not match"). So the stamper writes
// the broker's time into each batch produced to such a topic itself,
// before kfake appends it, and makes the batch's CRC anew. The batch keeps
// its timestamp type (CreateTime): a reader learns that the broker stamps
// the topic from the topic's config (BrokerStamps), not from the batch.
type logAppendStamper struct {
	c *kfake.Cluster

	mu     sync.Mutex
	byName map[string]bool   // topic → LogAppendTime, for topics that exist
	byID   map[[16]byte]bool // the same by topic ID (Produce v13 on)
	served int               // produce requests since produce was installed
	since  time.Time         // when it was
	// renewals counts the installs of produce after the first.
	renewals atomic.Int64
}

// A control function keeps, for each client connection it ever saw, that
// connection's last request (kfake's controlCtx.lastReq), never dropped:
// for Produce, a batch of records per connection gone, without bound on a
// broker that runs for weeks. So the stamper installs itself anew every
// renewEvery produce requests or renewAfter, dropping that memory, and the
// observers do at each (rare) request.
var (
	renewEvery = 4096
	renewAfter = time.Minute
)

// stampLogAppendTime installs the stamper's control functions on c.
func stampLogAppendTime(c *kfake.Cluster) *logAppendStamper {
	s := &logAppendStamper{c: c, since: time.Now()}
	s.forget()
	c.ControlKey(int16(kmsg.Produce), s.produce)
	// A topic created, deleted or reconfigured: its type is read again at
	// its next produce. These functions only observe (not handled): the
	// cluster then handles the request as usual, after them.
	for _, k := range []kmsg.Key{kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs} {
		var observe func(kmsg.Request) (kmsg.Response, error, bool)
		observe = func(kmsg.Request) (kmsg.Response, error, bool) {
			s.forget()
			c.DropControl()
			c.ControlKey(int16(k), observe)
			return nil, nil, false
		}
		c.ControlKey(int16(k), observe)
	}
	return s
}

func (s *logAppendStamper) forget() {
	s.mu.Lock()
	s.byName, s.byID = map[string]bool{}, map[[16]byte]bool{}
	s.mu.Unlock()
}

// produce marks the batches of a produce request to LogAppendTime topics.
// It runs while the cluster waits for it (and serves the admin calls of
// TopicInfo meanwhile), and never handles the request itself.
func (s *logAppendStamper) produce(req kmsg.Request) (kmsg.Response, error, bool) {
	s.mu.Lock()
	s.served++
	renew := s.served >= renewEvery || time.Since(s.since) >= renewAfter
	if renew {
		s.served, s.since = 0, time.Now()
	}
	s.mu.Unlock()
	if renew {
		s.c.DropControl()
		s.c.ControlKey(int16(kmsg.Produce), s.produce)
		s.renewals.Add(1)
	}
	pr, ok := req.(*kmsg.ProduceRequest)
	if !ok {
		return nil, nil, false
	}
	for i := range pr.Topics {
		t := &pr.Topics[i]
		if !s.logAppend(pr.Version, t) {
			continue
		}
		now := time.Now().UnixMilli()
		for j := range t.Partitions {
			stampBatch(t.Partitions[j].Records, now)
		}
	}
	return nil, nil, false
}

// logAppend says whether t's topic, named or (v13 on) identified, has
// message.timestamp.type LogAppendTime. A topic that does not exist (yet)
// is not remembered: it may be created with either type.
func (s *logAppendStamper) logAppend(version int16, t *kmsg.ProduceRequestTopic) bool {
	byID := version >= 13
	s.mu.Lock()
	v, known := s.byName[t.Topic]
	if byID {
		v, known = s.byID[t.TopicID]
	}
	s.mu.Unlock()
	if known {
		return v
	}
	var info *kfake.TopicInfo
	if byID {
		info = s.c.TopicIDInfo(t.TopicID)
	} else {
		info = s.c.TopicInfo(t.Topic)
	}
	if info == nil {
		return false
	}
	typ := info.Configs["message.timestamp.type"]
	v = typ != nil && *typ == "LogAppendTime"
	s.mu.Lock()
	s.byName[info.Topic], s.byID[info.TopicID] = v, v
	s.mu.Unlock()
	return v
}

// stampBatch sets a record batch's first timestamp to now (ms), its
// records' deltas kept, and writes its CRC anew. kfake reads one batch a
// partition; a batch that is not one (short, an old magic, an already
// wrong CRC) or that its producer marked LogAppendTime is left as it is,
// for kfake to refuse or stamp as it would.
func stampBatch(b []byte, now int64) {
	if len(b) < batchHeaderLen || b[batchMagicAt] != 2 {
		return
	}
	if binary.BigEndian.Uint32(b[batchCRCAt:]) != crc32.Checksum(b[batchAttributesAt:], crc32c) {
		return
	}
	if binary.BigEndian.Uint16(b[batchAttributesAt:])&attrLogAppendTime != 0 {
		return
	}
	first := int64(binary.BigEndian.Uint64(b[batchFirstTimestampAt:]))
	last := int64(binary.BigEndian.Uint64(b[batchMaxTimestampAt:]))
	binary.BigEndian.PutUint64(b[batchFirstTimestampAt:], uint64(now))
	binary.BigEndian.PutUint64(b[batchMaxTimestampAt:], uint64(now+max(0, last-first)))
	binary.BigEndian.PutUint32(b[batchCRCAt:], crc32.Checksum(b[batchAttributesAt:], crc32c))
}
