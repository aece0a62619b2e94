package capture

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// TestResponseCapturedBeforeItsRequest: the two directions of a
// connection reordered in the capture (a multi-queue NIC, "any"): a
// response's first segment comes before the request it answers, its ACK
// covering request bytes not seen yet. It pairs with that request when
// it comes. It was counted unpaired, and every later response of the
// connection was paired with the request before its own, without a word.
// A response whose request never comes (the next one starts past its
// ACK) is unpaired, as before.
func TestResponseCapturedBeforeItsRequest(t *testing.T) {
	reqA := "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
	reqB := "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
	reqC := "GET /c HTTP/1.1\r\nHost: h\r\n\r\n"
	respA := "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
	respB := "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nB"
	respC := "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nC"
	ln := func(ss ...string) uint32 {
		n := 0
		for _, s := range ss {
			n += len(s)
		}
		return uint32(n)
	}
	for _, tc := range []struct {
		name     string
		lostB    bool // request B is not in the capture at all
		want     map[string]string
		unpaired int64
	}{
		{"reordered", false, map[string]string{"/a": "A", "/b": "B", "/c": "C"}, 0},
		{"request never captured", true, map[string]string{"/a": "A", "/c": "C"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:80")
			segs := handshake()
			segs = append(segs,
				seg{fromClient: true, data: reqA, flags: "A"},
				seg{fromClient: false, data: respA, flags: "A"},
			)
			// B's response first: its ACK covers B's request.
			ackB := ln(reqA, reqB)
			segs = append(segs, seg{fromClient: false, off: ln(respA), data: respB, flags: "A"})
			if !tc.lostB {
				segs = append(segs, seg{fromClient: true, off: ln(reqA), data: reqB, flags: "A"})
			}
			segs = append(segs,
				seg{fromClient: true, off: ln(reqA, reqB), data: reqC, flags: "A"},
				seg{fromClient: false, off: ln(respA, respB), data: respC, flags: "A"},
			)
			// Fed one by one, the ACK of B's response set by hand.
			var got []*message.Message
			a := NewAssembler(Config{Responses: true, OrderWindow: -1}, func(m *message.Message) error { got = append(got, m); return nil })
			for i, s := range segs {
				if !s.fromClient && s.data == respB {
					f.ackOverride = &ackB
				}
				data, ci := f.packet(s)
				if err := a.Decode(data, ci, f.link.linkType()); err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			reqs, resps := map[string]string{}, map[string]string{}
			for _, m := range got {
				raw := string(m.Raw)
				if strings.HasPrefix(raw, "GET ") {
					reqs[m.ID] = strings.Fields(raw)[1]
				} else {
					resps[m.ID] = raw[len(raw)-1:]
				}
			}
			pairs := map[string]string{}
			for id, path := range reqs {
				pairs[path] = resps[id]
			}
			for path, body := range tc.want {
				if pairs[path] != body {
					t.Errorf("%s answered by %q, want %q (pairs %v)", path, pairs[path], body, pairs)
				}
			}
			if st := a.Stats(); st["unpaired-responses"] != tc.unpaired || st["unanswered-requests"] != 0 {
				t.Errorf("unpaired-responses %d (want %d), unanswered-requests %d", st["unpaired-responses"], tc.unpaired, st["unanswered-requests"])
			}
		})
	}
}
