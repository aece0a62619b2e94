package capture

import (
	"slices"
	"strings"
	"sync"
)

// Pending is what one live capture holds that its sink has not taken yet:
// what a process quitting at once, without draining, loses. Its counters
// so far (Stats) are given with it, since such a process prints no summary
// to say what was lost before.
type Pending struct {
	// Interface is the interface captured on ("any" for all).
	Interface string
	// Packets were read from the kernel's ring, handed to the assembler
	// and not parsed yet. The batch the reader is still filling (at most
	// liveBatchAge of packets; empty once a Ctrl-C's drain is over) is not
	// counted: only its goroutine may read it.
	Packets int64
	// Requests and Responses were parsed and not handed to the sink yet
	// (held to sort them by capture time, or in a sink's Write that has
	// not returned); Bytes is their size.
	Requests, Responses, Bytes int64
	// Stats are the capture's counters so far, queue-overflow included:
	// which of them are losses is the record job's to say (its summary's
	// list of causes, engine.SourceLost).
	Stats Stats
}

// Holds reports whether p holds anything its sink has not taken.
func (p Pending) Holds() bool {
	return p.Packets+p.Requests+p.Responses > 0
}

type tracked struct {
	iface string
	a     *Assembler
	q     *batchQueue
	lc    *LiveCounters
}

// The live captures running in this process, for InProgress.
var (
	trackedMu sync.Mutex
	running   = map[*tracked]struct{}{}
)

// track adds a running live capture to those InProgress reports, until
// the function it returns is called.
func track(iface string, a *Assembler, q *batchQueue, lc *LiveCounters) (untrack func()) {
	if iface == "" {
		iface = "any"
	}
	t := &tracked{iface: iface, a: a, q: q, lc: lc}
	trackedMu.Lock()
	running[t] = struct{}{}
	trackedMu.Unlock()
	return func() {
		trackedMu.Lock()
		delete(running, t)
		trackedMu.Unlock()
	}
}

// InProgress returns, for each live capture of this process still running,
// what it holds that its sink has not taken and what it lost so far,
// sorted by interface. It may be called from any goroutine: a process
// quitting at once calls it to say what it loses.
func InProgress() []Pending {
	trackedMu.Lock()
	defer trackedMu.Unlock()
	out := make([]Pending, 0, len(running))
	for t := range running {
		p := Pending{Interface: t.iface, Packets: max(t.q.queued.Load(), 0)}
		p.Requests, p.Responses, p.Bytes = t.a.Unemitted()
		p.Stats = t.a.Stats()
		p.Stats["queue-overflow"] = t.lc.QueueOverflow.Load()
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pending) int { return strings.Compare(a.Interface, b.Interface) })
	return out
}
