package kafkatest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/kafkaio"
)

// ACLTarget is an in-process broker that authenticates with SASL/PLAIN
// and authorizes every request against ACLs, as a production Kafka with
// an authorizer does. User "admin" is a superuser; the others have the
// ACLs they were given, and nothing else.
type ACLTarget struct {
	Addrs []string
}

// Password is user's password (PLAIN).
func (ACLTarget) Password(user string) string { return user + "-pw" }

// ACLs starts an ACLTarget on 127.0.0.1 with users and their ACLs; it is
// closed by t.Cleanup.
func ACLs(tb testing.TB, users map[string][]kfake.ACL) ACLTarget {
	tb.Helper()
	var at ACLTarget
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", at.Password("admin")),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
	}
	for u, acls := range users {
		opts = append(opts, kfake.User("PLAIN", u, at.Password(u), acls...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	at.Addrs = c.ListenAddrs()
	return at
}

// TopicACL allows the operations ops on the topic named (a literal name).
func TopicACL(topic string, ops ...kmsg.ACLOperation) []kfake.ACL {
	var out []kfake.ACL
	for _, op := range ops {
		out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
	}
	return out
}

// Config is the connection of user (SASL/PLAIN) to the broker.
func (a ACLTarget) Config(user string) kafkaio.Config {
	return kafkaio.Config{Brokers: a.Addrs, SASL: &kafkaio.SASLConfig{Mechanism: "PLAIN", Username: user, Password: a.Password(user)}}
}

// CreateTopic creates topic name as the admin, as kafka-topics.sh --create
// would: ahead of time, for principals that may not create it.
func (a ACLTarget) CreateTopic(tb testing.TB, name string, partitions int32, configs map[string]string) {
	tb.Helper()
	opts, err := a.Config("admin").Opts()
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kafkaio.EnsureTopic(ctx, kadm.NewClient(cl), name, partitions, -1, configs); err != nil {
		tb.Fatal(err)
	}
}
