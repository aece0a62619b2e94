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

// TestCheck: Check finds the files Run would read, without reading them,
// and fails as Run would on a missing file, a glob that matches nothing,
// or a pattern outside the root of a restricted scenario.
func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a_1.gor"), []byte("1 a 1 0\nGET / HTTP/1.1\r\n\r\n"+gorfile.Separator), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  *Source
		want string // "" for no error
	}{
		{"file", New(filepath.Join(dir, "a_1.gor"), nil), ""},
		{"glob", New(filepath.Join(dir, "a_*.gor"), nil), ""},
		{"missing file", New(filepath.Join(dir, "nope.gor"), nil), "gor source: gorfile: stat"},
		{"glob of nothing", New(filepath.Join(dir, "b_*.gor"), nil), "gor source: gorfile: no file matches"},
		{"within, file", NewWithin(dir, filepath.Join(dir, "a_1.gor"), nil), ""},
		{"within, missing file", NewWithin(dir, filepath.Join(dir, "nope.gor"), nil), "gor source: open " + filepath.Join(dir, "nope.gor") + ": no such file or directory"},
		{"within, outside", NewWithin(dir, filepath.Join(t.TempDir(), "a.gor"), nil), "gor source: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.src.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check = %v, want an error containing %q", err, tc.want)
			}
			if st := tc.src.Stats(); st["messages"] != 0 {
				t.Errorf("Check read messages: %v", st)
			}
		})
	}
}
