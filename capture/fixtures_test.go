package capture

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/message"
)

// goldenConn is one connection as the fixture server saw it.
type goldenConn struct {
	Client string `json:"client"`
	C2S    []byte `json:"c2s"`
	S2C    []byte `json:"s2c"`
}

// readFixture reads testdata/NAME.EXT (ext ".pcap" or ".pcapng") and the
// golden file of NAME.
func readFixture(t *testing.T, name, ext string, cfg Config) ([]*message.Message, Stats, []goldenConn) {
	t.Helper()
	var msgs []*message.Message
	st, err := ReadFile(context.Background(), filepath.Join("testdata", name+ext), cfg, func(m *message.Message) error {
		msgs = append(msgs, m)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", name, err)
	}
	var golden []goldenConn
	b, err := os.ReadFile(filepath.Join("testdata", name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	return msgs, st, golden
}

// byClient groups messages by the client end of their connection.
func byClient(msgs []*message.Message) map[string][2][]*message.Message {
	out := map[string][2][]*message.Message{}
	for _, m := range msgs {
		k, i := m.Src.String(), 0
		if m.Kind == message.Response {
			k, i = m.Dst.String(), 1
		}
		v := out[k]
		v[i] = append(v[i], m)
		out[k] = v
	}
	return out
}

func concat(ms []*message.Message) []byte {
	var b []byte
	for _, m := range ms {
		b = append(b, m.Raw...)
	}
	return b
}

// TestFixtures checks, for every fixture recorded by make-fixtures.sh, that
// the captured requests and responses are exactly the bytes each connection
// carried, paired in order, with sane times. Each tcpdump capture is read
// as written (pcap) and as converted by editcap (pcapng); the tshark
// fixture was captured live as pcapng.
func TestFixtures(t *testing.T) {
	for _, tc := range fixtureCases {
		exts := []string{".pcap", ".pcapng"}
		if tc.pcapngOnly {
			exts = exts[1:]
		}
		for _, ext := range exts {
			t.Run(tc.name+ext, func(t *testing.T) { testFixture(t, tc, ext) })
		}
	}
}

// fixtureCase is a fixture of testdata and what its messages must be.
type fixtureCase struct {
	name              string
	port              uint16
	requests, interim int64 // requests -1: any number
	pcapngOnly        bool  // captured by tshark: no .pcap
	check             func(t *testing.T, msgs []*message.Message)
}

var fixtureCases = []fixtureCase{
	{name: "get", port: 18081, requests: 1},
	{name: "post", port: 18082, requests: 1, check: func(t *testing.T, msgs []*message.Message) {
		if !bytes.HasSuffix(msgs[0].Raw, []byte("\r\n\r\nname=gopher&lang=go")) {
			t.Errorf("POST body not kept: %q", msgs[0].Raw)
		}
	}},
	{name: "chunked", port: 18083, requests: 1, check: func(t *testing.T, msgs []*message.Message) {
		if !bytes.Contains(msgs[0].Raw, []byte("Transfer-Encoding: chunked")) || !bytes.HasSuffix(msgs[0].Raw, []byte("\r\n0\r\n\r\n")) {
			t.Errorf("chunked request: %q", msgs[0].Raw)
		}
		if !bytes.HasSuffix(msgs[1].Raw, []byte("0\r\nX-Body-Length: 38\r\n\r\n")) {
			t.Errorf("chunked response with trailer: %q", msgs[1].Raw)
		}
	}},
	{name: "keepalive", port: 18084, requests: 3},
	{name: "pipeline", port: 18085, requests: 3},
	{name: "expect", port: 18086, requests: 1, interim: 1, check: func(t *testing.T, msgs []*message.Message) {
		if !bytes.HasPrefix(msgs[1].Raw, []byte("HTTP/1.1 200 OK")) {
			t.Errorf("final response: %q", msgs[1].Raw)
		}
	}},
	{name: "head", port: 18087, requests: 1, check: func(t *testing.T, msgs []*message.Message) {
		if !bytes.HasSuffix(msgs[1].Raw, []byte("\r\n\r\n")) || !bytes.Contains(msgs[1].Raw, []byte("Content-Length:")) {
			t.Errorf("HEAD response: %q", msgs[1].Raw)
		}
	}},
	{name: "status", port: 18088, requests: 3},
	{name: "close", port: 18089, requests: 2, check: func(t *testing.T, msgs []*message.Message) {
		last := msgs[len(msgs)-1]
		if !bytes.HasPrefix(last.Raw, []byte("HTTP/1.0 200 OK")) || !bytes.HasSuffix(last.Raw, []byte("line 2\n")) {
			t.Errorf("read-to-close response: %q", last.Raw)
		}
	}},
	{name: "http10", port: 18090, requests: 1},
	{name: "ipv6", port: 18091, requests: 1, check: func(t *testing.T, msgs []*message.Message) {
		if !msgs[0].Src.Addr().Is6() || msgs[0].Dst.String() != "[::1]:18091" {
			t.Errorf("IPv6 addresses: %v → %v", msgs[0].Src, msgs[0].Dst)
		}
	}},
	{name: "large", port: 18092, requests: 1},
	{name: "wrk", port: 18093, requests: -1},
	{name: "tshark", port: 18094, requests: 4, pcapngOnly: true, check: func(t *testing.T, msgs []*message.Message) {
		// dumpcap writes nanosecond timestamps (if_tsresol 9): they
		// must not be rounded to microseconds.
		sub := false
		for _, m := range msgs {
			sub = sub || m.Time%1000 != 0
		}
		if !sub {
			t.Errorf("all message times are whole microseconds: nanosecond resolution lost")
		}
	}},
}

// testFixture reads one fixture file and compares its messages with the
// bytes the fixture server recorded.
func testFixture(t *testing.T, tt fixtureCase, ext string) {
	msgs, st, golden := readFixture(t, tt.name, ext, Config{Ports: []uint16{tt.port}, Responses: true, Host: "tester"})
	if tt.requests >= 0 && st["requests"] != tt.requests {
		t.Errorf("requests = %d, want %d", st["requests"], tt.requests)
	}
	if st["requests"] == 0 || st["responses"] != st["requests"] {
		t.Errorf("requests %d, responses %d", st["requests"], st["responses"])
	}
	for _, k := range []string{"unparsable", "incomplete", "unpaired-responses", "truncated", "decode-errors", "gaps", "streams-dropped"} {
		if st[k] != 0 {
			t.Errorf("stats[%s] = %d, want 0", k, st[k])
		}
	}
	if st["interim-responses"] != tt.interim {
		t.Errorf("interim-responses = %d, want %d", st["interim-responses"], tt.interim)
	}
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Time < msgs[i-1].Time {
			t.Errorf("message %d emitted out of capture-time order", i)
		}
	}
	conns := byClient(msgs)
	for _, g := range golden {
		rr := conns[g.Client]
		if got := concat(rr[0]); !bytes.Equal(got, g.C2S) {
			t.Errorf("%s: requests\n got %q\nwant %q", g.Client, got, g.C2S)
		}
		want := bytes.ReplaceAll(g.S2C, []byte("HTTP/1.1 100 Continue\r\n\r\n"), nil)
		if got := concat(rr[1]); !bytes.Equal(got, want) {
			t.Errorf("%s: responses\n got %q\nwant %q", g.Client, got, want)
		}
		if len(rr[0]) != len(rr[1]) {
			t.Fatalf("%s: %d requests, %d responses", g.Client, len(rr[0]), len(rr[1]))
		}
		for i, req := range rr[0] {
			resp := rr[1][i]
			if req.ID == "" || resp.ID != req.ID {
				t.Errorf("%s #%d: request ID %q, response ID %q", g.Client, i, req.ID, resp.ID)
			}
			if resp.Latency != resp.Time-req.Time || resp.Latency < 0 {
				t.Errorf("%s #%d: latency %d, times %d → %d", g.Client, i, resp.Latency, req.Time, resp.Time)
			}
			if req.ConnID != resp.ConnID || req.ConnID == "" || req.Host != "tester" {
				t.Errorf("%s #%d: conn IDs %q %q, host %q", g.Client, i, req.ConnID, resp.ConnID, req.Host)
			}
			if req.Kind != message.Request || resp.Kind != message.Response || req.Src != resp.Dst || req.Dst != resp.Src {
				t.Errorf("%s #%d: kinds or addresses wrong", g.Client, i)
			}
		}
	}
	if tt.check != nil {
		tt.check(t, msgs)
	}
}

// TestPcapngSameAsPcap reads each tcpdump fixture and its pcapng copy made
// by `editcap -F pcapng`: both give the same messages, field by field (IDs
// are random per Assembler, so only the pairing they encode is compared),
// and the same counters.
func TestPcapngSameAsPcap(t *testing.T) {
	for _, tc := range fixtureCases {
		if tc.pcapngOnly {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Ports: []uint16{tc.port}, Responses: true, Host: "tester"}
			want, wantSt, _ := readFixture(t, tc.name, ".pcap", cfg)
			got, gotSt, _ := readFixture(t, tc.name, ".pcapng", cfg)
			if !maps.Equal(gotSt, wantSt) {
				t.Errorf("stats\n got %v\nwant %v", gotSt, wantSt)
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages from pcapng, %d from pcap", len(got), len(want))
			}
			ids := map[string]string{} // pcap ID → pcapng ID
			for i, w := range want {
				g := *got[i]
				if id, ok := ids[w.ID]; ok && id != g.ID {
					t.Errorf("message %d: ID %q, want %q (pairing differs)", i, g.ID, id)
				}
				ids[w.ID] = g.ID
				g.ID = w.ID
				if !reflect.DeepEqual(&g, w) {
					t.Errorf("message %d:\n got %+v\nwant %+v", i, &g, w)
				}
			}
			if len(ids) != int(wantSt["requests"]) {
				t.Errorf("%d distinct IDs, %d requests", len(ids), wantSt["requests"])
			}
		})
	}
}

