package gorsrc

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/gorfile"
	"github.com/replayctl/replayctl/message"
)

func TestBadPayloadsAreCountedNotFatal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.gor")
	data := "1 a 1 0\nGET /1 HTTP/1.1\r\n\r\n" + gorfile.Separator +
		"garbage without header" + gorfile.Separator +
		"1 b 2 0\nGET /2 HTTP/1.1\r\n\r\n" + gorfile.Separator
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	src := New(path, nil)
	var ids []string
	err := src.Run(context.Background(), func(m *message.Message) error { ids = append(ids, m.ID); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] != "a" || ids[1] != "b" {
		t.Fatalf("ids = %v", ids)
	}
	if st := src.Stats(); st["bad-payloads"] != 1 || st["messages"] != 2 {
		t.Fatalf("stats = %v", st)
	}
}

func TestMissingFile(t *testing.T) {
	err := New(filepath.Join(t.TempDir(), "nope.gor"), nil).Run(context.Background(), func(*message.Message) error { return nil })
	if err == nil {
		t.Fatal("no error for a missing file")
	}
}

// TestBadPayloadWarningHidesBytes: the warning about a bad payload says
// where and why, never what the payload holds.
func TestBadPayloadWarningHidesBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.gor")
	data := "GET /?token=S3CRET-1 HTTP/1.1\r\nAuthorization: Bearer S3CRET-2\r\n\r\n" + gorfile.Separator +
		"S3CRET-3 a 1 0\nGET / HTTP/1.1\r\n\r\n" + gorfile.Separator +
		"1 a S3CRET-4 0\nGET / HTTP/1.1\r\n\r\n" + gorfile.Separator +
		"1 a 1 S3CRET-5\nGET / HTTP/1.1\r\n\r\n" + gorfile.Separator +
		"S3CRET-6\n" + gorfile.Separator
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	src := New(path, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := src.Run(context.Background(), func(*message.Message) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if st := src.Stats(); st["bad-payloads"] != 5 {
		t.Fatalf("stats = %v\n%s", st, logs.String())
	}
	if strings.Contains(logs.String(), "S3CRET") || strings.Count(logs.String(), "skipping bad payload") != 5 {
		t.Fatalf("warnings show payload bytes or are missing:\n%s", logs.String())
	}
}
