package kafkaio

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnsureTopic creates topic name unless it exists. It reports whether it
// created it. rf -1 takes the broker's default replication factor. An
// existing topic is left as it is (its partitions and configs are not
// checked), also for a principal that may not create it.
func EnsureTopic(ctx context.Context, adm *kadm.Client, name string, partitions int32, rf int16, configs map[string]string) (bool, error) {
	if name == "" {
		return false, errors.New("ensure topic: empty topic name")
	}
	if partitions < 1 {
		partitions = 1
	}
	if rf == 0 {
		rf = -1
	}
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = make(map[string]*string, len(configs))
		for k, v := range configs {
			cfg[k] = &v
		}
	}
	resp, err := adm.CreateTopic(ctx, partitions, rf, cfg, name)
	if err == nil {
		err = resp.Err
	}
	switch {
	case err == nil:
		return true, waitTopic(ctx, adm, name)
	case errors.Is(err, kerr.TopicAlreadyExists):
		return false, nil
	case errors.Is(err, kerr.TopicAuthorizationFailed):
		// Kafka checks the Create ACL before it looks for the topic: a
		// principal without Create is refused even a topic that exists
		// (one created ahead of time for it, as docs/fleet.md says).
		tds, lerr := adm.ListTopics(ctx, name)
		if lerr != nil {
			return false, fmt.Errorf("topic %q: this principal may not create it (no Create ACL), and whether it exists could not be read: %w", name, lerr)
		}
		if td, ok := tds[name]; ok && td.Err == nil {
			return false, nil
		}
		return false, fmt.Errorf("topic %q does not exist (or this principal may not describe it), and this principal may not create it (no Create ACL): create it ahead of time, or grant Create (docs/fleet.md, Kafka ACLs per role): %w", name, err)
	}
	return false, fmt.Errorf("creating topic %q: %w", name, err)
}

// waitTopic waits (up to 10 s) until the new topic shows up in metadata with
// leaders for all partitions, so that offsets can be listed right away.
func waitTopic(ctx context.Context, adm *kadm.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		tds, err := adm.ListTopics(ctx, name)
		if err == nil {
			if td, ok := tds[name]; ok && td.Err == nil && len(td.Partitions) > 0 {
				ready := true
				for _, p := range td.Partitions {
					if p.Err != nil || p.Leader < 0 {
						ready = false
					}
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %q created but not visible in metadata: %w", name, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// DeleteTopics deletes topics on the brokers at addrs (a short-lived
// client of its own); a topic already gone is not an error.
func DeleteTopics(ctx context.Context, addrs []string, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("replayctl"))
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topics...)
	if err == nil {
		for _, r := range resp {
			if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
				err = fmt.Errorf("delete topic %s: %w", r.Topic, r.Err)
				break
			}
		}
	}
	return err
}

// BrokerStamps reports whether the broker stamps the records of topic
// with its own time of their append (message.timestamp.type
// LogAppendTime): Apache Kafka marks such records LogAppendTime, the
// embedded broker writes its time into them and keeps their type, so a
// reader that must know whose clock a timestamp is asks the topic.
func BrokerStamps(ctx context.Context, adm *kadm.Client, topic string) (bool, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("topic %s: describe configs: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return false, fmt.Errorf("topic %s: describe configs: %w", topic, err)
	}
	for _, c := range rc.Configs {
		if c.Key == "message.timestamp.type" {
			return c.Value != nil && *c.Value == "LogAppendTime", nil
		}
	}
	return false, nil
}
