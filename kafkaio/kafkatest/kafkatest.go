// Package kafkatest gives tests the brokers to run against: always an
// in-process embedded broker, plus the real Kafka named by the environment
// variable REPLAYCTL_TEST_KAFKA (for example "127.0.0.1:19092").
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// EnvKafka names the environment variable that points tests at a real broker.
const EnvKafka = "REPLAYCTL_TEST_KAFKA"

// Target is one broker (cluster) to run a test against.
type Target struct {
	Name  string // "embedded" or "kafka"
	Addrs []string
}

// Opts returns client options for t's brokers.
func (t Target) Opts() []kgo.Opt {
	return []kgo.Opt{kgo.SeedBrokers(t.Addrs...), kgo.ClientID("replayctl-test")}
}

// Client returns a client for t's brokers, closed when the test ends.
func (t Target) Client(tb testing.TB, extra ...kgo.Opt) *kgo.Client {
	tb.Helper()
	cl, err := kgo.NewClient(append(t.Opts(), extra...)...)
	if err != nil {
		tb.Fatalf("kafka client for %s: %v", t.Name, err)
	}
	tb.Cleanup(cl.Close)
	return cl
}

// Admin returns an admin client for t's brokers, closed when the test ends.
func (t Target) Admin(tb testing.TB) *kadm.Client {
	tb.Helper()
	return kadm.NewClient(t.Client(tb))
}

// Brokers returns the brokers to test against: a fresh embedded broker (own
// temporary data directory, closed by t.Cleanup) and, when REPLAYCTL_TEST_KAFKA
// is set, the real Kafka there. A real Kafka that does not answer within 10 s
// fails the test.
func Brokers(tb testing.TB) []Target {
	tb.Helper()
	targets := []Target{Embedded(tb, tb.TempDir())}
	if env := strings.TrimSpace(os.Getenv(EnvKafka)); env != "" {
		addrs := strings.Split(env, ",")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		for ctx.Err() == nil {
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
			err = kafkaio.Ping(pctx, kgo.SeedBrokers(addrs...))
			pcancel()
			if err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			tb.Fatalf("%s=%s is set but Kafka does not answer within 10s: %v (start it with scripts/kafka-up)", EnvKafka, env, err)
		}
		targets = append(targets, Target{Name: "kafka", Addrs: addrs})
		DropTopicsAfter(tb, addrs, testName(tb)+"-")
	}
	return targets
}

// DropTopicsAfter deletes, when tb ends, the topics tb left on the shared
// real Kafka at addrs: those that were not there when it began and whose name
// holds mark (case aside). Brokers calls it with tb's name as UniqueTopic
// writes it; tests that name their topics otherwise pass their own mark. The
// embedded brokers go with their directories; the shared one would otherwise
// keep every topic of every run.
func DropTopicsAfter(tb testing.TB, addrs []string, mark string) {
	tb.Helper()
	before, err := listTopics(addrs)
	if err != nil {
		tb.Logf("listing the topics of %v (they stay after the test): %v", addrs, err)
		return
	}
	mark = strings.ToLower(mark)
	tb.Cleanup(func() {
		after, err := listTopics(addrs)
		if err != nil {
			tb.Logf("listing the topics of %v to delete this test's: %v", addrs, err)
			return
		}
		var drop []string
		for _, t := range after {
			if !slices.Contains(before, t) && strings.Contains(strings.ToLower(t), mark) {
				drop = append(drop, t)
			}
		}
		if len(drop) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := kafkaio.DeleteTopics(ctx, addrs, drop...); err != nil {
			tb.Logf("deleting this test's %d topics (they stay on %v): %v", len(drop), addrs, err)
		}
	})
}

// listTopics returns the names of the topics on addrs, internal ones left out.
func listTopics(addrs []string) ([]string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ClientID("replayctl-test"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	details, err := kadm.NewClient(cl).ListTopics(ctx)
	if err != nil {
		return nil, err
	}
	return details.Names(), nil
}

// testName is tb's name as UniqueTopic writes it into a topic's name.
func testName(tb testing.TB) string {
	return strings.NewReplacer("/", "-", " ", "-", "#", "-").Replace(tb.Name())
}

// Embedded starts an embedded broker on dir, closed by tb.Cleanup.
func Embedded(tb testing.TB, dir string) Target {
	tb.Helper()
	e, err := kafkaio.StartEmbedded(context.Background(), kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		tb.Fatalf("starting embedded broker: %v", err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return Target{Name: "embedded", Addrs: e.Addrs()}
}

// UniqueTopic returns a topic name no other test uses.
func UniqueTopic(tb testing.TB) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := testName(tb)
	if len(name) > 120 {
		name = name[:120]
	}
	return "replayctl-test-" + name + "-" + hex.EncodeToString(b[:])
}

// CreateTopic creates a fresh topic with n partitions on t and returns its name.
func CreateTopic(tb testing.TB, t Target, partitions int32) string {
	tb.Helper()
	name := UniqueTopic(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := kafkaio.EnsureTopic(ctx, t.Admin(tb), name, partitions, 1, nil); err != nil {
		tb.Fatalf("creating topic: %v", err)
	}
	return name
}

// RequireTool returns the path of a command-line tool the test needs; a
// missing tool fails the test (it is installed by .ci/run: never a silent
// pass without the check).
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s is required by this test but not found (bash .ci/run installs it, or apt-get install %s): %v", name, name, err)
	}
	return path
}
