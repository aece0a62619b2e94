package kafkaio_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/twmb/franz-go/pkg/kgo"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConfigOpts(t *testing.T) {
	tests := []struct {
		name    string
		cfg     kafkaio.Config
		wantErr string
	}{
		{"plain", kafkaio.Config{Brokers: []string{"127.0.0.1:9092"}}, ""},
		{"no brokers", kafkaio.Config{}, "no brokers"},
		{"bad broker", kafkaio.Config{Brokers: []string{"nohost"}}, "want host:port"},
		{"sasl plain", kafkaio.Config{Brokers: []string{"h:1"}, SASL: &kafkaio.SASLConfig{Mechanism: "plain", Username: "u", Password: "p"}}, ""},
		{"sasl scram", kafkaio.Config{Brokers: []string{"h:1"}, SASL: &kafkaio.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "u"}}, ""},
		{"sasl unknown", kafkaio.Config{Brokers: []string{"h:1"}, SASL: &kafkaio.SASLConfig{Mechanism: "gssapi", Username: "u"}}, "unknown mechanism"},
		{"sasl no user", kafkaio.Config{Brokers: []string{"h:1"}, SASL: &kafkaio.SASLConfig{Mechanism: "plain"}}, "username is empty"},
		{"tls default", kafkaio.Config{Brokers: []string{"h:1"}, TLS: &kafkaio.TLSConfig{}}, ""},
		{"tls missing ca", kafkaio.Config{Brokers: []string{"h:1"}, TLS: &kafkaio.TLSConfig{CAFile: "/nonexistent/ca.pem"}}, "reading CA file"},
		{"tls cert without key", kafkaio.Config{Brokers: []string{"h:1"}, TLS: &kafkaio.TLSConfig{CertFile: "c.pem"}}, "together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, err := tt.cfg.Opts()
			if tt.wantErr == "" {
				if err != nil || len(opts) == 0 {
					t.Fatalf("Opts() = %d opts, %v", len(opts), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Opts() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestEnsureTopic(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			adm := target.Admin(t)
			name := kafkatest.UniqueTopic(t)
			created, err := kafkaio.EnsureTopic(ctxT(t), adm, name, 3, 1, map[string]string{"cleanup.policy": "compact"})
			if err != nil || !created {
				t.Fatalf("first EnsureTopic = %v, %v; want created", created, err)
			}
			created, err = kafkaio.EnsureTopic(ctxT(t), adm, name, 3, 1, nil)
			if err != nil || created {
				t.Fatalf("second EnsureTopic = %v, %v; want exists", created, err)
			}
			tds, err := adm.ListTopics(ctxT(t), name)
			if err != nil || len(tds[name].Partitions) != 3 {
				t.Fatalf("topic %s: %+v, %v", name, tds[name], err)
			}
		})
	}
}

func produce(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func TestEmbeddedSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e, err := kafkaio.StartEmbedded(ctxT(t), kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kafkaio.EnsureTopic(ctxT(t), kadmClient(cl), "keep", 1, 1, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		produce(t, cl, &kgo.Record{Topic: "keep", Value: fmt.Appendf(nil, "v%d", i)})
	}
	cl.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2, err := kafkaio.StartEmbedded(ctxT(t), kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	defer e2.Close()
	rr, err := kafkaio.NewRangeReader([]kgo.Opt{kgo.SeedBrokers(e2.Addrs()...)}, "keep", map[int32]kafkaio.OffsetRange{0: {Start: 0, End: 5}})
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Close()
	var got []string
	for !rr.Done() {
		recs, err := rr.Poll(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	if strings.Join(got, ",") != "v0,v1,v2,v3,v4" {
		t.Fatalf("after restart read %v", got)
	}
}

func TestEmbeddedListenAllInterfacesAdvertisesLoopback(t *testing.T) {
	e, err := kafkaio.StartEmbedded(ctxT(t), kafkaio.EmbeddedOptions{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if a := e.Addrs(); len(a) != 1 || !strings.HasPrefix(a[0], "127.0.0.1:") || strings.HasSuffix(a[0], ":0") {
		t.Fatalf("Addrs() = %v", a)
	}
	if err := kafkaio.Ping(ctxT(t), kgo.SeedBrokers(e.Addrs()...)); err != nil {
		t.Fatal(err)
	}
}

func TestKcatMetadata(t *testing.T) {
	kcat := kafkatest.RequireTool(t, "kcat")
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 2)
			out, err := exec.CommandContext(ctxT(t), kcat, "-L", "-b", target.Addrs[0], "-t", topic, "-m", "10").CombinedOutput()
			if err != nil {
				t.Fatalf("kcat -L: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), topic) || !strings.Contains(string(out), "2 partitions") {
				t.Fatalf("kcat -L output lacks topic %s with 2 partitions:\n%s", topic, out)
			}
		})
	}
}

func TestRangeReaderBoundariesAndGaps(t *testing.T) {
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			topic := kafkatest.CreateTopic(t, target, 3)
			cl := target.Client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			// Partition 0: offsets 0..9, plain.
			for i := range 10 {
				produce(t, cl, &kgo.Record{Partition: 0, Value: fmt.Appendf(nil, "p0-%d", i)})
			}
			// Partition 1: two committed transactions; each ends with a control marker.
			txn := target.Client(t, kgo.DefaultProduceTopic(topic), kgo.TransactionalID("txn-"+topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			for batch := range 2 {
				if err := txn.BeginTransaction(); err != nil {
					t.Fatal(err)
				}
				for i := range 3 {
					produce(t, txn, &kgo.Record{Partition: 1, Value: fmt.Appendf(nil, "p1-%d-%d", batch, i)})
				}
				if err := txn.EndTransaction(ctxT(t), kgo.TryCommit); err != nil {
					t.Fatal(err)
				}
			}
			// 3 records + marker, twice; real Kafka writes the last marker
			// shortly after EndTransaction returns.
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				ends, err := kadmClient(cl).ListEndOffsets(ctxT(t), topic)
				if err != nil {
					t.Fatal(err)
				}
				end1, _ := ends.Lookup(topic, 1)
				if end1.Offset == 8 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("partition 1 end offset = %d, want 8", end1.Offset)
				}
			}
			tests := []struct {
				name   string
				ranges map[int32]kafkaio.OffsetRange
				want   []string
			}{
				{"inner", map[int32]kafkaio.OffsetRange{0: {Start: 2, End: 5}}, []string{"p0-2", "p0-3", "p0-4"}},
				{"to end", map[int32]kafkaio.OffsetRange{0: {Start: 8, End: 10}}, []string{"p0-8", "p0-9"}},
				{"empty ranges", map[int32]kafkaio.OffsetRange{0: {Start: 3, End: 3}, 2: {Start: 0, End: 0}}, nil},
				{"txn whole", map[int32]kafkaio.OffsetRange{1: {Start: 0, End: 8}}, []string{"p1-0-0", "p1-0-1", "p1-0-2", "p1-1-0", "p1-1-1", "p1-1-2"}},
				{"ends on marker", map[int32]kafkaio.OffsetRange{1: {Start: 1, End: 4}}, []string{"p1-0-1", "p1-0-2"}},
				{"only marker", map[int32]kafkaio.OffsetRange{1: {Start: 3, End: 4}}, nil},
				{"two partitions", map[int32]kafkaio.OffsetRange{0: {Start: 9, End: 10}, 1: {Start: 4, End: 5}, 2: {Start: 0, End: 0}}, []string{"p0-9", "p1-1-0"}},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					rr, err := kafkaio.NewRangeReader(target.Opts(), topic, tt.ranges)
					if err != nil {
						t.Fatal(err)
					}
					defer rr.Close()
					var got []string
					for !rr.Done() {
						recs, err := rr.Poll(ctxT(t))
						if err != nil {
							t.Fatal(err)
						}
						for _, r := range recs {
							got = append(got, string(r.Value))
						}
					}
					// Order holds within a partition; across partitions
					// it is the fetches' (values start pN-).
					if fmt.Sprint(byPartition(got)) != fmt.Sprint(byPartition(tt.want)) {
						t.Fatalf("read %v, want %v (in this order within each partition)", got, tt.want)
					}
				})
			}
		})
	}
}

// byPartition groups record values "pN-…" by their partition, in order.
func byPartition(values []string) map[string][]string {
	out := map[string][]string{}
	for _, v := range values {
		p, _, _ := strings.Cut(v, "-")
		out[p] = append(out[p], v)
	}
	return out
}
