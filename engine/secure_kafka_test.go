package engine_test

import (
	"fmt"
	"testing"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestRecordAndReplayOverTLSAndSASL records into and replays from a broker
// that requires TLS and SASL, configured by the scenario with the password
// taken from the environment.
func TestRecordAndReplayOverTLSAndSASL(t *testing.T) {
	for _, mech := range kafkatest.SASLMechanisms {
		t.Run(mech, func(t *testing.T) {
			sec := kafkatest.Secure(t)
			t.Setenv("TEST_KAFKA_PASSWORD", sec.Password(mech))
			dir := t.TempDir()
			writeGor(t, dir, "rec.gor", evenly(5, 10e6))
			tg := newTarget(t)
			yaml := fmt.Sprintf(`version: 1
name: secure
kafka:
  brokers: [%s]
  tls: {enabled: true, ca-file: %s}
  sasl: {mechanism: %s, username: %s, password: "${TEST_KAFKA_PASSWORD}"}
topics:
  traffic: {name: secure-traffic, partitions: 1, create: true}
targets:
  app: {url: %q}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic}}
    save-window: secure
  replay:
    needs: [record]
    source: {window: secure}
    speed: max
    sink: {http: {target: app}}
`, sec.Addrs[0], sec.CAFile, mech, sec.User(mech), tg.URL())
			// The password comes from the process environment at load time.
			out, err := sfRun(t, dir, yaml, engine.Options{})
			if err != nil {
				t.Fatalf("run: %v\n%s", err, out)
			}
			if tg.count() != 5 {
				t.Fatalf("target received %d requests, want 5\n%s", tg.count(), out)
			}
		})
	}
}
