package fleet

import (
	"cmp"
	"context"
	"fmt"
	"time"
)

// settleGrace is how long after its last part ended a job that did not
// end is settled by any agent (settleStale): longer than the settlement
// of the run that ended last takes at most (finishJob's 30 s).
var settleGrace = 45 * time.Second

// sweptSpec is a job's spec as settleStale read it at offset: ok when it
// verified (by this agent's --trust, which does not change) and is the
// job's.
type sweptSpec struct {
	offset int64
	spec   Spec
	ok     bool
}

// settleStale settles the jobs whose parts all ended at least settleGrace
// ago while the job did not: the process that wrote the last part's final
// status (a run that ended, an agent that failed a lost shard or refused a
// resume) was stopped or killed before it wrote the job's (finishJob), and
// no one else would. It looks at most every settleGrace/4, and settles
// each job once a settleGrace; finishJob Syncs first and leaves a job
// another agent settled meanwhile as it is. Every agent that trusts the
// job's spec may do it: the spec is read as signed from the jobs topic.
//
// A pass costs what the jobs not ended cost: it copies their statuses
// only, reads and verifies each one's spec once (sweptSpecs), and looks
// their parts up by key before it reads them as finishJob does (jobParts).
// A PENDING job names no spec yet (its submitter's ASSIGNED does): its
// runs' finishJob waits for that (awaitAssigned).
func (a *Agent) settleStale(now time.Time) {
	if now.Sub(a.lastSweep) < settleGrace/4 {
		return
	}
	a.lastSweep = now
	open := map[string]bool{}
	for _, js := range a.bus.openJobs() {
		open[js.JobID] = true
		if js.State == Pending || now.Sub(a.swept[js.JobID]) < settleGrace {
			continue
		}
		spec, ok := a.sweptSpec(js.JobID, js.SpecOffset)
		if !ok {
			continue
		}
		if !partsFinal(a.bus, spec, js.SpecOffset) {
			if len(a.lostParts(spec, js.SpecOffset, now)) > 0 {
				a.failLost(spec, js.SpecOffset, now)
			}
			continue
		}
		parts := jobParts(a.bus, spec)
		var last time.Time
		ended := len(parts) > 0
		for _, p := range parts {
			if !p.State.Final() {
				ended = false
				break
			}
			if p.At.After(last) {
				last = p.At
			}
		}
		if !ended || now.Sub(last) < settleGrace {
			continue
		}
		if a.swept == nil {
			a.swept = map[string]time.Time{}
		}
		a.swept[js.JobID] = now
		a.log.Warn("settling a job whose parts all ended without it", "job", spec.JobID, "last part ended", last.Format(time.RFC3339))
		a.settle(spec)
	}
	// The jobs that ended since are forgotten.
	for id := range a.sweptSpecs {
		if !open[id] {
			delete(a.sweptSpecs, id)
		}
	}
	for id := range a.swept {
		if !open[id] {
			delete(a.swept, id)
		}
	}
}

// sweptSpec is job id's spec at offset of the jobs topic when it verifies
// (specAt), remembered once read: a record not read yet is asked for again
// at the next pass.
func (a *Agent) sweptSpec(id string, offset int64) (Spec, bool) {
	if c, ok := a.sweptSpecs[id]; ok && c.offset == offset {
		return c.spec, c.ok
	}
	if _, read := a.bus.JobAt(offset); !read {
		return Spec{}, false
	}
	spec, ok := a.specAt(id, offset)
	if a.sweptSpecs == nil {
		a.sweptSpecs = map[string]sweptSpec{}
	}
	a.sweptSpecs[id] = sweptSpec{offset: offset, spec: spec, ok: ok}
	return spec, ok
}

// partKey is the status key of a job's part i: its agent's for a record
// job, its shard's for a replay.
func partKey(spec Spec, i int) string {
	if spec.Kind == KindRecord {
		return agentKey(spec.JobID, spec.Agents[i])
	}
	return shardKey(spec.JobID, i)
}

// partsFinal says, by one lookup of each part's status (and, for a part
// with none, of its agent's refusal of the spec at offset), whether every
// part of the job may be final: false when one is not, as jobParts would
// read it.
func partsFinal(b *Bus, spec Spec, offset int64) bool {
	for i, name := range spec.Agents {
		if s, ok := b.Status(partKey(spec, i)); ok {
			if !s.State.Final() {
				return false
			}
			continue
		}
		if _, ok := b.Status(refusedKey(spec.JobID, name, offset)); !ok {
			return false
		}
	}
	return true
}

