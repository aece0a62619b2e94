package kafkaio

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestStamperRenews: the stamper installs itself anew every renewEvery
// produce requests (dropping kfake's memory of every connection's last
// request), and the observers at each request they see; stamping and
// forgetting a reconfigured topic go on across the renewals.
func TestStamperRenews(t *testing.T) {
	defer func(n int) { renewEvery = n }(renewEvery)
	renewEvery = 3
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	e, err := StartEmbedded(ctx, EmbeddedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	adm, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	if _, err := EnsureTopic(ctx, ka, "t", 1, 1, map[string]string{"message.timestamp.type": "CreateTime"}); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var produced []time.Time
	for round := range 4 {
		if round == 2 {
			for range 2 { // twice: the observer renewed itself after the first
				alter := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "message.timestamp.type", Value: kadm.StringPtr("LogAppendTime")}}
				if res, err := ka.AlterTopicConfigs(ctx, alter, "t"); err != nil || res[0].Err != nil {
					t.Fatalf("altering: %v %v", err, res)
				}
			}
		}
		for range 5 { // more than renewEvery: one connection, one request each
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "t", Value: []byte("v"), Timestamp: past}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			cl.Close()
			produced = append(produced, past)
		}
	}
	// 20 produce requests, renewed every 3: 6 times (and the function
	// renewed answers: the later records are stamped, below).
	if n := e.stamper.renewals.Load(); n != 6 {
		t.Errorf("the stamper was installed anew %d times, want 6", n)
	}
	rd, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var got []time.Time
	for len(got) < len(produced) && ctx.Err() == nil {
		fs := rd.PollFetches(ctx)
		if errs := fs.Errors(); len(errs) > 0 {
			t.Fatal(errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, r.Timestamp) })
	}
	for i, ts := range got {
		stamped := time.Since(ts) < 5*time.Minute
		if want := i >= 10; stamped != want {
			t.Errorf("record %d: timestamp %s, stamped by the broker %v, want %v", i, ts, stamped, want)
		}
	}
}

// FuzzStampBatch: any bytes a client may send as a partition's records
// are stamped or left alone, never a panic; a batch stamped keeps a CRC
// that verifies, and its records.
func FuzzStampBatch(f *testing.F) {
	b := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: 0, FirstTimestamp: 1000, MaxTimestamp: 1005, ProducerID: -1, NumRecords: 1,
		Records: (&kmsg.Record{Length: 6, Value: []byte("v")}).AppendTo(nil)}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12)
	raw = b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[batchCRCAt:], crc32.Checksum(raw[batchAttributesAt:], crc32c))
	f.Add(raw)
	f.Add(raw[:40])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...)
		valid := len(in) >= batchHeaderLen && in[batchMagicAt] == 2 && binary.BigEndian.Uint32(in[batchCRCAt:]) == crc32.Checksum(in[batchAttributesAt:], crc32c) &&
			binary.BigEndian.Uint16(in[batchAttributesAt:])&attrLogAppendTime == 0
		stampBatch(in, 7777)
		if !valid {
			if string(in) != string(data) {
				t.Fatalf("a batch that is not one was changed")
			}
			return
		}
		if binary.BigEndian.Uint32(in[batchCRCAt:]) != crc32.Checksum(in[batchAttributesAt:], crc32c) {
			t.Fatal("stamped batch's CRC does not verify")
		}
		if first := int64(binary.BigEndian.Uint64(in[batchFirstTimestampAt:])); first != 7777 {
			t.Fatalf("first timestamp %d", first)
		}
		if string(in[batchHeaderLen:]) != string(data[batchHeaderLen:]) {
			t.Fatal("the records changed")
		}
	})
}
