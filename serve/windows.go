package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
)

// WindowView is a saved recording with what the fleet knows of it: the job
// that recorded it and whether every host's part of it succeeded.
type WindowView struct {
	catalog.Window
	Records int64 `json:"records"`
	SpanMs  int64 `json:"span_ms"`
	// Partial marks a window whose recording lost messages (the catalog's
	// Partial, which this field shadows in JSON) or whose recording job
	// did not end well on every host: PartialReasons says which and why.
	Partial        bool     `json:"partial"`
	PartialReasons []string `json:"partial_reasons,omitempty"`
	RecordedBy     string   `json:"recorded_by,omitempty"` // the fleet job
}

func (s *Server) catalog(ctx context.Context) (*catalog.Catalog, error) {
	return catalog.Open(ctx, s.bus.Plain(), s.bus.Admin(), catalog.DefaultTopic)
}

// windowViews describes windows with their recording jobs.
func (s *Server) windowViews(ws []catalog.Window) []WindowView {
	// Only a verified spec ties a window to its job: anyone who may write
	// to Kafka could publish one naming a window's recording ID, to mark
	// it partial or claim it. Only the specs naming one of these windows'
	// recordings are verified.
	recs := map[string]bool{}
	for _, w := range ws {
		if w.RecordingID != "" {
			recs[w.RecordingID] = true
		}
	}
	byRec := map[string]string{}
	for id, r := range s.specIndex("") {
		if r.spec.Recording != nil && recs[r.spec.Recording.ID] {
			if sp := s.verifiedSpec(r); sp.verified && sp.Recording != nil {
				byRec[sp.Recording.ID] = id
			}
		}
	}
	out := make([]WindowView, 0, len(ws))
	for _, w := range ws {
		v := WindowView{Window: w, Records: w.Records(), Partial: w.Partial}
		if w.Partial {
			why := catalog.LostText(w.Lost)
			if why == "" {
				why = "causes not recorded"
			}
			v.PartialReasons = append(v.PartialReasons, "the recording lost "+why)
		}
		if !w.StartedAt.IsZero() && !w.EndedAt.IsZero() {
			v.SpanMs = w.EndedAt.Sub(w.StartedAt).Milliseconds()
		}
		if id, ok := byRec[w.RecordingID]; ok && w.RecordingID != "" {
			v.RecordedBy = id
			if js, ok := s.bus.Status("job/" + id); ok && js.State != fleet.Succeeded {
				v.Partial = true
				v.PartialReasons = append(v.PartialReasons, fmt.Sprintf("job %s ended %s", id, js.State))
			}
			for k, p := range s.bus.StatusPrefix("job/" + id + "/") {
				_ = k
				if p.State.Final() && p.State != fleet.Succeeded {
					v.Partial = true
					v.PartialReasons = append(v.PartialReasons, fmt.Sprintf("%s: %s %s", p.Agent, p.State, p.Reason))
				}
			}
			slices.Sort(v.PartialReasons)
		}
		out = append(out, v)
	}
	return out
}

func (s *Server) listWindows(w http.ResponseWriter, r *http.Request, _ Token) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	c, err := s.catalog(ctx)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	ws, err := c.List(ctx)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	_ = s.sync(ctx)
	writeJSON(w, http.StatusOK, s.windowViews(ws))
}

func (s *Server) getWindow(w http.ResponseWriter, r *http.Request, _ Token) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	c, err := s.catalog(ctx)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	win, err := c.Get(ctx, r.PathValue("name"))
	if errors.Is(err, catalog.ErrNotFound) {
		fail(w, http.StatusNotFound, "%v", err)
		return
	}
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	_ = s.sync(ctx)
	writeJSON(w, http.StatusOK, s.windowViews([]catalog.Window{win})[0])
}

func (s *Server) deleteWindow(w http.ResponseWriter, r *http.Request, tok Token) {
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	c, err := s.catalog(ctx)
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	name := r.PathValue("name")
	err = c.Remove(ctx, name)
	if errors.Is(err, catalog.ErrNotFound) {
		fail(w, http.StatusNotFound, "%v", err)
		return
	}
	if err != nil {
		fail(w, http.StatusBadGateway, "%v", err)
		return
	}
	s.log.Info("window removed", "window", name, "token", tok.Name)
	writeJSON(w, http.StatusOK, map[string]string{"removed": name})
}

func (s *Server) listScenarios(w http.ResponseWriter, _ *http.Request, _ Token) {
	files, err := s.dir.list()
	if err != nil {
		fail(w, http.StatusInternalServerError, "scenarios directory: %v", err)
		return
	}
	out := []ScenarioInfo{}
	for _, f := range files {
		text, err := s.dir.read(f)
		if err != nil {
			out = append(out, ScenarioInfo{File: f, Problems: []string{err.Error()}, Vars: []VarInfo{}, Jobs: []JobInfo{}})
			continue
		}
		out = append(out, describeScenario(s.dir.path, f, text))
	}
	writeJSON(w, http.StatusOK, out)
}
