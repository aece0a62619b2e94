package kafkaio_test

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestLogAppendTime: a topic whose message.timestamp.type is LogAppendTime
// gets the broker's append time on every record, whatever its producer set,
// on the embedded broker as on Apache Kafka: franz-go's batches, compressed
// or not, and kcat's (librdkafka). A CreateTime topic keeps its producer's
// timestamps, and a topic altered to LogAppendTime is stamped from then on.
// BrokerStamps tells them apart. Apache Kafka marks the records
// LogAppendTime; the embedded broker keeps their type (logappend.go).
func TestLogAppendTime(t *testing.T) {
	kcat := kafkatest.RequireTool(t, "kcat")
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			adm := target.Admin(t)
			stamped, kept, altered := kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t), kafkatest.UniqueTopic(t)
			for topic, typ := range map[string]string{stamped: "LogAppendTime", kept: "CreateTime", altered: "CreateTime"} {
				if _, err := kafkaio.EnsureTopic(ctx, adm, topic, 1, 1, map[string]string{"message.timestamp.type": typ}); err != nil {
					t.Fatal(err)
				}
			}
			past := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
			produce := func(topic string, codec kgo.CompressionCodec) {
				t.Helper()
				cl := target.Client(t, kgo.ProducerBatchCompression(codec))
				if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: bytes.Repeat([]byte("x"), 300), Timestamp: past}).FirstErr(); err != nil {
					t.Fatalf("produce to %s: %v", topic, err)
				}
			}
			produce(stamped, kgo.NoCompression())
			produce(stamped, kgo.ZstdCompression())
			produce(kept, kgo.NoCompression())
			produce(altered, kgo.NoCompression())
			kc := exec.CommandContext(ctx, kcat, "-P", "-b", target.Addrs[0], "-t", stamped, "-z", "lz4")
			kc.Stdin = bytes.NewReader([]byte("from kcat\n"))
			if out, err := kc.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, out)
			}
			alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")}}
			if res, err := adm.AlterTopicConfigs(ctx, alter, altered); err != nil || res[0].Err != nil {
				t.Fatalf("altering %s: %v %v", altered, err, res)
			}
			produce(altered, kgo.NoCompression())

			type got struct {
				ts        time.Time
				logAppend bool
			}
			read := func(topic string, n int) []got {
				t.Helper()
				cl := target.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				var gs []got
				for len(gs) < n && ctx.Err() == nil {
					fs := cl.PollFetches(ctx)
					fs.EachError(func(_ string, _ int32, err error) { t.Logf("fetch %s: %v", topic, err) })
					fs.EachRecord(func(r *kgo.Record) { gs = append(gs, got{r.Timestamp, r.Attrs.TimestampType() == 1}) })
				}
				if len(gs) != n {
					t.Fatalf("read %d records of %s, want %d", len(gs), topic, n)
				}
				return gs
			}
			for topic, want := range map[string]bool{stamped: true, kept: false, altered: true} {
				if got, err := kafkaio.BrokerStamps(ctx, adm, topic); err != nil || got != want {
					t.Errorf("BrokerStamps(%s) = %v, %v; want %v", topic, got, err, want)
				}
			}
			real := target.Name != "embedded"
			recent := func(ts time.Time) bool { return time.Since(ts) < 5*time.Minute }
			for i, g := range read(stamped, 3) {
				if g.logAppend != real || !recent(g.ts) {
					t.Errorf("LogAppendTime topic, record %d: timestamp %s (LogAppendTime %v), want the broker's append time", i, g.ts, g.logAppend)
				}
			}
			if g := read(kept, 1)[0]; g.logAppend || !g.ts.Equal(past) {
				t.Errorf("CreateTime topic: timestamp %s (LogAppendTime %v), want the producer's %s", g.ts, g.logAppend, past)
			}
			gs := read(altered, 2)
			if gs[0].logAppend || !gs[0].ts.Equal(past) {
				t.Errorf("altered topic, record before the change: %s (LogAppendTime %v), want the producer's %s", gs[0].ts, gs[0].logAppend, past)
			}
			if gs[1].logAppend != real || !recent(gs[1].ts) {
				t.Errorf("altered topic, record after the change: %s (LogAppendTime %v), want the broker's append time", gs[1].ts, gs[1].logAppend)
			}
		})
	}
}

// TestLogAppendTimeRestart: the embedded broker's stamped batches are
// whole after a restart on the same data directory (their CRC was made
// anew with their timestamps).
func TestLogAppendTimeRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	e, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	target := kafkatest.Target{Name: "embedded", Addrs: e.Addrs()}
	const topic = "stamped"
	if _, err := kafkaio.EnsureTopic(ctx, target.Admin(t), topic, 1, 1, map[string]string{"message.timestamp.type": "LogAppendTime"}); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour)
	cl := target.Client(t)
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v"), Timestamp: past}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, err = kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	target.Addrs = e.Addrs()
	rd := target.Client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := rd.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatalf("reading after the restart: %v", errs[0].Err)
	}
	recs := fs.Records()
	if len(recs) != 1 || time.Since(recs[0].Timestamp) > 5*time.Minute {
		t.Fatalf("after the restart: %d records, first at %v; want 1 stamped by the broker", len(recs), recs)
	}
}
