// Package shard cuts one window into N disjoint shards that together are the
// whole window, and holds what shards exchange to start on one instant and
// to report: the armed record, the start the barrier computes, and the
// Coordinator interface a transport (runbus, over Kafka) implements.
//
// A shard is planned from the resolved window alone (Plan), so every
// process that resolves the same window computes the same plan, with no
// coordinator. Indexes are 0-based, as Kubernetes Indexed Jobs number their
// pods (JOB_COMPLETION_INDEX): shard "2/8" is the third of eight, 0..7.
package shard

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Environment variables read by FromEnv (`--shard auto`) and for the run ID.
const (
	EnvIndex = "JOB_COMPLETION_INDEX" // set by Kubernetes on the pods of an Indexed Job
	EnvCount = "REPLAYCTL_SHARDS"
	EnvRunID = "REPLAYCTL_RUN_ID"
)

// MaxCount bounds the number of shards of one run.
const MaxCount = 4096

// Spec names one shard of a run: Index in [0, Count), and the run it
// belongs to (the key of its records on the run topic).
type Spec struct {
	Index, Count int
	RunID        string
}

// ErrSpec is wrapped by every error about a shard spec (a usage error).
var ErrSpec = errors.New("bad shard")

// String returns "Index/Count".
func (s Spec) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Validate checks the index, the count and the run ID.
func (s Spec) Validate() error {
	switch {
	case s.Count < 1 || s.Count > MaxCount:
		return fmt.Errorf("%w: %d shards: want 1 to %d", ErrSpec, s.Count, MaxCount)
	case s.Index < 0 || s.Index >= s.Count:
		return fmt.Errorf("%w: index %d of %d: indexes are 0-based, 0 to %d (as JOB_COMPLETION_INDEX)", ErrSpec, s.Index, s.Count, s.Count-1)
	}
	return ValidateRunID(s.RunID)
}

// ValidateRunID checks a run ID: 1 to 128 characters among letters,
// digits, '.', '_', '-' and ':'.
func ValidateRunID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: a sharded run needs a run ID (--run-id or %s): the shards meet on the run topic under it", ErrSpec, EnvRunID)
	}
	if len(id) > 128 {
		return fmt.Errorf("%w: run ID %q: longer than 128 characters", ErrSpec, id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-:", r)) {
			return fmt.Errorf("%w: run ID %q: only letters, digits, '.', '_', '-' and ':'", ErrSpec, id)
		}
	}
	return nil
}

// Parse reads "INDEX/COUNT" (0-based index), or "auto" for FromEnv with
// os.Getenv. The run ID is left empty.
func Parse(s string) (Spec, error) {
	if strings.TrimSpace(s) == "auto" {
		return FromEnv(os.Getenv)
	}
	i, n, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Spec{}, fmt.Errorf("%w: %q: want INDEX/COUNT (0-based index, for example 0/4) or auto", ErrSpec, s)
	}
	idx, err1 := strconv.Atoi(i)
	cnt, err2 := strconv.Atoi(n)
	if err1 != nil || err2 != nil {
		return Spec{}, fmt.Errorf("%w: %q: want INDEX/COUNT with whole numbers (for example 0/4) or auto", ErrSpec, s)
	}
	sp := Spec{Index: idx, Count: cnt}
	return sp, sp.validateNumbers()
}

func (s Spec) validateNumbers() error {
	s.RunID = "x"
	return s.Validate()
}

// FromEnv reads the index from JOB_COMPLETION_INDEX and the count from
// REPLAYCTL_SHARDS, as an Indexed Job's pods get them.
func FromEnv(getenv func(string) string) (Spec, error) {
	is, ns := strings.TrimSpace(getenv(EnvIndex)), strings.TrimSpace(getenv(EnvCount))
	if is == "" || ns == "" {
		return Spec{}, fmt.Errorf("%w: --shard auto needs %s (the pod's index in an Indexed Job) and %s (the number of shards); got %s=%q %s=%q",
			ErrSpec, EnvIndex, EnvCount, EnvIndex, is, EnvCount, ns)
	}
	idx, err1 := strconv.Atoi(is)
	cnt, err2 := strconv.Atoi(ns)
	if err1 != nil || err2 != nil {
		return Spec{}, fmt.Errorf("%w: --shard auto: %s=%q and %s=%q must be whole numbers", ErrSpec, EnvIndex, is, EnvCount, ns)
	}
	sp := Spec{Index: idx, Count: cnt}
	return sp, sp.validateNumbers()
}
