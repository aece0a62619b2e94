package capture

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// synthGolden is what testdata/fixtool writes next to each synth-*.pcap.
type synthGolden struct {
	Port    uint16           `json:"port"`
	MaxBody int64            `json:"max_body"`
	Stats   map[string]int64 `json:"stats"`
	Msgs    []struct {
		Kind      string `json:"kind"`
		Client    string `json:"client"`
		TimeNs    int64  `json:"time_ns"`
		Raw       []byte `json:"raw"`
		Truncated bool   `json:"truncated"`
		Answers   int    `json:"answers"`
	} `json:"messages"`
}

func readSynthGolden(t *testing.T, name string) synthGolden {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "synth-"+name+".golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g synthGolden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

// sortMsgs orders messages by capture time, requests first.
func sortMsgs(msgs []*message.Message) {
	slices.SortStableFunc(msgs, func(a, b *message.Message) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), cmp.Compare(a.Kind, b.Kind))
	})
}

// checkSynth compares messages with a synthetic fixture's golden file:
// the same messages (bytes, kind, client, capture time to the nanosecond,
// truncation), each response paired with the request the fixture built it
// for, and the counters listed.
func checkSynth(t *testing.T, g synthGolden, msgs []*message.Message, st Stats) {
	t.Helper()
	for k, v := range g.Stats {
		if st[k] != v {
			t.Errorf("stats[%s] = %d, want %d", k, st[k], v)
		}
	}
	sortMsgs(msgs)
	if len(msgs) != len(g.Msgs) {
		for _, m := range msgs {
			t.Logf("got %v %d %q", m.Kind, m.Time, trim(m.Raw))
		}
		t.Fatalf("%d messages, want %d (stats %v)", len(msgs), len(g.Msgs), st)
	}
	for i, w := range g.Msgs {
		m := msgs[i]
		kind := message.Request
		if w.Kind == "response" {
			kind = message.Response
		}
		src := m.Src
		if m.Kind == message.Response {
			src = m.Dst
		}
		if m.Kind != kind || src.String() != w.Client || m.Time != w.TimeNs || m.Truncated != w.Truncated || !bytes.Equal(m.Raw, w.Raw) {
			t.Errorf("message %d:\n got %v from %v at %d truncated=%v %q\nwant %s from %s at %d truncated=%v %q",
				i, m.Kind, src, m.Time, m.Truncated, trim(m.Raw), w.Kind, w.Client, w.TimeNs, w.Truncated, trim(w.Raw))
			continue
		}
		if kind != message.Response {
			continue
		}
		if w.Answers >= 0 {
			if q := msgs[w.Answers]; m.ID != q.ID || m.Latency != m.Time-q.Time {
				t.Errorf("message %d: response ID %q latency %d, want the ID %q of message %d and latency %d", i, m.ID, m.Latency, q.ID, w.Answers, m.Time-q.Time)
			}
			continue
		}
		for j, q := range msgs {
			if q.Kind == message.Request && q.ID == m.ID {
				t.Errorf("message %d: paired with request %d, want unpaired", i, j)
			}
		}
	}
}

func trim(b []byte) string {
	if len(b) > 120 {
		return string(b[:100]) + "…" + string(b[len(b)-20:])
	}
	return string(b)
}

// TestSynthFixtures reads each synthetic fixture written by
// `fixtool synth` (holes, mid-stream starts, lost responses, reordering,
// RST, late retransmissions, a body over max-body, lenient framing,
// tunnels) and checks it against its golden file.
func TestSynthFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "synth-*.pcap"))
	if err != nil || len(files) < 15 {
		t.Fatalf("synthetic fixtures: %v, %v", files, err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "synth-"), ".pcap")
		t.Run(name, func(t *testing.T) {
			g := readSynthGolden(t, name)
			var msgs []*message.Message
			st, err := ReadFile(context.Background(), f, Config{Ports: []uint16{g.Port}, Responses: true, MaxBody: g.MaxBody}, func(m *message.Message) error {
				msgs = append(msgs, m)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			checkSynth(t, g, msgs, st)
		})
	}
}

// readFrames returns the frames of a pcap fixture.
func readFrames(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
}
