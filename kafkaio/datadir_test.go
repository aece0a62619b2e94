package kafkaio_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/kafkaio"
)

// TestDataDirLock: one holder at a time; the lock file says who holds it
// and, for a serving broker, where it listens; a release frees it.
func TestDataDirLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := ctxT(t)
	l, err := kafkaio.LockDataDir(ctx, dir, kafkaio.Holder{Command: "replayctl run a.yaml"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kafkaio.LockDataDir(ctx, dir, kafkaio.Holder{Command: "replayctl run b.yaml"})
	var busy *kafkaio.BusyError
	if !errors.As(err, &busy) || busy.Holder.PID != os.Getpid() || busy.Holder.Command != "replayctl run a.yaml" || busy.Holder.Addr != "" {
		t.Fatalf("second lock = %v (%+v), want a BusyError naming the first holder", err, busy)
	}
	if msg := err.Error(); !strings.Contains(msg, "replayctl broker --data-dir "+dir) || !strings.Contains(msg, "in use by another replayctl process") {
		t.Errorf("message does not say what to do: %s", msg)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, kafkaio.LockFile)); err != nil || len(b) != 0 {
		t.Errorf("after release the lock file holds %q, %v", b, err)
	}

	// A serving broker: its address is in the lock file.
	e, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir, Command: "replayctl broker", Serve: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir})
	if !errors.As(err, &busy) || busy.Holder.Addr != e.Addrs()[0] || !busy.Holder.Serving {
		t.Fatalf("embedded broker on a served dir = %v (%+v), want a BusyError with the address %v", err, busy, e.Addrs())
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: the next broker takes it.
	e, err = kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: dir})
	if err != nil {
		t.Fatalf("after close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}
