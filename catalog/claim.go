package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// SaveMode says what SaveAs does when the name is already taken.
type SaveMode int

// Save modes.
const (
	// Create refuses a taken name (ErrExists).
	Create SaveMode = iota
	// Overwrite replaces the saved window.
	Overwrite
	// KeepHistory replaces the saved window after saving a copy of it as
	// NAME@<its save time> (HistoryName).
	KeepHistory
)

func (m SaveMode) String() string {
	switch m {
	case Overwrite:
		return "overwrite"
	case KeepHistory:
		return "keep-history"
	}
	return "create"
}

// DefaultClaimTTL is how long a claim holds off other saves of its name.
// A save commits within half of it or gives up.
const DefaultClaimTTL = time.Minute

// claimHeader marks claim records; their key is claimPrefix + the name, so
// that compaction keeps one claim per name and never a claim in place of
// a window.
const (
	claimHeader = "replayctl-catalog"
	claimPrefix = "replayctl.claim/"
)

// claim is the value of a claim record.
type claim struct {
	Name        string   `json:"name"`
	ID          string   `json:"claim"`
	Mode        SaveMode `json:"mode"`
	Host        string   `json:"host,omitempty"`
	PID         int      `json:"pid,omitempty"`
	Job         string   `json:"job,omitempty"`
	Scenario    string   `json:"scenario,omitempty"`
	RecordingID string   `json:"recording-id,omitempty"`
}

func isClaim(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == claimHeader && string(h.Value) == "claim" {
			return true
		}
	}
	return bytes.HasPrefix(r.Key, []byte(claimPrefix))
}

// Saved tells what a save replaced.
type Saved struct {
	// Replaced is the window the save replaced, nil when the name was free.
	Replaced *Window
	// KeptAs is the name the replaced window was kept under (KeepHistory).
	KeptAs string
}

// HistoryName is the name a replaced window is kept under with KeepHistory
// (SaveAs adds -2, -3, … when a window kept before has it).
func HistoryName(w Window) string {
	return w.Name + "@" + w.CreatedAt.UTC().Format("20060102T150405Z")
}

// SaveAs stores w under w.Name. The catalog's own log decides between
// saves of one name under way at the same time, on any broker: each save
// first appends a claim record for the name, then reads the catalog up to
// its claim. Replaying the log in offset order, a claim wins when no other
// claim of the name is pending (appended after the name's last saved window
// and less than ClaimTTL older than it) and, in Create mode, when the name
// is free at that point. Every save sees the same log before its claim, so
// exactly one of two concurrent saves wins; the other returns an error
// wrapping ErrConflict (or ErrExists) and writes nothing more. The winner
// writes the old window's copy (KeepHistory), then w.
//
// A zero CreatedAt is set to now.
func (c *Catalog) SaveAs(ctx context.Context, w Window, mode SaveMode) (Saved, error) {
	if w.Name == "" {
		return Saved{}, errors.New("saving window: empty name")
	}
	if strings.HasPrefix(w.Name, claimPrefix) {
		return Saved{}, fmt.Errorf("saving window %q: %q starts the keys of the catalog's claims: a window of that name would be taken for a claim; choose another name", w.Name, claimPrefix)
	}
	if w.Topic == "" {
		return Saved{}, fmt.Errorf("saving window %q: empty topic", w.Name)
	}
	ends, err := EndOffsets(ctx, kadm.NewClient(c.cl), c.topic)
	if err != nil {
		return Saved{}, fmt.Errorf("saving window %q: %w", w.Name, err)
	}
	if len(ends) > 1 {
		return Saved{}, fmt.Errorf("saving window %q: catalog topic %s has %d partitions; it needs exactly 1, whose order decides between concurrent saves",
			w.Name, c.topic, len(ends))
	}
	ttl := c.ClaimTTL
	if ttl <= 0 {
		ttl = DefaultClaimTTL
	}
	mine := claim{Name: w.Name, ID: newClaimID(), Mode: mode, PID: os.Getpid(), Job: w.Job, Scenario: w.Scenario, RecordingID: w.RecordingID}
	mine.Host, _ = os.Hostname()
	value, err := json.Marshal(mine)
	if err != nil {
		return Saved{}, fmt.Errorf("saving window %q: %w", w.Name, err)
	}
	claimed := time.Now()
	rec := &kgo.Record{
		Topic: c.topic, Key: []byte(claimPrefix + w.Name), Value: value, Timestamp: claimed,
		Headers: []kgo.RecordHeader{{Key: claimHeader, Value: []byte("claim")}},
	}
	if err := kafkaio.ProduceBounded(ctx, c.cl, rec); err != nil {
		return Saved{}, fmt.Errorf("saving window %q: claiming the name in %s: %w", w.Name, c.topic, err)
	}
	if c.afterClaim != nil {
		c.afterClaim()
	}
	d, err := c.decide(ctx, mine, rec.Partition, rec.Offset, ttl)
	if err != nil {
		return Saved{}, fmt.Errorf("saving window %q: %w", w.Name, err)
	}
	if d.err != nil {
		return Saved{}, d.err
	}
	// Others wait for this claim for ttl from its timestamp; commit well
	// within it, or not at all.
	if left := ttl/2 - time.Since(claimed); left <= 0 {
		return Saved{}, fmt.Errorf("saving window %q: reading the catalog took longer than %s; nothing saved", w.Name, ttl/2)
	}
	out := Saved{Replaced: d.current}
	if mode == KeepHistory && d.current != nil {
		kept := *d.current
		// Windows of one name saved within a second share their
		// HistoryName: a copy kept before is not overwritten. Only the
		// claim's winner keeps a copy, so no other save picks the same.
		saved, err := c.load(ctx)
		if err != nil {
			return Saved{}, fmt.Errorf("saving window %q: %w", w.Name, err)
		}
		kept.Name = HistoryName(kept)
		for i := 2; ; i++ {
			if _, taken := saved[kept.Name]; !taken {
				break
			}
			kept.Name = fmt.Sprintf("%s-%d", HistoryName(*d.current), i)
		}
		if err := c.put(ctx, kept); err != nil {
			return Saved{}, fmt.Errorf("saving window %q: keeping the replaced one as %q: %w", w.Name, kept.Name, err)
		}
		out.KeptAs = kept.Name
	}
	if w.CreatedAt.IsZero() {
		w.CreatedAt = time.Now().UTC()
	}
	if err := c.put(ctx, w); err != nil {
		return Saved{}, fmt.Errorf("saving window %q: %w", w.Name, err)
	}
	return out, nil
}

