package windowsrc

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestDecodeJSONFormat(t *testing.T) {
	v := []byte(`{"Req_URL":"/cart?id=1","Req_Type":"1","Req_ID":"abc","Req_Ts":"1700000000000000000","Req_Method":"POST","Req_Body":"x=1","Req_Headers":{"Host":"shop","Content-Length":"3"}}`)
	m, _, err := decodeRecord(&kgo.Record{Value: v, Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	want := "POST /cart?id=1 HTTP/1.1\r\nContent-Length: 3\r\nHost: shop\r\n\r\nx=1"
	if m.Kind != message.Request || m.ID != "abc" || m.Time != 1700000000000000000 || string(m.Raw) != want || m.ConnID != "k" {
		t.Fatalf("decoded %+v %q", m, m.Raw)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, value string
		want        error
	}{
		{"garbage", "hello", message.ErrBadPayload},
		{"empty", "", message.ErrBadPayload},
		{"json broken", `{"Req_Type":`, errBadJSON},
		{"json missing fields", `{"Req_Type":"1"}`, errBadJSON},
		{"json bad ts", `{"Req_URL":"/","Req_Type":"1","Req_ID":"a","Req_Ts":"x","Req_Method":"GET"}`, errBadJSON},
		{"json space in url", `{"Req_URL":"/?token=S3CRET a","Req_Type":"1","Req_ID":"a","Req_Ts":"1","Req_Method":"GET"}`, errBadJSON},
		{"json space in id", `{"Req_URL":"/","Req_Type":"1","Req_ID":"S3CRET a","Req_Ts":"1","Req_Method":"GET"}`, errBadJSON},
		{"json tab in id", `{"Req_URL":"/","Req_Type":"1","Req_ID":"a\t9","Req_Ts":"1","Req_Method":"GET"}`, errBadJSON},
		{"json no-break space in ts", `{"Req_URL":"/","Req_Type":"1","Req_ID":"a","Req_Ts":"1\u00a02","Req_Method":"GET"}`, errBadJSON},
		{"secret header line", "1 S3CRET", message.ErrBadPayload},
		{"secret type", "S3CRET a 1\nGET / HTTP/1.1\r\n\r\n", message.ErrBadPayload},
		{"json crlf in header", `{"Req_URL":"/","Req_Type":"1","Req_ID":"a","Req_Ts":"1","Req_Method":"GET","Req_Headers":{"A":"b\r\nC: d"}}`, errBadJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeRecord(&kgo.Record{Value: []byte(tt.value)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "S3CRET") {
				t.Fatalf("error shows the record's bytes: %v", err)
			}
		})
	}
}

func TestDecodeBadHeaders(t *testing.T) {
	r := &kgo.Record{Value: []byte("1 a 5 0\nGET / HTTP/1.1\r\n\r\n"), Headers: []kgo.RecordHeader{{Key: "replayctl-src", Value: []byte("nope")}, {Key: "replayctl-dst", Value: []byte("1.2.3.4:80")}}}
	m, bad, err := decodeRecord(r)
	if err != nil || bad != 1 || m.Dst.String() != "1.2.3.4:80" || m.Src.IsValid() {
		t.Fatalf("decodeRecord = %+v, %d, %v", m, bad, err)
	}
}

func FuzzDecodeValue(f *testing.F) {
	f.Add([]byte("1 abc 1700000000000000000 0\nGET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte(`{"Req_URL":"/","Req_Type":"1","Req_ID":"a","Req_Ts":"1","Req_Method":"GET","Req_Headers":{"H":"v"},"Req_Body":"b"}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`{"Req_URL":"/","Req_Type":"1","Req_ID":"a\t9","Req_Ts":"1","Req_Method":"GET"}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		m, err := decodeValue(v)
		if err != nil {
			return
		}
		again, err := message.DecodePayload(m.Payload())
		if err != nil {
			t.Fatalf("decoded message does not re-encode: %v", err)
		}
		if again.ID != m.ID || again.Time != m.Time || again.Kind != m.Kind || string(again.Raw) != string(m.Raw) {
			t.Fatalf("re-encoded %+v, decoded %+v", again, m)
		}
		// A JSON record's fields are the message's, as written.
		var j gorJSON
		if v[0] == '{' && json.Unmarshal(v, &j) == nil {
			ts, _ := strconv.ParseInt(j.ReqTs, 10, 64)
			if m.ID != j.ReqID || m.Time != ts || m.Latency != 0 || strconv.Itoa(int(m.Kind)) != j.ReqType ||
				!strings.HasPrefix(string(m.Raw), j.ReqMethod+" "+j.ReqURL+" HTTP/1.1\r\n") {
				t.Fatalf("JSON %s decoded as %+v", v, m)
			}
		}
	})
}

// TestDecodeTruncated reads back the mark of a body cut at max-body, as
// the Kafka sink writes it.
func TestDecodeTruncated(t *testing.T) {
	m := &message.Message{Kind: message.Response, ID: "a", Time: 5, Truncated: true, Raw: []byte("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")}
	r := kafkasink.Record("t", m, "rec", "host")
	got, _, err := decodeRecord(r)
	if err != nil || !got.Truncated {
		t.Fatalf("decodeRecord = %+v, %v", got, err)
	}
	m.Truncated = false
	if got, _, _ := decodeRecord(kafkasink.Record("t", m, "rec", "host")); got.Truncated {
		t.Fatal("a complete message decoded as truncated")
	}
}
