package serve

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/replayctl/replayctl/fleet"
)

// specIndexSize bounds the jobs specOffsets keeps: some 150 bytes each
// (the job ID, the offset, file and window of each spec record of it), so
// about 150 MiB at most, beside the bus's copy of every record (some KiB
// each). Past it, a job not indexed is looked up by a scan of the jobs
// topic, as every job was before.
const specIndexSize = 1 << 20

// specOffsets indexes the jobs topic by job: for each job, the offset of
// every record of it that is a spec (type spec, decodes as one), with the
// spec's scenario file and window, which the list filters by. It is built
// as records arrive, each read once, decoded through the spec cache; a
// lookup then fetches the one record it names (Bus.JobAt) instead of
// scanning every record the topic holds, and a list of jobs decodes only
// its page's specs: past specCacheSize spec records, a scan decoded all of
// them again on every list (the cache, least recently used first, keeps
// none of a scan longer than itself).
//
// It is kept per topic partition: the jobs topic has one (fleet creates
// it so, and the bus orders its records by offset); a record of another
// partition is not indexed, and its job is looked up by a scan. The zero
// value is ready to use.
type specOffsets struct {
	mu   sync.Mutex
	max  int   // specIndexSize when zero (tests set less)
	next int64 // the offset of the next record to index
	jobs map[string][]indexed
	// full: a job was left out (max reached, or a record of another
	// partition): a job not indexed may have specs.
	full bool

	// visited counts the jobs-topic records looked at to find specs:
	// indexed as they come, fetched by a lookup, or scanned (specIndex).
	visited atomic.Int64
}

// indexed is one spec record of a job: where, and what the list filters
// by.
type indexed struct {
	offset       int64
	file, window string
}

// catchUp indexes the records the bus read since the last call.
func (s *Server) catchUp() {
	x := &s.index
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.jobs == nil {
		x.jobs = map[string][]indexed{}
	}
	limit := x.max
	if limit <= 0 {
		limit = specIndexSize
	}
	for _, jr := range s.bus.Jobs(x.next) {
		x.next = max(x.next, jr.Offset+1)
		x.visited.Add(1)
		if jr.Bad != "" || jr.Envelope.Type != "spec" {
			continue
		}
		id, ok := strings.CutPrefix(jr.Key, "spec/")
		if !ok {
			continue
		}
		v := s.specs.read(jr)
		if v.bad {
			continue
		}
		have, known := x.jobs[id]
		if jr.Partition != 0 || !known && len(x.jobs) >= limit {
			x.full = true
			continue
		}
		x.jobs[id] = append(have, indexed{offset: jr.Offset, file: v.spec.File, window: specWindow(&v.spec)})
	}
}

// leftOut reports whether the index left a job out (full).
func (x *specOffsets) leftOut() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.full
}

// pick is the spec record of job id that specIndex shows, from the index:
// the one its status names (past PENDING), else its latest. known is false
// when the index cannot tell (a job left out of a full index).
func (s *Server) pick(id string) (at indexed, ok, known bool) {
	x := &s.index
	x.mu.Lock()
	recs, full := x.jobs[id], x.full
	x.mu.Unlock()
	if len(recs) == 0 {
		return indexed{}, false, !full
	}
	if js, ok := s.bus.Status("job/" + id); ok && js.State != fleet.Pending {
		if i := slices.IndexFunc(recs, func(r indexed) bool { return r.offset == js.SpecOffset }); i >= 0 {
			return recs[i], true, true
		}
	}
	return recs[len(recs)-1], true, true
}

// fetch returns the spec record of job id at offset, read once more from
// the bus (one record), decoded through the spec cache; false when it is
// not that (the jobs topic deleted and created again: the index is stale).
func (s *Server) fetch(id string, offset int64) (jobSpec, bool) {
	s.index.visited.Add(1)
	jr, ok := s.bus.JobAt(offset)
	if !ok || jr.Partition != 0 || jr.Bad != "" || jr.Envelope.Type != "spec" || jr.Key != "spec/"+id {
		return jobSpec{}, false
	}
	v := s.specs.read(jr)
	if v.bad {
		return jobSpec{}, false
	}
	return jobSpec{rec: jr, spec: v.spec}, true
}
