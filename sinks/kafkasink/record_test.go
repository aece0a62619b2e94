package kafkasink_test

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
)

// TestRecordFields pins what Record builds: value, key, timestamp and each
// header, in order, for a message with every field set and one with none.
func TestRecordFields(t *testing.T) {
	full := &message.Message{
		Kind: message.Response, ID: "a1b2", ConnID: "[::1]:40000-[::1]:8080-17", Time: 1_700_000_000_123_456_789, Latency: 4200,
		Src: netip.MustParseAddrPort("[fe80::1%eth0]:8080"), Dst: netip.MustParseAddrPort("10.0.0.1:40000"),
		Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), Truncated: true,
	}
	h2 := &message.Message{Kind: message.Request, Raw: []byte("GET / HTTP/2.0\r\n\r\n"), Host: "cap-host", RecordingID: "rec-own"}
	tests := []struct {
		name            string
		m               *message.Message
		recording, host string
		key             []byte
		headers         []kgo.RecordHeader
	}{
		{"full", full, "rec-1", "host-1", []byte(full.ConnID), []kgo.RecordHeader{
			{Key: kafkaio.HeaderRecording, Value: []byte("rec-1")},
			{Key: kafkaio.HeaderKind, Value: []byte("response")},
			{Key: kafkaio.HeaderHost, Value: []byte("host-1")},
			{Key: kafkaio.HeaderSrc, Value: []byte("[fe80::1%eth0]:8080")},
			{Key: kafkaio.HeaderDst, Value: []byte("10.0.0.1:40000")},
			{Key: kafkaio.HeaderConn, Value: []byte(full.ConnID)},
			{Key: kafkaio.HeaderTruncated, Value: []byte("1")},
		}},
		{"bare h2, message's own recording and host", h2, "rec-1", "host-1", nil, []kgo.RecordHeader{
			{Key: kafkaio.HeaderRecording, Value: []byte("rec-own")},
			{Key: kafkaio.HeaderKind, Value: []byte("request")},
			{Key: kafkaio.HeaderHost, Value: []byte("cap-host")},
			{Key: kafkaio.HeaderProto, Value: []byte("HTTP/2.0")},
		}},
		{"nothing optional", &message.Message{Kind: message.Request, Raw: []byte("GET / HTTP/1.1\r\n\r\n")}, "", "", nil, []kgo.RecordHeader{
			{Key: kafkaio.HeaderKind, Value: []byte("request")},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			r := kafkasink.Record("topic-x", tt.m, tt.recording, tt.host)
			want := time.Unix(0, tt.m.Time)
			if message.BogusTime(want, before) {
				// Time 0: the record gets the time it is built.
				want = r.Timestamp
				if r.Timestamp.Before(before) || r.Timestamp.After(time.Now()) {
					t.Errorf("timestamp %v of a message without a real capture time, want the time of writing", r.Timestamp)
				}
			}
			if r.Topic != "topic-x" || !r.Timestamp.Equal(want) {
				t.Errorf("topic %q timestamp %v, want %v", r.Topic, r.Timestamp, want)
			}
			if !bytes.Equal(r.Value, tt.m.Payload()) {
				t.Errorf("value %q, want %q", r.Value, tt.m.Payload())
			}
			if !bytes.Equal(r.Key, tt.key) || (r.Key == nil) != (tt.key == nil) {
				t.Errorf("key %q, want %q", r.Key, tt.key)
			}
			if len(r.Headers) != len(tt.headers) {
				t.Fatalf("headers %q, want %q", r.Headers, tt.headers)
			}
			for i, h := range r.Headers {
				if h.Key != tt.headers[i].Key || !bytes.Equal(h.Value, tt.headers[i].Value) {
					t.Errorf("header %d: %s=%q, want %s=%q", i, h.Key, h.Value, tt.headers[i].Key, tt.headers[i].Value)
				}
			}
			// Each part is its own: appending to one does not change another.
			r.Value = append(r.Value, "XX"...)
			r.Key = append(r.Key, "YY"...)
			for i := range r.Headers {
				r.Headers[i].Value = append(r.Headers[i].Value, "ZZ"...)
			}
			for i, h := range r.Headers {
				if want := append(append([]byte(nil), tt.headers[i].Value...), "ZZ"...); !bytes.Equal(h.Value, want) {
					t.Errorf("after appends, header %d = %q, want %q", i, h.Value, want)
				}
			}
			if want := append(tt.m.Payload(), "XX"...); !bytes.Equal(r.Value, want) {
				t.Errorf("after appends, value %q", r.Value)
			}
		})
	}
}

// BenchmarkRecord builds the record of a captured keep-alive response, as
// the capture → Kafka path does for every message.
func BenchmarkRecord(b *testing.B) {
	m := &message.Message{
		Kind: message.Response, ID: "4f1c2a9e0b1d4e5f00000001", ConnID: "127.0.0.1:40000-127.0.0.1:8080-1700000000000000000",
		Time: 1_700_000_000_123_456_789, Latency: 42_000, Host: "capture-host",
		Src: netip.MustParseAddrPort("127.0.0.1:8080"), Dst: netip.MustParseAddrPort("127.0.0.1:40000"),
		Raw: []byte("HTTP/1.1 200 OK\r\nDate: Thu, 26 Nov 2026 02:23:00 GMT\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nok\n"),
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = kafkasink.Record("traffic", m, "rec-20261204-abcdef", "")
	}
}
