package fleet

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
)

// JobRecord is one record of the jobs topic, in topic order.
type JobRecord struct {
	Partition int32
	Offset    int64
	Key       string
	Envelope  Envelope
	Bad       string // the value could not be decoded
	// Timestamp is the record's: the broker's clock when it appended the
	// record if LogAppendTime (the topic's message.timestamp.type, where
	// the broker honours it), else the one its producer set (CreateTime).
	Timestamp     time.Time
	LogAppendTime bool
}

// MaxStatusBytes bounds one record of the status topic (a shard's result
// with its lossless stats), as runbus bounds a shard's report.
const MaxStatusBytes = 16 << 20

// Bus reads the three fleet topics into memory and publishes to them. Every
// process (agent, submitter, a listing) builds the same picture from them.
type Bus struct {
	cl    *kgo.Client // reads the fleet topics, publishes
	plain *kgo.Client // no consumption: admin requests, the window catalog
	adm   *kadm.Client
	log   *slog.Logger

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every record read
	pos     map[string]int64
	agents  map[string]Heartbeat
	agentTS map[string]time.Time // broker timestamps of the latest heartbeats
	// seen is when this process read each name's latest heartbeat, on its
	// own clock (see seenAt): what AgentAlive goes by, as a record's
	// timestamp is another clock's, the agent's own on an agents topic
	// created CreateTime.
	seen map[string]time.Time
	// liveFrom is the agents topic's end offset when the bus opened (at
	// openedAt, this process's clock): a heartbeat from it on is read as
	// it comes, one before it was published before openedAt.
	liveFrom int64
	openedAt time.Time
	// unsure names the agents whose latest heartbeat was published before
	// the bus opened and carries its producer's timestamp (CreateTime):
	// another clock's, so when it was sent is not known here
	// (AwaitHeartbeats).
	unsure map[string]bool
	// stamped: the latest heartbeat read carries the broker's timestamp
	// (LogAppendTime), not the one its producer set from its own clock.
	stamped bool
	// brokerTime names the topics whose configs say the broker stamps
	// their records (BrokerStamps), marked LogAppendTime or not.
	brokerTime map[string]bool
	// live holds, by agent name, the latest live heartbeat of each of its
	// processes (by instance), its broker timestamp and when it was seen.
	live    map[string]map[string]liveBeat
	jobs    []JobRecord
	status  map[string]Status
	readErr error

	cancel context.CancelFunc
	done   chan struct{}
}

