package message

import (
	"bytes"
	"errors"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want string
	}{
		{"request", Message{Kind: Request, ID: "abc123", Time: 1700000000000000000, Raw: []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
			"1 abc123 1700000000000000000 0\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"response with latency", Message{Kind: Response, ID: "abc123", Time: 5, Latency: 1234, Raw: []byte("HTTP/1.1 200 OK\r\n\r\n")},
			"2 abc123 5 1234\nHTTP/1.1 200 OK\r\n\r\n"},
		{"empty body", Message{Kind: ReplayedResponse, ID: "z", Time: 1}, "3 z 1 0\n"},
		// A body cut when captured: the .gor file (and Kafka) says so, and
		// a replay of it does not send a head that promises missing bytes.
		{"truncated", Message{Kind: Response, ID: "t", Time: 2, Latency: 3, Truncated: true, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")},
			"2 t 2 3 truncated\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.Payload()
			if string(got) != tt.want {
				t.Fatalf("payload = %q, want %q", got, tt.want)
			}
			back, err := DecodePayload(got)
			if err != nil {
				t.Fatal(err)
			}
			if back.Kind != tt.m.Kind || back.ID != tt.m.ID || back.Time != tt.m.Time || back.Latency != tt.m.Latency || back.Truncated != tt.m.Truncated || !bytes.Equal(back.Raw, tt.m.Raw) {
				t.Fatalf("round trip = %+v, want %+v", back, tt.m)
			}
		})
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	for _, in := range []string{"", "1 abc", "9 a 1 0\n", "1 a x 0\n", "1 a 1 y\n", "1 a\nGET"} {
		if _, err := DecodePayload([]byte(in)); !errors.Is(err, ErrBadPayload) {
			t.Errorf("DecodePayload(%q) error = %v, want ErrBadPayload", in, err)
		}
	}
	// GoReplay 1.x wrote three fields only.
	m, err := DecodePayload([]byte("1 a 7\nGET"))
	if err != nil || m.Time != 7 || string(m.Raw) != "GET" {
		t.Fatalf("three-field header: %+v %v", m, err)
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte("1 abc 1700000000000000000 0\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("2 x 1 2\n"))
	f.Add([]byte("1\ta\v7 \r9\n"))
	f.Add([]byte("1 \xc2\xa0a 7\nGET"))
	f.Add([]byte("1 a b c d e f g h i j 1\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if nl := bytes.IndexByte(p, '\n'); nl >= 0 {
			// The header's fields split as bytes.Fields splits them.
			want := bytes.Fields(p[:nl])
			var buf [headerFields][]byte
			got := splitFields(buf[:0], p[:nl])
			if len(got) != len(want) {
				t.Fatalf("splitFields(%q): %d fields, bytes.Fields %d", p[:nl], len(got), len(want))
			}
			for i := range got {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("splitFields(%q) field %d = %q, bytes.Fields %q", p[:nl], i, got[i], want[i])
				}
			}
		}
		m, err := DecodePayload(p)
		if err != nil {
			return
		}
		again, err := DecodePayload(m.Payload())
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if !bytes.Equal(again.Raw, m.Raw) || again.Time != m.Time || again.Kind != m.Kind || again.ID != m.ID ||
			again.Latency != m.Latency || again.Truncated != m.Truncated {
			t.Fatalf("round trip changed the message: %+v, was %+v", again, m)
		}
	})
}

func BenchmarkDecodePayload(b *testing.B) {
	p := []byte("1 8a3f0c2e9b7d41d6a5e0 1700000000000000000 0\nGET /api/v1/products/0?sort=price&page=0 HTTP/1.1\r\nHost: x\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodePayload(p); err != nil {
			b.Fatal(err)
		}
	}
}
