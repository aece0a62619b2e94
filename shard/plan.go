package shard

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/replayctl/replayctl/catalog"
)

// Part is one partition of a shard: its exact offset range and, when the
// partition is split between shards, the connection-key bucket it keeps.
type Part struct {
	Partition int32         `json:"partition"`
	Range     catalog.Range `json:"range"`
	// Bucket in [0, Buckets): the shard keeps the records whose key falls in
	// this bucket (KeyBucket). Buckets 1 means the whole partition.
	Bucket  int `json:"bucket"`
	Buckets int `json:"buckets"`
}

// Whole reports whether the part is the whole partition.
func (p Part) Whole() bool { return p.Buckets <= 1 }

// String describes the part: "3:[0,400)" or "3:[0,400) key bucket 1/2".
func (p Part) String() string {
	s := fmt.Sprintf("%d:[%d,%d)", p.Partition, p.Range.Start, p.Range.End)
	if !p.Whole() {
		s += fmt.Sprintf(" key bucket %d/%d", p.Bucket, p.Buckets)
	}
	return s
}

// Assignment is what one shard replays: its parts of the window, sorted by
// partition.
type Assignment struct {
	Index, Count int
	Parts        []Part
}

// Plan cuts w into count shards, deterministically: the result depends only
// on w's partition ranges and count, so every shard computes the same plan.
//
// With at least as many non-empty partitions as shards, whole partitions are
// bin-packed by record count (offsets in the range): largest first, each to
// the shard with the fewest records so far (ties: lowest shard index; equal
// partitions: lowest partition first). With fewer, every partition is split
// into buckets by connection key (KeyBucket): each gets one shard, and each
// remaining shard goes to the partition with the most records per shard
// (ties: lowest partition); a partition's shards take consecutive indexes in
// partition order. A recorded connection's records share a key, hence a
// partition and a bucket: a connection is never split between shards.
// Empty ranges are left out. count < 1 returns nil.
func Plan(w catalog.Window, count int) []Assignment {
	if count < 1 {
		return nil
	}
	out := make([]Assignment, count)
	for i := range out {
		out[i] = Assignment{Index: i, Count: count}
	}
	type pw struct {
		p int32
		r catalog.Range
	}
	var parts []pw
	for _, p := range w.SortedPartitions() {
		if r := w.Partitions[p]; r.Len() > 0 {
			parts = append(parts, pw{p, r})
		}
	}
	if len(parts) >= count {
		byWeight := slices.Clone(parts)
		slices.SortStableFunc(byWeight, func(a, b pw) int { return cmp.Compare(b.r.Len(), a.r.Len()) })
		load := make([]int64, count)
		for _, x := range byWeight {
			best := 0
			for i := 1; i < count; i++ {
				if load[i] < load[best] {
					best = i
				}
			}
			load[best] += x.r.Len()
			out[best].Parts = append(out[best].Parts, Part{Partition: x.p, Range: x.r, Buckets: 1})
		}
		for i := range out {
			slices.SortFunc(out[i].Parts, func(a, b Part) int { return cmp.Compare(a.Partition, b.Partition) })
		}
		return out
	}
	if len(parts) == 0 {
		return out
	}
	k := make([]int, len(parts))
	for i := range k {
		k[i] = 1
	}
	for left := count - len(parts); left > 0; left-- {
		best := 0
		for i := 1; i < len(parts); i++ {
			// records per shard of i > of best, compared without division
			if parts[i].r.Len()*int64(k[best]) > parts[best].r.Len()*int64(k[i]) {
				best = i
			}
		}
		k[best]++
	}
	idx := 0
	for i, x := range parts {
		for b := range k[i] {
			out[idx].Parts = []Part{{Partition: x.p, Range: x.r, Bucket: b, Buckets: k[i]}}
			idx++
		}
	}
	return out
}

// Records estimates the records the shard reads: whole ranges, plus a
// partition's range divided by its buckets.
func (a Assignment) Records() int64 {
	var n int64
	for _, p := range a.Parts {
		n += p.Range.Len() / int64(max(p.Buckets, 1))
	}
	return n
}

// Split reports whether some partition of the shard is split by key.
func (a Assignment) Split() bool {
	for _, p := range a.Parts {
		if !p.Whole() {
			return true
		}
	}
	return false
}

// Window returns w restricted to the shard's partitions. Its counts
// (messages, requests, responses) are w's scaled by the shard's share of the
// records: estimates, for progress display.
func (a Assignment) Window(w catalog.Window) catalog.Window {
	sub := w
	sub.Partitions = make(map[int32]catalog.Range, len(a.Parts))
	for _, p := range a.Parts {
		sub.Partitions[p.Partition] = p.Range
	}
	if all := w.Records(); all > 0 {
		share := float64(a.Records()) / float64(all)
		sub.Messages = int64(float64(w.Messages) * share)
		sub.Requests = int64(float64(w.Requests) * share)
		sub.Responses = int64(float64(w.Responses) * share)
	}
	return sub
}

// Selects reports whether the shard replays the record of partition p with
// key: always for a whole partition, else when the key falls in the shard's
// bucket. A partition that is not the shard's is never selected.
func (a Assignment) Selects(p int32, key []byte) bool {
	for _, part := range a.Parts {
		if part.Partition == p {
			return part.Whole() || KeyBucket(key, part.Buckets) == part.Bucket
		}
	}
	return false
}

// String describes the assignment: "shard 2/8: 3:[0,400) key bucket 1/2".
func (a Assignment) String() string {
	if len(a.Parts) == 0 {
		return fmt.Sprintf("shard %d/%d: nothing (the window has fewer records than shards)", a.Index, a.Count)
	}
	parts := make([]string, len(a.Parts))
	for i, p := range a.Parts {
		parts[i] = p.String()
	}
	return fmt.Sprintf("shard %d/%d: %s (~%d records)", a.Index, a.Count, strings.Join(parts, " "), a.Records())
}

// KeyBucket maps a record key (the recorded connection ID) to a bucket in
// [0, buckets): splitmix64(FNV-1a 64(key)) mod buckets. The function is part
// of the shard contract: every version must compute the same buckets.
func KeyBucket(key []byte, buckets int) int {
	if buckets <= 1 {
		return 0
	}
	h := uint64(14695981039346656037)
	for _, c := range key {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return int(h % uint64(buckets))
}

// Fingerprint identifies a window's exact content: its topic and ranges
// (names and metadata aside). Shards compare fingerprints at the barrier, so
// shards that resolved different windows never start.
func Fingerprint(w catalog.Window) string {
	var b strings.Builder
	b.WriteString(w.Topic)
	for _, p := range w.SortedPartitions() {
		r := w.Partitions[p]
		fmt.Fprintf(&b, "|%d:%d-%d", p, r.Start, r.End)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}
