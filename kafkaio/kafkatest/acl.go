package kafkatest

import (
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
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
