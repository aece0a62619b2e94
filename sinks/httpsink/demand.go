package httpsink

import (
	"slices"
	"time"
)

// demand estimates how many connections the open model needs, by Little's
// law: the requests scheduled within the last "latency" (the time an answer
// takes, measured) are the ones in flight if every request is on time. The
// pool dials a connection for a waiting request only while it has fewer
// than twice that (plus boundHeadroom); beyond it the request waits for
// a busy connection to free, and the wait shows as lateness (and is counted
// as connections-bounded). This keeps a stall — of the target, of this
// process, of the machine — from opening thousands of connections: each new
// connection costs CPU on both sides and makes the stall worse (the open
// model's collapse to max-connections), while the answers that will free
// the connections are already on their way.
//
// The count is taken on the schedule's timeline (Request.Scheduled, or the
// dispatch time when it has none), so a late pacer, dispatching a backlog
// at once, does not look like more demand; a recorded burst (many requests
// scheduled at the same instant) does, as it should.
type demand struct {
	origin time.Time // scheduled instant of bucket 0
	head   int64     // newest bucket index seen
	counts [demandBuckets]int32

	// latency estimate: answers' latencies averaged over latWindow; the
	// estimate is the lowest of the last latWindows averages (see answered).
	lat      time.Duration // 0 until the first window closes
	wins     [latWindows]time.Duration
	nwin     int // windows closed so far
	latSum   time.Duration
	latN     int
	latStart time.Time
}

const (
	demandBucket  = time.Millisecond
	demandBuckets = 4096 // the last ~4 s of schedule; longer latencies count all of it
	latWindow     = 20 * time.Millisecond
	latWindows    = 250 // the estimate looks back latWindows × latWindow (5 s of answers)
	// boundHeadroom: the pool may hold this many connections more than
	// twice the estimate (latencies vary, a target warming up or slowing
	// down is slower than the estimate for a while, answers are read a
	// little after they arrive).
	boundHeadroom = 16
)

// scheduled counts one request scheduled at at.
func (d *demand) scheduled(at time.Time) {
	if d.origin.IsZero() {
		d.origin = at
	}
	i := int64(at.Sub(d.origin) / demandBucket)
	if i < 0 {
		i = 0 // earlier than the first: counts in the first bucket
	}
	if i > d.head {
		// Clear the buckets skipped (at most the whole ring).
		for k := d.head + 1; k <= i && k <= d.head+demandBuckets; k++ {
			d.counts[k%demandBuckets] = 0
		}
		d.head = i
	}
	if i > d.head-demandBuckets {
		d.counts[i%demandBuckets]++
	}
}

// answered records how long one request held its connection (its answer's
// latency, or the time until it failed: Little's law counts both), at now.
//
// The estimate is the lowest of the average latencies of the last 250
// windows of 20 ms with answers (5 s of answers): the target's latency
// without queueing (as TCP Vegas
// takes the lowest round trip as the base): slow to rise, quick to fall.
// Latency above it is waiting somewhere — in the target's queue, in a
// stalled process, on a busy machine — and more connections do not shorten
// that wait, they lengthen it: each costs CPU on both sides, and the
// answers that will free the connections are already on their way. A
// median or a mean follows that wait up, and the pool with it, which is
// the open model's collapse; so does the lowest over a window shorter than
// the machine's slow spells (measured at 22k req/s on a loaded 2-core
// machine: the median of 1 s, and twice in three runs the lowest of 1 s,
// ran to 10 000 connections; the lowest of 5 s stayed at 536–1 072). A
// target that really becomes slower raises every window, and the estimate
// follows within 5 s; meanwhile the estimate again is headroom, and
// requests beyond it wait, late and counted.
func (d *demand) answered(lat time.Duration, now time.Time) {
	if lat <= 0 {
		return
	}
	if d.latN == 0 {
		d.latStart = now
	}
	d.latSum += lat
	d.latN++
	if now.Sub(d.latStart) < latWindow {
		return
	}
	d.wins[d.nwin%latWindows] = d.latSum / time.Duration(d.latN)
	d.nwin++
	d.latSum, d.latN = 0, 0
	d.lat = slices.Min(d.wins[:min(d.nwin, latWindows)])
}

// inFlight is how many of the requests scheduled so far fall within the
// latency estimate before the newest: those that would be in flight now.
// ok is false while there is no latency estimate yet (no bound then).
func (d *demand) inFlight() (n int, ok bool) {
	if d.lat <= 0 || d.origin.IsZero() {
		return 0, false
	}
	k := int64(d.lat/demandBucket) + 1 // the newest bucket is partly elapsed
	k = min(k, demandBuckets, d.head+1)
	for i := d.head; i > d.head-k; i-- {
		n += int(d.counts[i%demandBuckets])
	}
	return n, true
}

// bound is how many pooled connections the demand justifies; ok is false
// while unknown (before the first answers).
func (d *demand) bound() (int, bool) {
	n, ok := d.inFlight()
	if !ok {
		return 0, false
	}
	return 2*n + boundHeadroom, true
}