// OpenBus connects to Kafka, creates the fleet topics when missing and
// starts reading them from the beginning.
func OpenBus(ctx context.Context, cfg kafkaio.Config, log *slog.Logger) (*Bus, error) {
	if log == nil {
		log = slog.Default()
	}
	opts, err := cfg.Opts()
	if err != nil {
		return nil, err
	}
	adminCl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	adm := kadm.NewClient(adminCl)
	for _, t := range []string{AgentsTopic, JobsTopic, StatusTopic} {
		conf := map[string]string{"cleanup.policy": "compact"}
		if t == AgentsTopic || t == JobsTopic {
			// The broker's clock stamps heartbeats (an agent's clock
			// offset) and specs (when a job was published: a spec says
			// what issue time its publisher likes).
			conf["message.timestamp.type"] = "LogAppendTime"
		}
		if t == StatusTopic {
			// A shard's result carries its lossless stats (histograms).
			conf["max.message.bytes"] = fmt.Sprint(MaxStatusBytes)
		}
		if _, err := kafkaio.EnsureTopic(ctx, adm, t, 1, -1, conf); err != nil {
			adminCl.Close()
			return nil, fmt.Errorf("fleet topics: %w", err)
		}
	}
	ends, err := adm.ListEndOffsets(ctx, AgentsTopic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		adminCl.Close()
		return nil, fmt.Errorf("fleet topics: end offsets: %w", err)
	}
	liveFrom, openedAt := int64(0), time.Now()
	ends.Each(func(o kadm.ListedOffset) { liveFrom = max(liveFrom, o.Offset) })
	// Whether the broker stamps the agents and jobs topics: Apache Kafka
	// marks each record so, the embedded broker does not (it stamps the
	// time, and keeps the type). A principal without DescribeConfigs goes
	// by the records' marks.
	brokerTime := map[string]bool{}
	for _, t := range []string{AgentsTopic, JobsTopic} {
		stamps, err := kafkaio.BrokerStamps(ctx, adm, t)
		if err != nil {
			log.Debug("fleet: whether the broker stamps the topic is read from its records", "topic", t, "err", err)
		}
		brokerTime[t] = stamps
	}
	cl, err := kgo.NewClient(append(slices.Clone(opts),
		kgo.ConsumeTopics(AgentsTopic, JobsTopic, StatusTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchMaxBytes(MaxStatusBytes),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.NoCompression()),
	)...)
	if err != nil {
		adminCl.Close()
		return nil, fmt.Errorf("kafka: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	b := &Bus{
		cl: cl, plain: adminCl, adm: adm, log: log,
		changed:    make(chan struct{}),
		pos:        map[string]int64{},
		agents:     map[string]Heartbeat{},
		agentTS:    map[string]time.Time{},
		seen:       map[string]time.Time{},
		liveFrom:   liveFrom,
		openedAt:   openedAt,
		brokerTime: brokerTime,
		unsure:     map[string]bool{},
		live:       map[string]map[string]liveBeat{},
		status:     map[string]Status{},
		cancel:     cancel,
		done:       make(chan struct{}),
	}
	go b.read(rctx)
	return b, nil
}

// Close stops reading and closes the client.
func (b *Bus) Close() {
	b.cancel()
	<-b.done
	b.cl.Close()
	b.plain.Close()
}

func (b *Bus) read(ctx context.Context) {
	defer close(b.done)
	for {
		fs := b.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		for _, e := range fs.Errors() {
			if errors.Is(e.Err, context.Canceled) {
				return
			}
			b.log.Warn("fleet: reading a topic", "topic", e.Topic, "err", e.Err)
		}
		b.mu.Lock()
		fs.EachRecord(b.apply)
		ch := b.changed
		b.changed = make(chan struct{})
		b.mu.Unlock()
		close(ch)
	}
}

// apply updates the picture with one record; b.mu is held.
func (b *Bus) apply(r *kgo.Record) {
	b.pos[r.Topic] = r.Offset + 1
	key := string(r.Key)
	switch r.Topic {
	case AgentsTopic:
		if r.Value == nil {
			delete(b.agents, key)
			return
		}
		var h Heartbeat
		if err := json.Unmarshal(r.Value, &h); err != nil {
			b.log.Warn("fleet: bad heartbeat", "key", key, "err", err)
			return
		}
		seen := b.seenAt(r.Offset, r.Timestamp, time.Now())
		b.agents[key], b.agentTS[key], b.seen[key] = h, r.Timestamp, seen
		b.stamped = r.Attrs.TimestampType() == 1 || b.brokerTime[AgentsTopic]
		b.unsure[key] = r.Offset < b.liveFrom && !b.stamped
		b.applyInstance(key, h, r.Timestamp, seen)
	case JobsTopic:
		jr := decodeJobRecord(r.Offset, key, r.Value)
		jr.Partition, jr.Timestamp = r.Partition, r.Timestamp
		jr.LogAppendTime = r.Attrs.TimestampType() == 1 || b.brokerTime[JobsTopic]
		b.jobs = append(b.jobs, jr)
	case StatusTopic:
		if r.Value == nil {
			delete(b.status, key)
			return
		}
		var s Status
		if err := json.Unmarshal(r.Value, &s); err != nil {
			b.log.Warn("fleet: bad status", "key", key, "err", err)
			return
		}
		b.status[key] = s
	}
}

// decodeJobRecord decodes one record of the jobs topic; what cannot be
// decoded is marked Bad (a tombstone too), never an error or a panic.
func decodeJobRecord(offset int64, key string, value []byte) JobRecord {
	jr := JobRecord{Offset: offset, Key: key}
	if value == nil {
		jr.Bad = tombstone
		return jr
	}
	if err := json.Unmarshal(value, &jr.Envelope); err != nil {
		jr.Bad = err.Error()
	}
	return jr
}

// tombstone is JobRecord.Bad of a record without a value (compaction's
// deletes, not a malformed record).
const tombstone = "tombstone"

// seenAt is when a heartbeat at offset of the agents topic, stamped ts,
// read at now (this process's clock), counts as seen: when it was read, if
// it was published after the bus opened (a live agent heartbeats every
// HeartbeatInterval, so its latest heartbeat is never older than that plus
// the fetch); one read on opening may be from long ago: its timestamp then,
// but never later than when the bus opened (it was published before). A
// timestamp is another clock's (the agent's own on a broker that keeps its
// producers' timestamps): by it alone, an agent whose clock is behind by
// more than LostAfter looked lost while it heartbeat, and one whose clock
// is ahead looked alive that long after it died. A process that lists
// agents once waits for their next heartbeats (AwaitHeartbeats).
func (b *Bus) seenAt(offset int64, ts, now time.Time) time.Time {
	if offset >= b.liveFrom {
		return now
	}
	return minTime(ts, b.openedAt, now)
}

func minTime(t time.Time, more ...time.Time) time.Time {
	for _, u := range more {
		if u.Before(t) {
			t = u
		}
	}
	return t
}

// liveBeat is a heartbeat, its broker timestamp and when it was seen
// (seenAt).
type liveBeat struct {
	h    Heartbeat
	ts   time.Time
	seen time.Time
}

// applyInstance keeps a stopped heartbeat of one process of a name from
// hiding another process of that name that still heartbeats: the name's
// heartbeat is then the latest of the live one. b.mu is held.
func (b *Bus) applyInstance(name string, h Heartbeat, ts, seen time.Time) {
	procs := b.live[name]
	if procs == nil {
		procs = map[string]liveBeat{}
		b.live[name] = procs
	}
	for inst, o := range procs {
		if seen.Sub(o.seen) >= LostAfter {
			delete(procs, inst)
		}
	}
	if !h.Stopped {
		procs[h.Instance] = liveBeat{h, ts, seen}
		return
	}
	delete(procs, h.Instance)
	var best liveBeat
	for _, o := range procs {
		// Only a process that heartbeated lately is live: one that went
		// quiet (killed, then replaced by the process now stopping) is not
		// brought back.
		if seen.Sub(o.seen) <= 2*HeartbeatInterval && o.seen.After(best.seen) {
			best = o
		}
	}
	if !best.seen.IsZero() {
		b.agents[name], b.agentTS[name], b.seen[name] = best.h, best.ts, best.seen
	}
}

// Sync waits until everything written to the fleet topics before the call
// has been read.
func (b *Bus) Sync(ctx context.Context) error {
	ends, err := b.adm.ListEndOffsets(ctx, AgentsTopic, JobsTopic, StatusTopic)
	if err != nil {
		return fmt.Errorf("fleet: end offsets: %w", err)
	}
	want := map[string]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			want[o.Topic] = max(want[o.Topic], o.Offset)
		}
	})
	for {
		b.mu.Lock()
		ok := true
		for t, end := range want {
			if b.pos[t] < end {
				ok = false
			}
		}
		ch := b.changed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet: reading the topics: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Changed returns a channel closed at the next record read.
func (b *Bus) Changed() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changed
}

