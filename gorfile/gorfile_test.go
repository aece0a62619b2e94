package gorfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

func readAll(t *testing.T, data []byte) []string {
	t.Helper()
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for {
		p, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(p))
	}
}

func TestRoundTripByteForByte(t *testing.T) {
	msgs := []*message.Message{
		{Kind: message.Request, ID: "a1", Time: 1, Raw: []byte("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc")},
		{Kind: message.Response, ID: "a1", Time: 2, Latency: 1, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")},
		{Kind: message.Request, ID: "b2", Time: 3, Raw: []byte("GET / HTTP/1.1\r\n\r\n\n\n")},
	}
	for _, compress := range []bool{false, true} {
		var buf bytes.Buffer
		w := NewWriter(&buf, compress)
		for _, m := range msgs {
			if err := w.Write(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, buf.Bytes())
		if len(got) != len(msgs) {
			t.Fatalf("compress=%v: %d payloads, want %d", compress, len(got), len(msgs))
		}
		for i, m := range msgs {
			if got[i] != string(m.Payload()) {
				t.Errorf("compress=%v payload %d = %q, want %q", compress, i, got[i], m.Payload())
			}
		}
		if !compress {
			// Re-writing what was read gives the same file, byte for byte.
			var again bytes.Buffer
			w := NewWriter(&again, false)
			for _, p := range got {
				m, err := message.DecodePayload([]byte(p))
				if err != nil {
					t.Fatal(err)
				}
				_ = w.Write(m)
			}
			_ = w.Close()
			if !bytes.Equal(again.Bytes(), buf.Bytes()) {
				t.Fatalf("rewritten file differs")
			}
		}
	}
}

func TestGoReplayWrittenFile(t *testing.T) {
	// As GoReplay's file output writes it: payload, separator, payload, separator.
	data := "1 7c0e0a0a00000001 1700000000000000000 0\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n" + Separator +
		"2 7c0e0a0a00000001 1700000000001000000 1000000\nHTTP/1.1 204 No Content\r\n\r\n" + Separator
	got := readAll(t, []byte(data))
	if len(got) != 2 || got[1] != "2 7c0e0a0a00000001 1700000000001000000 1000000\nHTTP/1.1 204 No Content\r\n\r\n" {
		t.Fatalf("got %q", got)
	}
	// The last payload without its separator, or cut inside it.
	const req = "1 a 1 0\nGET / HTTP/1.1\r\n\r\n"
	for _, tt := range []struct {
		name, data string
		want       []string
	}{
		{"no separator", req, []string{req}},
		{"separator without its final newline", req + strings.TrimSuffix(Separator, "\n"), []string{req}},
		{"two payloads, the last cut before the final newline", req + Separator + req + strings.TrimSuffix(Separator, "\n"), []string{req, req}},
		{"CRLF body before the separator", req + "a\r\n" + Separator, []string{req + "a\r\n"}},
		{"monkeys in a body, not on a line of their own", req + "x🐵🙈🙉\n🐵🙈🙉y\n" + Separator, []string{req + "x🐵🙈🙉\n🐵🙈🙉y\n"}},
		{"monkeys line ending in CRLF is body", req + "\n🐵🙈🙉\r\nz" + Separator, []string{req + "\n🐵🙈🙉\r\nz"}},
		{"only a cut separator", strings.TrimSuffix(Separator, "\n"), nil},
	} {
		if got := readAll(t, []byte(tt.data)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExpandOrdersRotations(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"requests_10.gor", "requests_2.gor", "requests_0.gor.gz", "requests_1.gor"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Expand(filepath.Join(dir, "requests_*"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	want := []string{"requests_0.gor.gz", "requests_1.gor", "requests_2.gor", "requests_10.gor"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("order = %v, want %v", names, want)
	}
	if _, err := Expand(filepath.Join(dir, "missing.gor")); err == nil {
		t.Fatal("missing file: no error")
	}
	if _, err := Expand(filepath.Join(dir, "none_*.gor")); err == nil {
		t.Fatal("empty glob: no error")
	}
}

func TestGzipDetectedByMagic(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte("1 a 1 0\nGET / HTTP/1.1\r\n\r\n" + Separator))
	_ = zw.Close()
	if got := readAll(t, buf.Bytes()); len(got) != 1 {
		t.Fatalf("got %q", got)
	}
}

// FuzzReader reads arbitrary streams: every payload is the input's bytes at
// its offset, right behind the previous payload's separator, and what is left
// at io.EOF is whitespace or a separator cut before its final newline, so
// nothing is lost.
func FuzzReader(f *testing.F) {
	f.Add([]byte("1 a 1 0\nGET / HTTP/1.1\r\n\r\n" + Separator))
	f.Add([]byte(Separator + Separator))
	f.Add([]byte("1 a 1 0\nGET" + Separator + "2 a 1 0\nHTTP" + Separator[:len(Separator)-1]))
	f.Add([]byte("x" + Separator + " \n\t"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		gz := len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b
		total, next := 0, int64(0)
		for i := 0; i < len(data)+2; i++ {
			p, off, err := r.Next()
			if gz {
				if err != nil {
					break
				}
				total += len(p)
				continue
			}
			if errors.Is(err, io.EOF) {
				rest := bytes.TrimSuffix(data[next:], []byte(Separator[:len(Separator)-1]))
				if len(bytes.TrimSpace(rest)) != 0 {
					t.Fatalf("io.EOF with %q unread at byte %d", data[next:], next)
				}
				return
			}
			if err != nil {
				t.Fatalf("at byte %d: %v", next, err)
			}
			if off != next || off+int64(len(p)) > int64(len(data)) || !bytes.Equal(data[off:off+int64(len(p))], p) {
				t.Fatalf("payload %d %q at offset %d, want the input's bytes at %d", i, p, off, next)
			}
			next = min(off+int64(len(p))+int64(len(Separator)), int64(len(data)))
		}
		if gz {
			if total > len(data)*1100 {
				t.Fatalf("read %d payload bytes from %d input bytes", total, len(data))
			}
			return
		}
		t.Fatalf("no io.EOF after %d payloads", len(data)+2)
	})
}
