package serve

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/replayctl/replayctl/fleet"
)

// jobEvents streams a job's status records as server-sent events: every
// state change ("state") and progress report ("progress") of the job and
// of each part, in topic order, from the job's first record (or after
// Last-Event-ID), then "end" once the job is final.
func (s *Server) jobEvents(w http.ResponseWriter, r *http.Request, _ Token) {
	id := r.PathValue("id")
	if err := s.sync(r.Context()); err != nil {
		fail(w, http.StatusServiceUnavailable, "%v", err)
		return
	}
	if _, ok := s.bus.Status("job/" + id); !ok {
		fail(w, http.StatusNotFound, "no job %q", id)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	after := int64(-1)
	if le := r.Header.Get("Last-Event-ID"); le != "" {
		if n, err := strconv.ParseInt(le, 10, 64); err == nil {
			after = n
		}
	}
	spec, hasSpec := fleet.NewClient(s.bus, nil).SpecOf(id)
	// The job's state as each event leaves it (liveState), from its first
	// record on, the events before Last-Event-ID included.
	var live liveFold
	if after >= 0 {
		before, _ := s.events.since(id, -1)
		for _, e := range before {
			if e.Offset <= after {
				live.add(e.Part, e.State)
			}
		}
	}
	s.streams.Inc()
	defer s.streams.Dec()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		evs, more := s.events.since(id, after)
		for _, e := range evs {
			live.add(e.Part, e.State)
			e.JobState = live.state()
			if e.Progress != nil && hasSpec {
				p := *e.Progress
				shardTotal(&spec, e.Shard, &p)
				e.Progress = &p
			}
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", e.Offset, e.Type, data)
			after = e.Offset
			if e.Part == "job" && e.State.Final() {
				fmt.Fprintf(w, "event: end\ndata: {\"state\":%q}\n\n", e.State)
				fl.Flush()
				return
			}
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-more:
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}
