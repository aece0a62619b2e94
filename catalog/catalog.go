package catalog

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultTopic is the catalog topic when none is configured.
const DefaultTopic = "replayctl.windows"

// ErrNotFound is wrapped by Get and Remove for an unknown window name.
var ErrNotFound = errors.New("window not found")

// ErrExists is wrapped by Save when the name is taken and overwrite is off.
var ErrExists = errors.New("window already exists")

// ErrConflict is wrapped by Save when another save of the same name, under
// way at the same time, claimed the name first: nothing was replaced.
var ErrConflict = errors.New("another job won the window name")

// Catalog keeps windows in a compacted topic: key = window name, value =
// the window as JSON, a tombstone (nil value) removes it. Saves also write
// claim records (see SaveAs), which readers skip.
type Catalog struct {
	cl    *kgo.Client
	topic string
	// ClaimTTL is how long a save's claim on a name holds off other saves
	// of that name (DefaultClaimTTL when zero): a save that claimed a name
	// and then died stops blocking it after ClaimTTL.
	ClaimTTL time.Duration
	// afterClaim, when set (tests), runs between a save's claim and the
	// reading of the catalog that decides it.
	afterClaim func()
	// Invalid counts catalog records that did not decode (skipped by List).
	invalid atomic.Int64
}

// Open returns the catalog in topic (DefaultTopic when empty), creating the
// topic (1 partition, cleanup.policy=compact) when it is missing. cl must be
// a plain client (no consumer group): its options are reused to read the topic.
func Open(ctx context.Context, cl *kgo.Client, adm *kadm.Client, topic string) (*Catalog, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	if _, err := kafkaio.EnsureTopic(ctx, adm, topic, 1, -1, map[string]string{"cleanup.policy": "compact"}); err != nil {
		return nil, fmt.Errorf("opening window catalog: %w", err)
	}
	return &Catalog{cl: cl, topic: topic}, nil
}

// Topic returns the catalog's topic.
func (c *Catalog) Topic() string { return c.topic }

// Save stores w under w.Name: SaveAs with Create (overwrite false) or
// Overwrite.
func (c *Catalog) Save(ctx context.Context, w Window, overwrite bool) error {
	mode := Create
	if overwrite {
		mode = Overwrite
	}
	_, err := c.SaveAs(ctx, w, mode)
	return err
}

// SaveOnce saves w (Create) where several savers of one recording (w's
// RecordingID) may race, as the agents of a multi-host recording that end
// together do. When another save of the name comes first, SaveOnce waits
// for that window, up to the claim's TTL, and returns nil if it is of the
// same recording; a window of another recording is the error Save returned.
func (c *Catalog) SaveOnce(ctx context.Context, w Window) error {
	err := c.Save(ctx, w, false)
	if err == nil || w.RecordingID == "" || !errors.Is(err, ErrConflict) && !errors.Is(err, ErrExists) {
		return err
	}
	deadline := time.Now().Add(cmp.Or(c.ClaimTTL, DefaultClaimTTL))
	for {
		old, gerr := c.Get(ctx, w.Name)
		switch {
		case gerr == nil:
			if old.RecordingID == w.RecordingID {
				return nil // saved by the save that came first
			}
			return err
		case !errors.Is(gerr, ErrNotFound), time.Now().After(deadline):
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Get returns the window called name, or an error wrapping ErrNotFound.
func (c *Catalog) Get(ctx context.Context, name string) (Window, error) {
	m, err := c.load(ctx)
	if err != nil {
		return Window{}, err
	}
	w, ok := m[name]
	if !ok {
		return Window{}, fmt.Errorf("%w: no window %q in catalog %s", ErrNotFound, name, c.topic)
	}
	return w, nil
}

// List returns every window, sorted by name. It reads the whole catalog
// topic up to its current end: the latest record per name wins and
// tombstones delete.
func (c *Catalog) List(ctx context.Context) ([]Window, error) {
	m, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Window, 0, len(m))
	for _, w := range m {
		out = append(out, w)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes the windows called names (a tombstone each), all or none:
// every name is looked up first, and when one is not in the catalog nothing
// is removed and the error, wrapping ErrNotFound, names every unknown one.
// A name given twice is removed once.
func (c *Catalog) Remove(ctx context.Context, names ...string) error {
	m, err := c.load(ctx)
	if err != nil {
		return err
	}
	var unknown []string
	seen := map[string]bool{}
	var recs []*kgo.Record
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if _, ok := m[name]; !ok {
			unknown = append(unknown, strconv.Quote(name))
			continue
		}
		recs = append(recs, &kgo.Record{Topic: c.topic, Key: []byte(name)})
	}
	switch {
	case len(unknown) == 1:
		return fmt.Errorf("%w: no window %s in catalog %s", ErrNotFound, unknown[0], c.topic)
	case len(unknown) > 1:
		return fmt.Errorf("%w: no windows %s in catalog %s", ErrNotFound, strings.Join(unknown, ", "), c.topic)
	}
	// Produced together, the tombstones of the one-partition topic leave
	// in one batch as a rule.
	errs := make([]error, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := kafkaio.ProduceBounded(ctx, c.cl, rec); err != nil {
				errs[i] = fmt.Errorf("removing window %q from %s: %w", rec.Key, c.topic, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Invalid returns how many catalog records List skipped because they did
// not decode.
func (c *Catalog) Invalid() int64 { return c.invalid.Load() }

func (c *Catalog) load(ctx context.Context) (map[string]Window, error) {
	ends, err := EndOffsets(ctx, kadm.NewClient(c.cl), c.topic)
	if err != nil {
		return nil, fmt.Errorf("reading window catalog: %w", err)
	}
	m := map[string]Window{}
	var invalid int64
	err = c.scan(ctx, ends, func(r *kgo.Record) {
		if isClaim(r) {
			return
		}
		name := string(r.Key)
		if r.Value == nil {
			delete(m, name)
			return
		}
		var w Window
		if err := json.Unmarshal(r.Value, &w); err != nil || w.Name != name {
			invalid++
			return
		}
		m[name] = w
	})
	if err != nil {
		return nil, err
	}
	c.invalid.Store(invalid)
	return m, nil
}

// scan calls fn for every record of the catalog from the log start up to
// ends (exclusive), in offset order per partition.
func (c *Catalog) scan(ctx context.Context, ends map[int32]int64, fn func(*kgo.Record)) error {
	starts, err := StartOffsets(ctx, kadm.NewClient(c.cl), c.topic)
	if err != nil {
		return fmt.Errorf("reading window catalog: %w", err)
	}
	rr, err := kafkaio.NewRangeReader(c.cl.Opts(), c.topic, Between(starts, ends))
	if err != nil {
		return fmt.Errorf("reading window catalog: %w", err)
	}
	defer rr.Close()
	for !rr.Done() {
		recs, err := rr.Poll(ctx)
		if err != nil {
			return fmt.Errorf("reading window catalog %s: %w", c.topic, err)
		}
		for _, r := range recs {
			fn(r)
		}
	}
	return nil
}