// lostParts returns the parts of a job that are not final and whose agent
// has been lost (no heartbeat, or a clean stop) for settleGrace or more,
// when every part not final is such: a part whose agent runs on, or a
// replay shard that a live agent matching the job may re-run or fail
// (watchShards), leaves the job to them. No one else would end these: a
// record job's part has no spare, and a replay whose matching agents are
// all gone has no one to act; the job stayed RUNNING for good.
func (a *Agent) lostParts(spec Spec, offset int64, now time.Time) []Status {
	// Until the bus has read the agents' heartbeats live for settleGrace,
	// one read from before it opened may carry its agent's own clock (an
	// agents topic created CreateTime): a live agent whose clock is
	// behind would look lost since minutes.
	if now.Sub(a.bus.OpenedAt()) < settleGrace {
		return nil
	}
	var lost []Status
	for i, name := range spec.Agents {
		st, ok := a.bus.Status(partKey(spec, i))
		if ok && st.State.Final() {
			continue
		}
		if !ok {
			if _, refused := a.bus.Status(refusedKey(spec.JobID, name, offset)); refused {
				continue
			}
			st = Status{JobID: spec.JobID, Kind: spec.Kind, Agent: name, State: Pending, SpecOffset: offset}
			if spec.Kind != KindRecord {
				sh := i
				st.Shard = &sh
			}
		}
		owner := cmp.Or(st.Agent, name)
		if a.bus.AgentAlive(owner, now) {
			return nil
		}
		// An agent never seen (no heartbeat on the topic) is no agent
		// this one knows to be gone.
		seen, known := a.bus.LastSeen(owner)
		if !known || now.Sub(seen) < settleGrace {
			return nil
		}
		// A live agent that may re-run or fail the shard (watchShards) is
		// given as long again; one that does not (its spec refused, say)
		// would leave the job RUNNING for good.
		if spec.Kind != KindRecord && a.liveMatching(spec, now) && now.Sub(seen) < 2*settleGrace {
			return nil
		}
		lost = append(lost, st)
	}
	return lost
}

// liveMatching says whether a live agent that allows replay matches the
// job's selector.
func (a *Agent) liveMatching(spec Spec, now time.Time) bool {
	for _, h := range a.bus.Agents() {
		if h.Labels.Matches(spec.Selector) && h.Allows(KindReplay) && a.bus.AgentAlive(h.Name, now) {
			return true
		}
	}
	return false
}

// failLost ends the lost parts (lostParts) FAILED, saying since when
// their agent is gone, and then the job (finishJob: a record job's window
// is saved partial, the host that failed counted). It reads the topics to
// their end and looks for them again first (an agent heartbeating since, a
// part that ended meanwhile). Every agent that trusts the spec may do it
// at once: each writes the same statuses, and finishJob leaves a job
// another agent settled as it is. swept is set at sweep (settleStale).
func (a *Agent) failLost(spec Spec, offset int64, sweep time.Time) {
	if a.swept == nil {
		a.swept = map[string]time.Time{}
	}
	a.swept[spec.JobID] = sweep
	sctx, cancel := context.WithTimeout(a.pub, 5*time.Second)
	err := a.bus.Sync(sctx)
	cancel()
	if err != nil {
		return
	}
	now := time.Now()
	lost := a.lostParts(spec, offset, now)
	if len(lost) == 0 {
		return
	}
	for _, st := range lost {
		owner := st.Agent
		seen, _ := a.bus.LastSeen(owner)
		since := fmt.Sprintf("no heartbeat since %s (%s before this part was ended)", seen.UTC().Format(time.RFC3339), now.Sub(seen).Truncate(time.Second))
		what := "while its part was " + string(st.State)
		if spec.Kind == KindRecord {
			what += "; what it captured until then is not counted in the window's figures, and may be in the topic: a replay of the window sends what of it lies within the window's offsets"
		} else {
			what += "; no live agent matches " + spec.Selector.String() + " to re-run its shard"
		}
		st.State, st.At = Failed, time.Time{}
		st.Reason = fmt.Sprintf("agent %s lost: %s, %s", owner, since, what)
		st.SpecOffset = offset
		key := agentKey(spec.JobID, owner)
		if st.Shard != nil {
			key = shardKey(spec.JobID, *st.Shard)
		}
		a.log.Warn("ending the part of a lost agent", "job", spec.JobID, "agent", owner, "reason", st.Reason)
		if err := a.bus.PublishStatus(a.pub, key, st); err != nil {
			a.log.Warn("status not published", "key", key, "err", err)
			return
		}
	}
	a.settle(spec)
}