// put writes w as the latest record of its name.
func (c *Catalog) put(ctx context.Context, w Window) error {
	v, err := json.Marshal(w)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: c.topic, Key: []byte(w.Name), Value: v}
	if err := kafkaio.ProduceBounded(ctx, c.cl, rec); err != nil {
		return fmt.Errorf("writing to %s: %w", c.topic, err)
	}
	return nil
}

// decision is the outcome of a claim.
type decision struct {
	current *Window // the name's window when the claim was appended
	err     error   // nil: the claim won
}

// decide replays the catalog up to and including the claim at offset in
// partition and tells whether mine won.
func (c *Catalog) decide(ctx context.Context, mine claim, partition int32, offset int64, ttl time.Duration) (decision, error) {
	type pending struct {
		claim
		at     time.Time
		offset int64
	}
	var (
		current *Window
		wait    *pending
		out     *decision
	)
	err := c.scan(ctx, map[int32]int64{partition: offset + 1}, func(r *kgo.Record) {
		if out != nil {
			return
		}
		if isClaim(r) {
			var cl claim
			if r.Value == nil || json.Unmarshal(r.Value, &cl) != nil || cl.Name != mine.Name {
				return
			}
			var lost error
			switch {
			case wait != nil && !r.Timestamp.After(wait.at.Add(ttl)):
				lost = fmt.Errorf("%w: window %q was saved at the same time by %s, whose claim came first (offset %d of %s); nothing replaced",
					ErrConflict, mine.Name, wait.who(), wait.offset, c.topic)
			case cl.Mode == Create && current != nil:
				lost = fmt.Errorf("%w: window %q already exists (saved %s by job %s); use --overwrite to replace it, or --keep-history to keep it as %s",
					ErrExists, mine.Name, current.CreatedAt.Format(time.RFC3339), current.Job, HistoryName(*current))
			default:
				wait = &pending{claim: cl, at: r.Timestamp, offset: r.Offset}
			}
			if cl.ID == mine.ID {
				out = &decision{current: current, err: lost}
			}
			return
		}
		if string(r.Key) != mine.Name {
			return
		}
		if r.Value == nil {
			current = nil // removed; a pending claim still holds
			return
		}
		var w Window
		if json.Unmarshal(r.Value, &w) != nil || w.Name != mine.Name {
			return
		}
		current, wait = &w, nil // a saved window ends the pending claim
	})
	if err != nil {
		return decision{}, err
	}
	if out == nil {
		return decision{}, fmt.Errorf("claim %s not found in %s up to offset %d", mine.ID, c.topic, offset)
	}
	return *out, nil
}

// who describes a claim's save for an error message.
func (c claim) who() string {
	s := "another save"
	if c.Job != "" {
		s = "job " + c.Job
		if c.Scenario != "" {
			s += " of scenario " + c.Scenario
		}
	}
	if c.Host != "" {
		s += fmt.Sprintf(" (host %s, pid %d)", c.Host, c.PID)
	}
	return s
}

func newClaimID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
