package gorsrc

import (
	"context"
	"os"
	"path/filepath"
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
