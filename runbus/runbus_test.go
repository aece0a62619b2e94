package runbus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/shard"
)

func armedRec(run string, i, n int) shard.Record {
	return shard.Record{RunID: run, Shard: i, Count: n, Nonce: NewNonce(), At: time.Now(), T0: int64(100 + i), Window: "fp", Margin: 200 * time.Millisecond}
}

func TestBarrierOverKafka(t *testing.T) {
	for _, br := range kafkatest.Brokers(t) {
		t.Run(br.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topic := kafkatest.UniqueTopic(t)
			run := "run-" + NewNonce()
			const n = 4
			starts := make([]shard.Start, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					time.Sleep(time.Duration(i) * 50 * time.Millisecond)
					b, err := Open(ctx, br.Opts(), topic, nil)
					if err != nil {
						errs[i] = err
						return
					}
					defer b.Close()
					starts[i], errs[i] = b.Arm(ctx, armedRec(run, i, n), 20*time.Second)
				})
			}
			wg.Wait()
			for i := range n {
				if errs[i] != nil {
					t.Fatalf("shard %d: %v", i, errs[i])
				}
				if !starts[i].At.Equal(starts[0].At) || starts[i].T0 != 100 {
					t.Fatalf("shard %d start %v T0 %d, shard 0 %v", i, starts[i].At, starts[i].T0, starts[0].At)
				}
			}
			b, err := Open(ctx, br.Opts(), topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			// A second attempt at shard 2 of the same run: too late.
			if _, err := b.Arm(ctx, armedRec(run, 2, n), 5*time.Second); !errors.Is(err, shard.ErrStarted) {
				t.Fatalf("late shard: %v", err)
			}
			for i := range n {
				if err := b.Publish(ctx, shard.Record{Kind: shard.KindResult, RunID: run, Shard: i, Count: n, Report: []byte(fmt.Sprintf(`{"i":%d}`, i))}); err != nil {
					t.Fatal(err)
				}
			}
			recs, bad, err := b.Records(ctx, run)
			if err != nil || bad != 0 {
				t.Fatal(err, bad)
			}
			var results int
			for _, r := range recs {
				if r.Kind == shard.KindResult {
					results++
				}
			}
			if len(recs) != 2*n+1 || results != n {
				t.Fatalf("%d records, %d results", len(recs), results)
			}
		})
	}
}

func TestArmTimeoutNamesMissingShards(t *testing.T) {
	for _, br := range kafkatest.Brokers(t) {
		t.Run(br.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			topic := kafkatest.UniqueTopic(t)
			run := "run-" + NewNonce()
			b, err := Open(ctx, br.Opts(), topic, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i := range 2 {
				wg.Go(func() { _, errs[i] = b.Arm(ctx, armedRec(run, i*2, 4), 2*time.Second) })
			}
			wg.Wait()
			for i, err := range errs {
				if !errors.Is(err, shard.ErrAborted) || !strings.Contains(err.Error(), "shards 1, 3 not armed after 2s") {
					t.Fatalf("shard %d: %v", i*2, err)
				}
			}
		})
	}
}

// TestReadFromNeverSkipsARecord: the offset a shard starts reading the run
// topic from is at or before a record another shard writes while it lists
// offsets, also on a fresh, empty topic (where kadm answers "after this
// millisecond" with an end offset taken later).
func TestReadFromNeverSkipsARecord(t *testing.T) {
	br := kafkatest.Brokers(t)[0]
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := range 30 {
		b, err := Open(ctx, br.Opts(), kafkatest.UniqueTopic(t)+strconv.Itoa(i), nil)
		if err != nil {
			t.Fatal(err)
		}
		var rec *kgo.Record
		var perr error
		var wg sync.WaitGroup
		wg.Go(func() {
			time.Sleep(time.Duration(i%5) * 200 * time.Microsecond)
			rec = &kgo.Record{Topic: b.topic, Key: []byte("r"), Value: []byte("{}")}
			perr = b.cl.ProduceSync(ctx, rec).FirstErr()
		})
		from, err := b.readFrom(ctx, time.Now().Add(-time.Minute))
		wg.Wait()
		b.Close()
		if err != nil || perr != nil {
			t.Fatal(err, perr)
		}
		if got := from[rec.Partition].EpochOffset().Offset; got > rec.Offset {
			t.Fatalf("try %d: reading from offset %d skips the record at %d", i, got, rec.Offset)
		}
	}
}

// TestPublishBoundedWhenBrokerGone: a record sent to a broker that then
// died is never answered, and franz-go, idempotent, waits for that answer
// for ever whatever the context. The run topic's publications end with
// their context anyway, saying so.
func TestPublishBoundedWhenBrokerGone(t *testing.T) {
	e, err := kafkaio.StartEmbedded(context.Background(), kafkaio.EmbeddedOptions{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	stop := func() { closeOnce.Do(func() { _ = e.Close() }) }
	t.Cleanup(stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, []kgo.Opt{kgo.SeedBrokers(e.Addrs()...)}, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	run := "run-" + NewNonce()
	res := shard.Record{Kind: shard.KindResult, RunID: run, Shard: 0, Count: 1, Report: []byte(`{}`)}
	if err := b.Publish(ctx, res); err != nil {
		t.Fatal(err)
	}
	stop()
	time.Sleep(200 * time.Millisecond)
	const wait = time.Second
	for _, kind := range []string{"result", "abort"} {
		start := time.Now()
		pctx, pcancel := context.WithTimeout(ctx, wait)
		if kind == "result" {
			err = b.Publish(pctx, res)
		} else {
			err = b.Abort(pctx, res)
		}
		pcancel()
		took := time.Since(start)
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not acknowledged by Kafka within") {
			t.Fatalf("%s published to a dead broker: %v", kind, err)
		}
		if took > wait+10*time.Second { // bounded: the context, a second of grace, a second after the abort, and slack for a loaded machine
			t.Fatalf("%s: %s to give up, for a %s context", kind, took, wait)
		}
		t.Logf("%s: gave up after %s: %v", kind, took.Round(time.Millisecond), err)
	}
}
