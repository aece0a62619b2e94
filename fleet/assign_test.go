package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/scenario"
)

const assignScenario = `version: 1
name: assign
kafka: {brokers: [embedded]}
topics:
  traffic: {name: assign-http, partitions: 1, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [1]}}
    sink: {kafka: {topic: traffic}}
`

// TestRefusalNotOverwrittenByAssigned: the submitter writes the job's status
// twice (PENDING, then ASSIGNED once the spec is on the jobs topic). An agent
// that refuses the spec before the second write must not have its final
// status replaced by it: the job ends, saying why, and a --wait returns.
// The hook holds the submitter between its writes until the refusal is out.
func TestRefusalNotOverwrittenByAssigned(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	broker := kafkatest.Embedded(t, t.TempDir())
	cfg := kafkaio.Config{Brokers: broker.Addrs}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	agent, err := NewAgent(AgentConfig{
		Name: "a1", Labels: Labels{"role": "assign"}, Allow: []string{KindRecord}, Trust: []ed25519.PublicKey{pub},
		WorkDir: filepath.Join(t.TempDir(), "work"), Kafka: cfg, Logger: quiet,
		Load: func(string, []byte, []string, map[string]string, string) (*scenario.Scenario, error) {
			return nil, errors.New("refused by the test")
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx) }()
	defer func() { stop(); <-done }()

	bus, err := OpenBus(ctx, cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	for !bus.AgentAlive("a1", time.Now()) {
		if ctx.Err() != nil {
			t.Fatal("the agent never heartbeat")
		}
		time.Sleep(100 * time.Millisecond)
	}

	refused := make(chan struct{})
	testHookAfterSpec = func(id string) {
		defer close(refused)
		for {
			if s, ok := bus.Status(agentKey(id, "a1")); ok && s.State.Final() {
				time.Sleep(time.Second) // the agent's job status, if it does not wait
				return
			}
			if ctx.Err() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	defer func() { testHookAfterSpec = nil }()
	c := NewClient(bus, io.Discard)
	id, err := c.Submit(ctx, SubmitRequest{Text: []byte(assignScenario), Job: "record", Selector: Selector{"role": "assign"}, Key: priv})
	if err != nil {
		t.Fatal(err)
	}
	<-refused
	if err := bus.Sync(ctx); err != nil { // every status written so far, ASSIGNED too
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	js, err := c.Wait(wctx, id)
	if err != nil {
		t.Fatalf("job never ended: %v (status %s)", err, js.State)
	}
	if !strings.Contains(js.Reason, "refused by the test") {
		t.Fatalf("job %s: %s", js.State, js.Reason)
	}
}
