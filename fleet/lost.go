package fleet

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// lostKey keeps the record of a shard lost at one attempt (the shard's own
// key moves on to the spare's run).
func lostKey(id string, shard, attempt int) string {
	return fmt.Sprintf("job/%s/shard/%d/lost/%d", id, shard, attempt)
}

// watchShards finds replay shards whose agent stopped heartbeating (LOST
// after LostAfterBeats missed heartbeats) and re-runs them on a spare: a
// live, idle agent that matches the job's selector and allows replay. Every
// agent computes the same choice from the same topics (the first spare by
// name takes it), so no coordinator is needed. Without a spare, or once
// the spec has expired (a re-run takes it again), the first live matching
// agent fails the shard and says why.
func (a *Agent) watchShards(ctx context.Context) {
	if _, ok := a.twin(time.Now()); ok {
		// Two processes of one name would both act on a lost shard.
		return
	}
	a.mu.Lock()
	specs := make([]accepted, 0, len(a.specs))
	for _, s := range a.specs {
		specs = append(specs, s)
	}
	busy := len(a.runs) > 0
	a.mu.Unlock()
	now := time.Now()
	for _, acc := range specs {
		spec := acc.spec
		if js, ok := a.bus.Status(jobKey(spec.JobID)); (ok && js.State.Final()) || a.cancelled(spec.JobID) {
			a.mu.Lock()
			delete(a.specs, spec.JobID)
			a.mu.Unlock()
			continue
		}
		if now.After(spec.ExpiresAt.Add(24 * time.Hour)) {
			continue
		}
		for i := range spec.Agents {
			owner, attempt := spec.Agents[i], 0
			st, ok := a.bus.Status(shardKey(spec.JobID, i))
			if ok {
				if st.State.Final() {
					continue
				}
				owner, attempt = st.Agent, st.Attempt
			}
			if owner == a.cfg.Name || a.bus.AgentAlive(owner, now) {
				continue
			}
			// Another agent may have acted already, and the owner's
			// heartbeat may only have been late: read what was written.
			if a.beforeLostSync != nil {
				a.beforeLostSync(spec.JobID, i, owner)
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := a.bus.Sync(sctx)
			cancel()
			if err != nil {
				continue
			}
			// Decided on the picture before the Sync (up to 5 s ago): the
			// owner heartbeating since, or writing its shard's status (its
			// progress), runs on; failing or re-running its shard would
			// fail a live run, or send its requests twice.
			now = time.Now()
			if a.bus.AgentAlive(owner, now) {
				continue
			}
			if _, acted := a.bus.Status(lostKey(spec.JobID, i, attempt)); acted {
				continue
			}
			if cur, cok := a.bus.Status(shardKey(spec.JobID, i)); cok && (cur.State.Final() || cur.Attempt != attempt || !cur.At.Equal(st.At)) {
				continue
			}
			var live, spares []string
			for _, h := range a.bus.Agents() {
				if !a.bus.AgentAlive(h.Name, now) || !h.Labels.Matches(spec.Selector) {
					continue
				}
				live = append(live, h.Name)
				idle := h.Job == ""
				if h.Name == a.cfg.Name {
					idle = !busy
				}
				if idle && h.Allows(KindReplay) && !slices.Contains(spec.Agents, h.Name) {
					spares = append(spares, h.Name)
				}
			}
			reason := fmt.Sprintf("agent %s missed %d heartbeats", owner, LostAfterBeats)
			// A re-run on a spare takes the spec again, so it must still be
			// valid, as for a restarted agent's resume (resumeShard).
			expired := now.After(spec.ExpiresAt)
			if len(spares) == 0 || expired {
				if len(live) == 0 || live[0] != a.cfg.Name {
					continue
				}
				why := " and no spare agent matches " + spec.Selector.String() + " (live, idle, allowing replay)"
				if expired {
					why = fmt.Sprintf("; not re-run on a spare: the spec expired at %s, and a re-run takes it again (submit with a --ttl that covers the replay for a spare to take over a lost shard)",
						spec.ExpiresAt.UTC().Format(time.RFC3339))
				}
				a.log.Warn("shard lost, not re-run", "job", spec.JobID, "shard", i, "owner", owner, "why", why)
				sh := i
				_ = a.bus.PublishStatus(ctx, lostKey(spec.JobID, i, attempt), Status{JobID: spec.JobID, Kind: spec.Kind, Agent: owner, Shard: &sh, State: Lost, Reason: reason, Attempt: attempt, SpecOffset: acc.offset})
				_ = a.bus.PublishStatus(ctx, shardKey(spec.JobID, i), Status{
					JobID: spec.JobID, Kind: spec.Kind, Agent: owner, Shard: &sh, State: Failed, Attempt: attempt, SpecOffset: acc.offset,
					Reason: reason + why,
				})
				a.finishJob(ctx, spec)
				continue
			}
			if spares[0] != a.cfg.Name || busy {
				continue
			}
			a.log.Warn("shard lost, re-running it here", "job", spec.JobID, "shard", i, "owner", owner)
			sh := i
			lost := Status{JobID: spec.JobID, Kind: spec.Kind, Agent: owner, Shard: &sh, State: Lost, Reason: reason + "; re-run on " + a.cfg.Name, Attempt: attempt, SpecOffset: acc.offset}
			if ok {
				lost.Progress = st.Progress
			}
			resume := resumeOf(lost.Progress)
			lost.Reason += ", resuming " + resume.String()
			_ = a.bus.PublishStatus(ctx, lostKey(spec.JobID, i, attempt), lost)
			// When this process read the owner's latest heartbeat, on
			// its own clock, as the re-run's scheduled instants are: the
			// heartbeat's record timestamp is the owner's clock on a broker
			// that keeps its producers' timestamps, and an owner's clock
			// 2m behind cut the possible duplicates 2m short (none
			// counted), one 1h ahead counted every request.
			lastSeen, _ := a.bus.LastSeen(owner)
			if a.onRerun != nil {
				a.onRerun(spec.JobID, i, lastSeen)
			}
			a.start(ctx, spec, acc.offset, i, attempt+1, resume, lastSeen)
			busy = true
		}
	}
}