// TestFixtureTruncation reads a 20 kB response with MaxBody 1000: the
// message is emitted with its headers and the first 1000 body bytes.
func TestFixtureTruncation(t *testing.T) {
	msgs, st, golden := readFixture(t, "large", ".pcap", Config{Ports: []uint16{18092}, Responses: true, MaxBody: 1000})
	if st["truncated"] != 1 || len(msgs) != 2 {
		t.Fatalf("truncated = %d, messages = %d", st["truncated"], len(msgs))
	}
	resp := msgs[1]
	hdrEnd := bytes.Index(golden[0].S2C, []byte("\r\n\r\n")) + 4
	want := golden[0].S2C[:hdrEnd+1000]
	if !resp.Truncated || !bytes.Equal(resp.Raw, want) {
		t.Errorf("truncated response: %d bytes, Truncated=%v; want %d bytes", len(resp.Raw), resp.Truncated, len(want))
	}
	if msgs[0].Truncated || msgs[0].ID != resp.ID {
		t.Errorf("request: truncated %v, IDs %q %q", msgs[0].Truncated, msgs[0].ID, resp.ID)
	}
}

// TestQuickstartPcap checks the example capture: ~200 paired exchanges on
// port 8080 over several connections.
func TestQuickstartPcap(t *testing.T) {
	var n, conns int
	seen := map[string]bool{}
	st, err := ReadFile(context.Background(), "../examples/quickstart.pcap", Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error {
		n++
		if !seen[m.ConnID] {
			seen[m.ConnID] = true
			conns++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if st["requests"] != 200 || st["responses"] != 200 || conns < 4 || st["unpaired-responses"] != 0 || st["unparsable"] != 0 {
		t.Errorf("quickstart: %d messages over %d connections, stats %v", n, conns, st)
	}
}

// TestFileCutShort reads fixtures cut in the middle of their last packet, as
// a copy interrupted or a capture still being written leaves them: what came
// before is kept, and the lost packet is counted (file-cut-short), not taken
// for a decoding error.
func TestFileCutShort(t *testing.T) {
	for _, ext := range []string{".pcap", ".pcapng"} {
		t.Run(ext, func(t *testing.T) {
			cfg := Config{Ports: []uint16{18081}, Responses: true}
			full, err := os.ReadFile(filepath.Join("testdata", "get"+ext))
			if err != nil {
				t.Fatal(err)
			}
			whole, wholeSt, _ := readFixture(t, "get", ext, cfg)
			cut := filepath.Join(t.TempDir(), "cut"+ext)
			if err := os.WriteFile(cut, full[:len(full)-7], 0o644); err != nil {
				t.Fatal(err)
			}
			var msgs []*message.Message
			st, err := ReadFile(context.Background(), cut, cfg, func(m *message.Message) error {
				msgs = append(msgs, m)
				return nil
			})
			if err != nil {
				t.Fatalf("ReadFile: %v", err)
			}
			if st["file-cut-short"] != 1 || st["decode-errors"] != 0 || wholeSt["file-cut-short"] != 0 {
				t.Errorf("stats %v (whole file: %v), want file-cut-short 1 and no decode error", st, wholeSt)
			}
			if st["packets"] != wholeSt["packets"]-1 {
				t.Errorf("%d packets read, want all %d but the cut one", st["packets"], wholeSt["packets"]-1)
			}
			if len(msgs) == 0 || len(msgs) > len(whole) {
				t.Errorf("%d messages from the cut file, %d from the whole one", len(msgs), len(whole))
			}
		})
	}
}

// TestFileDamagedIsNotCutShort reads a pcapng file whose block length in
// its first section is damaged (it claims more bytes than the file holds):
// the reader runs to the end of the file looking for them, but the half
// megabyte after the damaged block is not one packet cut by the end of the
// file: it is an error that names the packet and the bytes not read, not a
// loss of 1 packet (file-cut-short), as it used to be counted. A file of the
// same size cut in its last packet is still file-cut-short.
func TestFileDamagedIsNotCutShort(t *testing.T) {
	one, err := os.ReadFile(filepath.Join("testdata", "get.pcapng"))
	if err != nil {
		t.Fatal(err)
	}
	// Sections one after the other are one pcapng file.
	full := bytes.Repeat(one, (512<<10)/len(one)+1)
	// The first block after the section header and interface blocks
	// that holds a packet (enhanced packet block, type 6).
	epb := 0
	for epb < len(one) && binary.LittleEndian.Uint32(one[epb:]) != 6 {
		epb += int(binary.LittleEndian.Uint32(one[epb+4:]))
	}
	if epb >= len(one) {
		t.Fatal("no enhanced packet block in get.pcapng")
	}
	damaged := bytes.Clone(full)
	binary.LittleEndian.PutUint32(damaged[epb+4:], 1<<30)
	tests := []struct {
		name    string
		data    []byte
		wantErr string // "": no error, file-cut-short 1
	}{
		{"cut in its last packet", full[:len(full)-7], ""},
		{"block length damaged", damaged, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.pcapng")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := Config{Ports: []uint16{18081}, Responses: true}
			st, err := ReadFile(context.Background(), path, cfg, func(*message.Message) error { return nil })
			if tt.wantErr == "" {
				if err != nil || st["file-cut-short"] != 1 {
					t.Fatalf("ReadFile = %v, stats %v; want file-cut-short 1", err, st)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "packet 1 at byte") {
				t.Fatalf("ReadFile = %v (stats %v), want an error naming the damaged packet", err, st)
			}
			if st["file-cut-short"] != 0 {
				t.Errorf("the damaged file counted as cut short: %v", st)
			}
		})
	}
}
