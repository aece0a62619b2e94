package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/message"
)

// h2Exchange is one request as the fixture server saw it (h2fixtool).
type h2Exchange struct {
	Seq       string            `json:"seq"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Authority string            `json:"authority"`
	Header    map[string]string `json:"header"`
	Body      []byte            `json:"body"`
	Status    int               `json:"status"`
	RespBody  []byte            `json:"resp_body"`
	Trailer   map[string]string `json:"trailer"`
}

// grpcUnframe strips the 5-byte gRPC message prefixes of a body.
func grpcUnframe(t *testing.T, b []byte) []byte {
	t.Helper()
	var out []byte
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("gRPC body: %d bytes left, want a 5-byte prefix", len(b))
		}
		n := int(b[1])<<24 | int(b[2])<<16 | int(b[3])<<8 | int(b[4])
		if b[0] != 0 || len(b) < 5+n {
			t.Fatalf("gRPC body: bad prefix % x with %d bytes", b[:5], len(b))
		}
		out = append(out, b[5:5+n]...)
		b = b[5+n:]
	}
	return out
}

// fieldValue finds a response field or, failing that, trailer field.
func fieldValue(r *httpraw.Response, name string) (string, bool) {
	if v, ok := r.Header(h2text.TrailerPrefix + name); ok {
		return v, true
	}
	return r.Header(name)
}

// TestH2Fixtures reads the HTTP/2 fixtures made by make-h2-fixtures.sh
// (curl with prior knowledge and with Upgrade: h2c against a Go h2c server;
// a Go HTTP/2 client with interleaved streams, CONTINUATION and request
// trailers; a grpc-go client and server, unary and server-streaming calls)
// and checks every request and response against what the server saw and
// answered, and every header field against tshark's HTTP/2 dissector.
func TestH2Fixtures(t *testing.T) {
	for _, name := range []string{"h2c-prior", "h2c-upgrade", "grpc"} {
		t.Run(name, func(t *testing.T) {
			var msgs []*message.Message
			st, err := ReadFile(context.Background(), filepath.Join("testdata", name+".pcap"), Config{Responses: true}, func(m *message.Message) error {
				msgs = append(msgs, m)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var golden []h2Exchange
			b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &golden); err != nil {
				t.Fatal(err)
			}
			for _, c := range []string{"incomplete", "unparsable", "h2-frame-errors", "h2-hpack-errors", "h2-lost-sync", "h2-unrenderable", "unpaired-responses", "gaps", "truncated"} {
				if st[c] != 0 {
					t.Errorf("%s = %d, want 0 (stats %v)", c, st[c], st)
				}
			}
			if st["requests"] != int64(len(golden)) || st["responses"] != int64(len(golden)) {
				t.Fatalf("requests %d, responses %d; the server saw %d", st["requests"], st["responses"], len(golden))
			}
			// tshark counts 18 WINDOW_UPDATE frames in grpc.pcap, 41 in h2c-prior.pcap.
			if want := map[string]int64{"grpc": 18, "h2c-prior": 41}[name]; want > 0 && st["h2-window-updates"] != want {
				t.Errorf("h2-window-updates = %d, want %d (tshark)", st["h2-window-updates"], want)
			}
			if name == "h2c-upgrade" && st["h2c-upgrades"] != 2 {
				t.Errorf("h2c-upgrades = %d, want 2", st["h2c-upgrades"])
			}
			reqs := map[string]*message.Message{}
			resps := map[string]*message.Message{}
			for _, m := range msgs {
				if m.Kind == message.Request {
					reqs[m.ID] = m
				} else {
					resps[m.ID] = m
				}
			}
			seen := 0
			for id, m := range reqs {
				req, err := httpraw.ParseRequest(m.Raw)
				if err != nil {
					t.Fatalf("request %q: %v", m.Raw, err)
				}
				seq, _ := req.Header("x-seq")
				if seq == "" {
					seq, _ = req.Query().Get("x-seq")
				}
				i := slices.IndexFunc(golden, func(e h2Exchange) bool { return e.Seq == seq })
				if i < 0 {
					t.Fatalf("request with x-seq %q: not seen by the server", seq)
				}
				g := golden[i]
				seen++
				wantProto := h2text.Proto
				if name == "h2c-upgrade" {
					wantProto = "HTTP/1.1"
				}
				if req.Method() != g.Method || req.Target() != g.Path || req.Host() != g.Authority || req.Proto() != wantProto {
					t.Errorf("%s: %s %s %s host %s, want %s %s %s host %s", seq, req.Method(), req.Target(), req.Proto(), req.Host(), g.Method, g.Path, wantProto, g.Authority)
				}
				body := req.Body()
				if name == "grpc" {
					body = grpcUnframe(t, body)
				}
				if !bytes.Equal(body, g.Body) {
					t.Errorf("%s: request body %d bytes, want %d", seq, len(body), len(g.Body))
				}
				for k, v := range g.Header {
					if k == ":authority" || k == "content-type" && name == "grpc" || k == "trailer" || k == "user-agent" && name == "grpc" {
						continue
					}
					if got := strings.Join(req.Values(k), ", "); got != v {
						t.Errorf("%s: header %s = %q, want %q", seq, k, got, v)
					}
				}
				if seq == "c003" {
					if v, _ := req.Header(h2text.TrailerPrefix + "x-request-trailer"); v != "done" {
						t.Errorf("request trailer = %q, want done", v)
					}
				}
				rm := resps[id]
				if rm == nil {
					t.Fatalf("%s: no response", seq)
				}
				if rm.Latency <= 0 || rm.Time < m.Time || rm.ConnID != m.ConnID {
					t.Errorf("%s: latency %d, times %d %d, conns %s %s", seq, rm.Latency, m.Time, rm.Time, m.ConnID, rm.ConnID)
				}
				resp, err := httpraw.ParseResponse(rm.Raw)
				if err != nil {
					t.Fatalf("response %q: %v", rm.Raw, err)
				}
				if resp.StatusCode() != g.Status || resp.Proto() != h2text.Proto {
					t.Errorf("%s: status %d %s, want %d", seq, resp.StatusCode(), resp.Proto(), g.Status)
				}
				rbody := resp.Body()
				if name == "grpc" {
					rbody = grpcUnframe(t, rbody)
				}
				if !bytes.Equal(rbody, g.RespBody) {
					t.Errorf("%s: response body %q, want %q", seq, rbody, g.RespBody)
				}
				for k, v := range g.Trailer {
					if got, ok := fieldValue(resp, k); !ok || got != v {
						t.Errorf("%s: trailer %s = %q, want %q", seq, k, got, v)
					}
				}
			}
			if seen != len(golden) {
				t.Errorf("%d requests matched, want %d", seen, len(golden))
			}
			checkTshark(t, name, msgs)
		})
	}
}

// checkTshark compares the multiset of header fields in the messages with
// the one tshark's HTTP/2 dissector decoded from the same capture (:scheme
// aside: it is not kept).
func checkTshark(t *testing.T, name string, msgs []*message.Message) {
	b, err := os.ReadFile(filepath.Join("testdata", name+".tshark.tsv"))
	if os.IsNotExist(err) {
		return // h2c-upgrade: tshark does not follow the upgrade
	}
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		names, values, _ := strings.Cut(line, "\t")
		ns, vs := strings.Split(names, "^"), strings.Split(values, "^")
		if len(ns) != len(vs) {
			t.Fatalf("tshark line %q: %d names, %d values", line, len(ns), len(vs))
		}
		for i := range ns {
			if ns[i] != ":scheme" {
				want[ns[i]+": "+vs[i]]++
			}
		}
	}
	got := map[string]int{}
	for _, m := range msgs {
		head, _, _ := bytes.Cut(m.Raw, []byte("\r\n\r\n"))
		lines := strings.Split(string(head), "\r\n")
		if m.Kind == message.Request {
			f := strings.Fields(lines[0])
			got[":method: "+f[0]]++
			got[":path: "+f[1]]++
		} else {
			got[":status: "+strings.Fields(lines[0])[1]]++
		}
		for _, l := range lines[1:] {
			n, v, _ := strings.Cut(l, ": ")
			switch {
			case n == "Host":
				n = ":authority"
			case n == "Content-Length":
				continue
			case strings.HasPrefix(n, h2text.TrailerPrefix):
				n = n[len(h2text.TrailerPrefix):]
			}
			got[n+": "+v]++
		}
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("field %.80q: %d in the messages, %d by tshark", k, got[k], n)
		}
	}
	for k, n := range got {
		if want[k] == 0 {
			t.Errorf("field %.80q: %d in the messages, none by tshark", k, n)
		}
	}
}
