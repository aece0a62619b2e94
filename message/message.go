// Package message defines the unit replayctl moves around — one HTTP request or
// response exactly as captured — and its wire formats: the GoReplay payload used
// as Kafka record value and in .gor files.
package message

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
)

// Kind says what a message carries.
type Kind byte

// Kinds, numbered as GoReplay numbers its payload types.
const (
	Request          Kind = 1
	Response         Kind = 2
	ReplayedResponse Kind = 3
)

// String returns "request", "response" or "replayed-response".
func (k Kind) String() string {
	switch k {
	case Request:
		return "request"
	case Response:
		return "response"
	case ReplayedResponse:
		return "replayed-response"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// ParseKind parses the names String returns and GoReplay's digits "1", "2", "3".
func ParseKind(s string) (Kind, error) {
	switch s {
	case "request", "1":
		return Request, nil
	case "response", "2":
		return Response, nil
	case "replayed-response", "3":
		return ReplayedResponse, nil
	}
	return 0, fmt.Errorf("unknown message kind %q", s)
}

// Message is one HTTP request or response as captured.
type Message struct {
	Kind Kind
	// ID is shared by a request and its response (hex, as GoReplay writes it).
	ID string
	// ConnID identifies the TCP connection the message travelled on; it is the
	// Kafka record key, so a connection's messages stay in one partition, in order.
	ConnID string
	// Time is the capture time of the message's first packet, in Unix nanoseconds.
	Time int64
	// Latency is, for a response, response time − request time in nanoseconds.
	Latency int64
	// Src and Dst are the TCP endpoints (client → server for a request).
	Src, Dst netip.AddrPort
	// Raw is the HTTP message exactly as it was on the wire.
	Raw []byte
	// Truncated is set when the body was cut at the capture body limit.
	Truncated bool
	// Host is the capturing host's name, when known.
	Host string
	// RecordingID names the recording the message belongs to, when known.
	RecordingID string
}

// NewID returns a fresh random 24-hex-digit message ID, like GoReplay's.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrBadPayload is wrapped by every payload decoding error.
var ErrBadPayload = errors.New("bad GoReplay payload")

// AppendPayload appends the GoReplay payload of m to dst:
// "<type> <id> <unix-ns> <latency-ns>\n" followed by the raw HTTP bytes,
// with a fifth field, "truncated", for a message whose body was cut
// (Truncated): its head promises bytes it does not have. GoReplay reads
// the first four fields and leaves the others.
func AppendPayload(dst []byte, m *Message) []byte {
	dst = strconv.AppendInt(dst, int64(m.Kind), 10)
	dst = append(dst, ' ')
	id := m.ID
	if id == "" {
		id = "0"
	}
	dst = append(dst, id...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, m.Time, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, m.Latency, 10)
	if m.Truncated {
		dst = append(dst, " "+truncatedField...)
	}
	dst = append(dst, '\n')
	return append(dst, m.Raw...)
}

// Payload returns the GoReplay payload of m.
func (m *Message) Payload() []byte {
	return AppendPayload(make([]byte, 0, len(m.Raw)+64), m)
}

// headerFields is room for the fields of a payload's header line without
// an allocation (GoReplay writes 3 or 4).
const headerFields = 8

// splitFields appends the fields of line, separated by white space as
// bytes.Fields separates them, to dst (an allocation only past its
// capacity, or for a line with non-ASCII bytes).
func splitFields(dst [][]byte, line []byte) [][]byte {
	start := -1
	for i, c := range line {
		if c >= 0x80 {
			return append(dst[:0], bytes.Fields(line)...)
		}
		if asciiSpace[c] {
			if start >= 0 {
				dst = append(dst, line[start:i:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:len(line):len(line)])
	}
	return dst
}

// asciiSpace is bytes.Fields's ASCII white space.
var asciiSpace = [128]bool{'\t': true, '\n': true, '\v': true, '\f': true, '\r': true, ' ': true}

// DecodePayload parses a GoReplay payload into a message. The raw bytes alias
// p. Only the header fields are checked; the HTTP bytes are kept as they are.
func DecodePayload(p []byte) (*Message, error) {
	nl := bytes.IndexByte(p, '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line", ErrBadPayload)
	}
	hdr := p[:nl]
	var buf [headerFields][]byte
	fields := splitFields(buf[:0], hdr)
	if len(fields) < 3 {
		return nil, fmt.Errorf("%w: header line (%d bytes) has %d fields, want at least 3", ErrBadPayload, len(hdr), len(fields))
	}
	if len(fields[0]) != 1 || fields[0][0] < '1' || fields[0][0] > '3' {
		return nil, fmt.Errorf("%w: type field (%d bytes) is not 1, 2 or 3", ErrBadPayload, len(fields[0]))
	}
	m := &Message{Kind: Kind(fields[0][0] - '0'), ID: string(fields[1])}
	t, err := strconv.ParseInt(string(fields[2]), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%w: timestamp field (%d bytes): not an integer", ErrBadPayload, len(fields[2]))
	}
	m.Time = t
	if len(fields) >= 4 {
		l, err := strconv.ParseInt(string(fields[3]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: latency field (%d bytes): not an integer", ErrBadPayload, len(fields[3]))
		}
		m.Latency = l
	}
	m.Truncated = len(fields) >= 5 && string(fields[4]) == truncatedField
	m.Raw = p[nl+1:]
	return m, nil
}

// truncatedField is the payload header's fifth field of a message whose
// body was cut.
const truncatedField = "truncated"

// Capture times that cannot be real. A .gor file can carry any number as a
// message's time: zero, a negative one, seconds or milliseconds where
// nanoseconds belong (1970), garbage (years ahead). BogusTime tells them.
var (
	// EarliestTime is the earliest capture time taken as real.
	EarliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	// FutureSlack is how far past the present a capture time may be (a
	// capturing host's clock ahead of this one's).
	FutureSlack = 24 * time.Hour
)

// BogusTimeRule says in words which capture times BogusTime calls bogus.
const BogusTimeRule = "zero, negative, before 2000 or more than a day ahead of the clock"

// BogusTime reports whether t cannot be a real capture time as of now
// (BogusTimeRule).
func BogusTime(t, now time.Time) bool {
	return t.Before(EarliestTime) || t.After(now.Add(FutureSlack))
}