// Agents returns the latest heartbeat of every agent, sorted by name.
func (b *Bus) Agents() []Heartbeat {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Collect(maps.Values(b.agents))
	slices.SortFunc(out, func(a, c Heartbeat) int { return strings.Compare(a.Name, c.Name) })
	return out
}

// AgentAlive reports whether an agent heartbeated within LostAfter of now
// (this process's clock: when its latest heartbeat was seen, see seenAt)
// and did not stop.
func (b *Bus) AgentAlive(name string, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.agents[name]
	if !ok || h.Stopped {
		return false
	}
	return now.Sub(b.seen[name]) < LostAfter
}

// OpenedAt is when the bus opened (this process's clock).
func (b *Bus) OpenedAt() time.Time { return b.openedAt }

// LastSeen is when this process read an agent's latest heartbeat, on its
// own clock (see seenAt): not the heartbeat's record timestamp, which is
// the agent's clock on a broker that keeps its producers' timestamps.
func (b *Bus) LastSeen(name string) (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.seen[name]
	return t, ok
}

// AwaitHeartbeats waits, after reading the topics to their end, until
// every agent whose latest heartbeat was published before the bus opened
// with its producer's timestamp (its own clock: an agent whose clock is
// behind looks silent, one ahead looks fresh) and that did not stop has
// heartbeated again, or until LostAfter after the bus opened: a live
// agent heartbeats every HeartbeatInterval, so one not heard from by then
// is lost, whatever its clock said. A process that lists agents once
// (agents ls, jobs submit) calls it before it says which are alive; it
// returns at once on a bus open for LostAfter, or whose heartbeats the
// broker stamps.
func (b *Bus) AwaitHeartbeats(ctx context.Context) error {
	if err := b.Sync(ctx); err != nil {
		return err
	}
	deadline := b.openedAt.Add(LostAfter)
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		b.mu.Lock()
		waiting := false
		for name, h := range b.agents {
			if b.unsure[name] && !h.Stopped {
				waiting = true
				break
			}
		}
		ch := b.changed
		b.mu.Unlock()
		if !waiting || !time.Now().Before(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet: waiting for the agents' heartbeats: %w", ctx.Err())
		case <-timer.C:
			return nil
		case <-ch:
		}
	}
}

