package windowsrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"unicode"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/message"
	"github.com/twmb/franz-go/pkg/kgo"
)

// decodeRecord turns a Kafka record into a message: the value is a GoReplay
// payload (or GoReplay's --output-kafka-json-format object), the key the
// connection ID, the headers (when present) the recording, host and addresses.
// badHeaders counts header values that did not parse (they are ignored).
func decodeRecord(r *kgo.Record) (m *message.Message, badHeaders int, err error) {
	m, err = decodeValue(r.Value)
	if err != nil {
		return nil, 0, err
	}
	if m.ConnID == "" && len(r.Key) > 0 {
		m.ConnID = string(r.Key)
	}
	for _, h := range r.Headers {
		v := string(h.Value)
		switch h.Key {
		case kafkaio.HeaderRecording:
			m.RecordingID = v
		case kafkaio.HeaderHost:
			m.Host = v
		case kafkaio.HeaderTruncated:
			m.Truncated = v == "1"
		case kafkaio.HeaderConn:
			if m.ConnID == "" {
				m.ConnID = v
			}
		case kafkaio.HeaderSrc, kafkaio.HeaderDst:
			ap, perr := netip.ParseAddrPort(v)
			if perr != nil {
				badHeaders++
				continue
			}
			if h.Key == kafkaio.HeaderSrc {
				m.Src = ap
			} else {
				m.Dst = ap
			}
		}
	}
	return m, badHeaders, nil
}

// decodeValue parses a GoReplay payload, or a JSON object as GoReplay's
// --output-kafka-json-format writes it.
func decodeValue(v []byte) (*message.Message, error) {
	if len(v) > 0 && v[0] == '{' {
		return decodeJSON(v)
	}
	return message.DecodePayload(v)
}

// gorJSON is GoReplay's KafkaMessage.
type gorJSON struct {
	ReqURL     string            `json:"Req_URL"`
	ReqType    string            `json:"Req_Type"`
	ReqID      string            `json:"Req_ID"`
	ReqTs      string            `json:"Req_Ts"`
	ReqMethod  string            `json:"Req_Method"`
	ReqBody    string            `json:"Req_Body"`
	ReqHeaders map[string]string `json:"Req_Headers"`
}

var errBadJSON = errors.New("bad GoReplay JSON record")

// decodeJSON rebuilds the request as GoReplay's JSON Kafka input does:
// "METHOD URL HTTP/1.1", the headers (sorted by name: JSON lost their order)
// and the body.
func decodeJSON(v []byte) (*message.Message, error) {
	var j gorJSON
	if err := json.Unmarshal(v, &j); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJSON, err)
	}
	if j.ReqType == "" || j.ReqID == "" || j.ReqTs == "" || j.ReqMethod == "" || j.ReqURL == "" {
		return nil, fmt.Errorf("%w: Req_Type, Req_ID, Req_Ts, Req_Method and Req_URL are required", errBadJSON)
	}
	for i, s := range []string{j.ReqType, j.ReqID, j.ReqTs, j.ReqMethod, j.ReqURL} {
		// Any white space the payload header's fields split at (a tab,
		// U+00A0: bytes.Fields's), not only a space: an ID "a\t9" would
		// otherwise become ID "a", time 9 and latency Req_Ts.
		if strings.IndexFunc(s, unicode.IsSpace) >= 0 {
			name := [...]string{"Req_Type", "Req_ID", "Req_Ts", "Req_Method", "Req_URL"}[i]
			return nil, fmt.Errorf("%w: field %s holds white space", errBadJSON, name)
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s %s\n%s %s HTTP/1.1\r\n", j.ReqType, j.ReqID, j.ReqTs, j.ReqMethod, j.ReqURL)
	names := make([]string, 0, len(j.ReqHeaders))
	for k := range j.ReqHeaders {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if bytes.ContainsAny([]byte(k+j.ReqHeaders[k]), "\r\n") {
			return nil, fmt.Errorf("%w: header %q holds a line break", errBadJSON, k)
		}
		fmt.Fprintf(&b, "%s: %s\r\n", k, j.ReqHeaders[k])
	}
	b.WriteString("\r\n")
	b.WriteString(j.ReqBody)
	m, err := message.DecodePayload(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errBadJSON, err)
	}
	return m, nil
}
