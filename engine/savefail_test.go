package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/engine"
)

// TestWindowNotSavedSaysWhereTheRecordsLie: when the catalog refuses the
// window (here every produce to the catalog topic fails), the error says
// where the recording's records lie, as it does when the window's name is
// taken: they stay in their topic, unnamed, and nothing else names them.
func TestWindowNotSavedSaysWhereTheRecordsLie(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "cat"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	td, err := kadm.NewClient(cl).ListTopics(context.Background(), "cat")
	if err != nil {
		t.Fatal(err)
	}
	catID := [16]byte(td["cat"].ID)
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		pr := req.(*kmsg.ProduceRequest)
		if len(pr.Topics) != 1 || pr.Topics[0].Topic != "cat" && pr.Topics[0].TopicID != catID {
			return nil, nil, false
		}
		resp := pr.ResponseKind().(*kmsg.ProduceResponse)
		for _, tp := range pr.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic, rt.TopicID = tp.Topic, tp.TopicID
			for _, p := range tp.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.InvalidRecord.Code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	pcap, err := filepath.Abs("../examples/quickstart.pcap")
	if err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf(`version: 1
name: rec
kafka: {catalog-topic: cat}
topics:
  traffic: {name: traffic-t, create: true, config: {retention.ms: "-1"}}
jobs:
  record:
    source: {pcap: {path: %s, ports: [8080], responses: true}}
    sink: {kafka: {topic: traffic}}
    save-window: w
`, pcap)
	res := run(t, t.TempDir(), yaml, engine.Options{Brokers: c.ListenAddrs()})
	if res.err == nil || !strings.Contains(res.err.Error(), "save window") {
		t.Fatalf("run = %v, want the window not saved\n%s", res.err, res.out)
	}
	if !strings.Contains(res.err.Error(), "this recording stays in topic traffic-t 0:[0,400), unnamed") {
		t.Fatalf("the error does not say where the records lie: %v", res.err)
	}
}
