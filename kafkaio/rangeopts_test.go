package kafkaio_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestRangeReaderOptionsPauseAtEnd reads a range that ends at partition 0's
// high watermark while partition 1 is paused, with tiny fetches (one batch
// each) and a fetch wait below kgo's minimum (clamped, not an error), then
// resumes partition 1: every record comes exactly once.
func TestRangeReaderOptionsPauseAtEnd(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			cl := target.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for i := range 6 {
				produce(t, cl, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "p0-%d", i)})
				produce(t, cl, &kgo.Record{Partition: 1, Value: fmt.Appendf(nil, "p1-%d", i)})
			}
			rr, err := kafkaio.NewRangeReaderWith(target.Opts(), topic,
				map[int32]kafkaio.OffsetRange{0: {Start: 1, End: 6}, 1: {Start: 0, End: 4}},
				kafkaio.RangeOptions{FetchMaxBytes: 1, FetchMaxPartitionBytes: 1, FetchMaxWait: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer rr.Close()
			rr.Pause(1)
			var got []string
			for !rr.Done() {
				recs, err := rr.Poll(ctxT(t))
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					got = append(got, string(r.Value))
				}
				if rr.PartitionDone(0) {
					rr.Resume(1)
				}
			}
			want := "p0-1,p0-2,p0-3,p0-4,p0-5,p1-0,p1-1,p1-2,p1-3"
			if strings.Join(got, ",") != want {
				t.Fatalf("read %v, want %s", got, want)
			}
		})
	}
}

// TestRangeReaderStall reads a range whose broker stops after the first
// records were polled: with StallTimeout, Poll returns an error that says
// the brokers sent nothing and why (the connection refused) instead of
// waiting for ever; without it, Poll waits as long as its context.
func TestRangeReaderStall(t *testing.T) {
	tests := []struct {
		name    string
		stall   time.Duration
		wantErr string
	}{
		{"stall timeout", time.Second, "no records from the brokers for 1s"},
		{"none", 0, context.DeadlineExceeded.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := kafkaio.StartEmbedded(ctxT(t), kafkaio.EmbeddedOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			target := kafkatest.Target{Name: "embedded", Addrs: e.Addrs()}
			topic := kafkatest.CreateTopic(t, target, 1)
			cl := target.Client(t, kgo.DefaultProduceTopic(topic))
			for i := range 200 {
				produce(t, cl, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)})
			}
			rr, err := kafkaio.NewRangeReaderWith(target.Opts(), topic,
				map[int32]kafkaio.OffsetRange{0: {Start: 0, End: 200}},
				kafkaio.RangeOptions{FetchMaxBytes: 1, FetchMaxPartitionBytes: 1, StallTimeout: tt.stall})
			if err != nil {
				t.Fatal(err)
			}
			defer rr.Close()
			if _, err := rr.Poll(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			_ = e.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			start := time.Now()
			for err == nil && !rr.Done() {
				_, err = rr.Poll(ctx)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Poll = %v after %v, want %q", err, time.Since(start), tt.wantErr)
			}
			if tt.stall > 0 && !strings.Contains(err.Error(), "connection refused") {
				t.Errorf("Poll = %v: want the connection error", err)
			}
		})
	}
}
