package kafkaio_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestEnsureTopicWithoutCreate: a principal without Create on a topic gets
// TOPIC_AUTHORIZATION_FAILED from CreateTopics even when the topic exists
// (Kafka checks the ACL first). A topic created ahead of time, as the docs
// say to do for such principals, is used; one that does not exist is an
// error saying what is missing and how to fix it.
func TestEnsureTopicWithoutCreate(t *testing.T) {
	at := kafkatest.ACLs(t, map[string][]kfake.ACL{
		"reader": append(kafkatest.TopicACL("made-ahead", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead),
			kafkatest.TopicACL("missing", kmsg.ACLOperationDescribe)...),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := func(user string) *kadm.Client {
		opts, err := at.Config(user).Opts()
		if err != nil {
			t.Fatal(err)
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	if created, err := kafkaio.EnsureTopic(ctx, client("admin"), "made-ahead", 1, -1, map[string]string{"cleanup.policy": "compact"}); err != nil || !created {
		t.Fatalf("admin creating made-ahead: created %v, %v", created, err)
	}
	reader := client("reader")
	if created, err := kafkaio.EnsureTopic(ctx, reader, "made-ahead", 1, -1, nil); err != nil || created {
		t.Errorf("a principal without Create, on a topic made ahead: created %v, %v; want it used", created, err)
	}
	_, err := kafkaio.EnsureTopic(ctx, reader, "missing", 1, -1, nil)
	if err == nil || !strings.Contains(err.Error(), `topic "missing" does not exist (or this principal may not describe it), and this principal may not create it (no Create ACL): create it ahead of time, or grant Create`) {
		t.Errorf("a principal without Create, on a missing topic: %v", err)
	}
}
