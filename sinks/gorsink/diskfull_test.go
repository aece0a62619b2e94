package gorsink_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// TestDiskFull writes to a .gor file on a 64 KiB tmpfs until the disk is
// full: written counts only the messages whole in the file, the others the
// write error kept out count as failed, and the two add up to the messages
// taken (the one whose Write returned the error is not). written used to
// count every message handed to the write buffer, the 256 KiB of them that
// never reached the file too.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("a full disk is a tmpfs mounted for the test: it needs root (CAP_SYS_ADMIN)")
	}
	for _, name := range []string{"out.gor", "out.gor.gz"} {
		t.Run(name, func(t *testing.T) {
			disk := t.TempDir()
			if err := unix.Mount("tmpfs", disk, "tmpfs", 0, "size=64k"); err != nil {
				t.Fatalf("mount tmpfs: %v", err)
			}
			t.Cleanup(func() { _ = unix.Unmount(disk, unix.MNT_DETACH) })
			path := filepath.Join(disk, name)
			s, err := gorsink.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			var n int64
			var werr error
			for ; n < 100000 && werr == nil; n++ {
				// Bodies that do not compress, for the .gz file to fill too.
				body := fmt.Sprintf("%x", bytes.Repeat([]byte(fmt.Sprint(n*7919)), 20))
				m := &message.Message{Kind: message.Request, ID: message.NewID(), Time: 1000 + n,
					Raw: []byte(fmt.Sprintf("POST /%d HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", n, len(body), body))}
				werr = s.Write(ctx, m)
			}
			if werr == nil {
				t.Fatalf("%d messages written to a 64 KiB disk without an error", n)
			}
			_ = s.Close(ctx)
			st := s.Stats()
			// The last Write returned the error: that message is not
			// counted, the caller knows it was not taken.
			if st["written"]+st["failed"] != n-1 || st["failed"] == 0 {
				t.Fatalf("stats %v after %d writes, the last one failed: want written + failed = %d", st, n, n-1)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if name == "out.gor" {
				// Each whole message ends with the separator.
				if whole := int64(bytes.Count(data, []byte("\n🐵🙈🙉\n"))); st["written"] != whole {
					t.Fatalf("written = %d, the file holds %d whole messages", st["written"], whole)
				}
			} else if st["written"] != 0 {
				t.Fatalf("written = %d of a gzip stream never ended", st["written"])
			}
		})
	}
}
