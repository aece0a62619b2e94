package kafkaio_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestTLSAndSASL connects through TLS with each SASL mechanism to a broker
// that requires both, produces and reads back a record; a wrong password or
// an untrusted certificate fails with a clear error.
func TestTLSAndSASL(t *testing.T) {
	var topics []string
	for _, m := range kafkatest.SASLMechanisms {
		topics = append(topics, "secure-"+strings.ToLower(m))
	}
	sec := kafkatest.Secure(t, topics...)
	addrs, ca, mechs := sec.Addrs, sec.CAFile, kafkatest.SASLMechanisms

	for _, m := range mechs {
		t.Run(m, func(t *testing.T) {
			cfg := kafkaio.Config{Brokers: addrs, TLS: &kafkaio.TLSConfig{CAFile: ca}, SASL: &kafkaio.SASLConfig{Mechanism: m, Username: sec.User(m), Password: sec.Password(m)}}
			kopts, err := cfg.Opts()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := kafkaio.Ping(ctx, kopts...); err != nil {
				t.Fatalf("ping: %v", err)
			}
			topic := "secure-" + strings.ToLower(m)
			cl, err := kgo.NewClient(append(kopts, kgo.ConsumeTopics(topic))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v-" + m)}).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			fs := cl.PollFetches(ctx)
			if errs := fs.Errors(); len(errs) > 0 {
				t.Fatalf("fetch: %v", errs)
			}
			if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "v-"+m {
				t.Fatalf("read back %d records", len(recs))
			}

			bad := cfg
			bad.SASL = &kafkaio.SASLConfig{Mechanism: m, Username: sec.User(m), Password: "wrong"}
			bopts, _ := bad.Opts()
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer pcancel()
			if err := kafkaio.Ping(pctx, bopts...); err == nil {
				t.Fatal("a wrong password connected")
			}
		})
	}

	t.Run("untrusted certificate", func(t *testing.T) {
		cfg := kafkaio.Config{Brokers: addrs, TLS: &kafkaio.TLSConfig{}, SASL: &kafkaio.SASLConfig{Mechanism: "PLAIN", Username: sec.User("PLAIN"), Password: sec.Password("PLAIN")}}
		kopts, _ := cfg.Opts()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := kafkaio.Ping(ctx, kopts...); err == nil {
			t.Fatal("connected to a broker whose certificate nobody trusts")
		}
	})
}
