package kafkasink

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/message"
)

// FuzzSpoolRecord feeds arbitrary bytes to the spooled-record decoder: it
// never panics, and what it accepts encodes to bytes that decode to the
// same record.
func FuzzSpoolRecord(f *testing.F) {
	f.Add(appendRecord(nil, &kgo.Record{Key: []byte("conn"), Value: []byte("1 a 5 0\nGET / HTTP/1.1\r\n\r\n"), Timestamp: time.Unix(0, 42),
		Headers: []kgo.RecordHeader{{Key: "replayctl-kind", Value: []byte("request")}}}))
	f.Add(appendRecord(nil, &kgo.Record{Value: []byte{}, Timestamp: time.Unix(0, -1)}))
	f.Add([]byte{0x02, 0x00, 0x01, 0x05})
	// As many headers as the decoder's record holds, and one more.
	for _, n := range []int{8, 9} {
		r := &kgo.Record{Value: []byte("v"), Timestamp: time.Unix(0, 7)}
		for i := range n {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: string(rune('a' + i)), Value: []byte{byte(i)}})
		}
		f.Add(appendRecord(nil, r))
	}
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

// TestSpoolRecordRoundTrip spools the records Record builds: what the
// drainer decodes is the record the sink would have produced.
func TestSpoolRecordRoundTrip(t *testing.T) {
	for _, m := range []*message.Message{
		{Kind: message.Request, ID: "a", ConnID: "c-1", Time: 5, Src: netip.MustParseAddrPort("10.0.0.1:4000"), Dst: netip.MustParseAddrPort("10.0.0.2:80"),
			Raw: []byte("GET / HTTP/1.1\r\n\r\n"), Truncated: true, Host: "h"},
		{Kind: message.Response, Raw: []byte("HTTP/2.0 200 OK\r\n\r\n")},
	} {
		r := Record("t", m, "rec", "host")
		d, err := decodeRecord(appendRecord(nil, r))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Key, r.Key) || (d.Key == nil) != (r.Key == nil) || !bytes.Equal(d.Value, r.Value) || !d.Timestamp.Equal(r.Timestamp) || len(d.Headers) != len(r.Headers) {
			t.Fatalf("decoded %+v, want %+v", d, r)
		}
		for i, h := range r.Headers {
			if d.Headers[i].Key != h.Key || !bytes.Equal(d.Headers[i].Value, h.Value) {
				t.Fatalf("header %d: %+v, want %+v", i, d.Headers[i], h)
			}
		}
	}
}
