package kafkaio

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
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
