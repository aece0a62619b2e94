package catalog_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/catalog"
)

// TestWritesEndWithTheirContext saves and removes windows on a broker that
// reads every produce request and never answers (one that died after
// reading it): each call returns when its context ends, saying the write was
// not acknowledged, instead of waiting for the answer for ever.
func TestWritesEndWithTheirContext(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "windows"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	cat, err := catalog.Open(ctxT(t), cl, kadm.NewClient(cl), "windows")
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.Save(ctxT(t), window("kept"), false); err != nil {
		t.Fatal(err)
	}
	c.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return nil, nil, true // read, never answered
	})
	for _, tc := range []struct {
		name  string
		write func(context.Context) error
	}{
		{"save", func(ctx context.Context) error { _, err := cat.SaveAs(ctx, window("new"), catalog.Create); return err }},
		{"remove", func(ctx context.Context) error { return cat.Remove(ctx, "kept") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- tc.write(ctx) }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not acknowledged by Kafka") {
					t.Fatalf("got %v, want an error saying the write was not acknowledged", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("the write still waits for the broker a minute after its context ended")
			}
		})
	}
}