// brokerStamped reports whether the heartbeats read carry the broker's
// timestamps (the agents topic is LogAppendTime, and the broker honours
// it): otherwise a heartbeat's timestamp is its producer's clock, and an
// agent's own heartbeat read back measures its clock against itself.
func (b *Bus) brokerStamped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stamped
}

// Agent returns one agent's latest heartbeat and the broker's timestamp of it.
func (b *Bus) Agent(name string) (Heartbeat, time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.agents[name]
	return h, b.agentTS[name], ok
}

// Jobs returns the jobs-topic records from offset from on.
func (b *Bus) Jobs(from int64) []JobRecord {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, _ := slices.BinarySearchFunc(b.jobs, from, func(r JobRecord, off int64) int {
		switch {
		case r.Offset < off:
			return -1
		case r.Offset > off:
			return 1
		}
		return 0
	})
	return slices.Clone(b.jobs[i:])
}

// JobAt returns the jobs-topic record at offset, when read (no copy of
// the records after it, as Jobs makes).
func (b *Bus) JobAt(offset int64) (JobRecord, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := slices.BinarySearchFunc(b.jobs, offset, func(r JobRecord, off int64) int { return cmp.Compare(r.Offset, off) })
	if !ok {
		return JobRecord{}, false
	}
	return b.jobs[i], true
}

// openJobs returns the jobs' own statuses (job/ID) that are not final, in
// one pass over the keys that copies only those.
func (b *Bus) openJobs() []Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Status
	for k, s := range b.status {
		if !s.State.Final() && strings.HasPrefix(k, "job/") && strings.Count(k, "/") == 1 {
			out = append(out, s)
		}
	}
	return out
}

// Status returns one status record.
func (b *Bus) Status(key string) (Status, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.status[key]
	return s, ok
}

// StatusPrefix returns the status records whose keys start with prefix,
// sorted by key.
func (b *Bus) StatusPrefix(prefix string) map[string]Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]Status{}
	for k, s := range b.status {
		if strings.HasPrefix(k, prefix) {
			out[k] = s
		}
	}
	return out
}

// Publish writes v as JSON under key and waits for the broker's ack, or
// for ctx to end (see kafkaio.ProduceBounded: then the client's buffered
// records are aborted). It returns the record as written (offset, timestamp).
func (b *Bus) Publish(ctx context.Context, topic, key string, v any) (*kgo.Record, error) {
	val, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("fleet: encode %s: %w", key, err)
	}
	r := &kgo.Record{Topic: topic, Partition: 0, Key: []byte(key), Value: val}
	if err := kafkaio.ProduceBounded(ctx, b.cl, r); err != nil {
		return nil, fmt.Errorf("fleet: publish %s to %s: %w", key, topic, err)
	}
	return r, nil
}

// PublishStatus writes a status record.
func (b *Bus) PublishStatus(ctx context.Context, key string, s Status) error {
	if s.At.IsZero() {
		s.At = time.Now().UTC()
	}
	_, err := b.Publish(ctx, StatusTopic, key, s)
	return err
}

// Admin returns the bus's admin client (offsets of the data topics).
func (b *Bus) Admin() *kadm.Client { return b.adm }

// Plain returns a Kafka client that consumes nothing (for the catalog).
func (b *Bus) Plain() *kgo.Client { return b.plain }
