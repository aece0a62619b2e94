package kafkasink

import (
	"bytes"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzSpoolRecord feeds arbitrary bytes to the spooled-record decoder: it
// never panics, and what it accepts encodes to bytes that decode to the
// same record.
func FuzzSpoolRecord(f *testing.F) {
	f.Add(appendRecord(nil, &kgo.Record{Key: []byte("conn"), Value: []byte("1 a 5 0\nGET / HTTP/1.1\r\n\r\n"), Timestamp: time.Unix(0, 42),
		Headers: []kgo.RecordHeader{{Key: "replayctl-kind", Value: []byte("request")}}}))
	f.Add(appendRecord(nil, &kgo.Record{Value: []byte{}, Timestamp: time.Unix(0, -1)}))
	f.Add([]byte{0x02, 0x00, 0x01, 0x05})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := decodeRecord(appendRecord(nil, r))
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(again.Key, r.Key) || (again.Key == nil) != (r.Key == nil) || !bytes.Equal(again.Value, r.Value) ||
			!again.Timestamp.Equal(r.Timestamp) || len(again.Headers) != len(r.Headers) {
			t.Fatalf("round trip: %+v, want %+v", again, r)
		}
		for i, h := range r.Headers {
			if again.Headers[i].Key != h.Key || !bytes.Equal(again.Headers[i].Value, h.Value) {
				t.Fatalf("header %d: %+v, want %+v", i, again.Headers[i], h)
			}
		}
	})
}
