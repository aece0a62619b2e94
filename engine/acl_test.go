package engine_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestRecordWithoutDescribeConfigs: a principal that may write a topic
// made ahead of time but not read its configs (no DescribeConfigs ACL)
// records into it, taking Kafka's default max.message.bytes, and its log
// says what it could not check; a max-body above that default is refused
// with the reason and the fix (grant DescribeConfigs), not with advice to
// raise a limit the topic may not have.
func TestRecordWithoutDescribeConfigs(t *testing.T) {
	const topic = "acl-data"
	at := kafkatest.ACLs(t, map[string][]kfake.ACL{
		"recorder": append(kafkatest.TopicACL(topic, kmsg.ACLOperationDescribe, kmsg.ACLOperationRead, kmsg.ACLOperationWrite),
			kafkatest.TopicACL(catalog.DefaultTopic, kmsg.ACLOperationDescribe, kmsg.ACLOperationRead, kmsg.ACLOperationWrite)...),
	})
	at.CreateTopic(t, topic, 1, map[string]string{"max.message.bytes": "8000000"})
	at.CreateTopic(t, catalog.DefaultTopic, 1, map[string]string{"cleanup.policy": "compact"})
	dir := t.TempDir()
	writePcap(t, filepath.Join(dir, "in.pcap"), netip.MustParseAddrPort("127.0.0.1:8080"), evenly(3, time.Millisecond))
	yaml := func(maxBody string) string {
		return fmt.Sprintf(`version: 1
name: acl
kafka: {brokers: [embedded]}
topics:
  traffic: {name: %s, create: true}
jobs:
  record:
    source: {pcap: {path: in.pcap, ports: [8080], max-body: %s}}
    sink: {kafka: {topic: traffic}}
`, topic, maxBody)
	}
	recorder := at.Config("recorder")
	var log syncBuffer
	r := run(t, dir, yaml("4MiB"), engine.Options{Kafka: &recorder, DataDir: filepath.Join(dir, "data")})
	if !errors.Is(r.err, engine.ErrInvalid) || !strings.Contains(r.err.Error(), "lacks the DescribeConfigs ACL on it), so Kafka's default is taken: grant DescribeConfigs") {
		t.Fatalf("max-body 4MiB without DescribeConfigs: %v", r.err)
	}
	r = run(t, dir, yaml("512KiB"), engine.Options{Kafka: &recorder, DataDir: filepath.Join(dir, "data"), Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if r.err != nil {
		t.Fatalf("max-body 512KiB: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(r.out, "recorded") || !strings.Contains(log.String(), "lacks the DescribeConfigs ACL on it") {
		t.Errorf("the record job does not record, or does not say what it could not check:\n%s\nlog:\n%s", r.out, log.String())
	}
}
