package capture

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/replayctl/replayctl/message"
)

// TestOrderQueue pushes messages in various orders, popping now and then:
// they come out sorted by (time, seq), whether they went into the queue or
// the heap of stragglers.
func TestOrderQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name string
		time func(i int) int64
	}{
		{"sorted", func(i int) int64 { return int64(i) }},
		{"equal times", func(i int) int64 { return 7 }},
		{"nearly sorted", func(i int) int64 { return int64(i*10 + rng.IntN(100)) }},
		{"stragglers", func(i int) int64 {
			if i%50 == 0 {
				return int64(i*10 - 5000)
			}
			return int64(i * 10)
		}},
		{"reversed", func(i int) int64 { return int64(-i) }},
		{"random", func(i int) int64 { return rng.Int64N(1000) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var o orderQueue
			var pending, out []heldMsg
			check := func(upTo int64) {
				slices.SortFunc(pending, func(x, y heldMsg) int {
					if x.less(&y) {
						return -1
					}
					return 1
				})
				for len(pending) > 0 && pending[0].time <= upTo {
					if o.len() != len(pending) || o.minTime() != pending[0].time {
						t.Fatalf("len %d min %d, want %d %d", o.len(), o.minTime(), len(pending), pending[0].time)
					}
					m := o.pop()
					if m != pending[0].m {
						t.Fatalf("popped time %d id %s, want time %d id %s", m.Time, m.ID, pending[0].time, pending[0].m.ID)
					}
					out = append(out, pending[0])
					pending = pending[1:]
				}
			}
			for i := range 5000 {
				x := heldMsg{time: tt.time(i), seq: uint64(i + 1)}
				x.m = &message.Message{Time: x.time, ID: strconv.Itoa(i)}
				o.push(x)
				pending = append(pending, x)
				if i%700 == 699 {
					check(tt.time(i) - 200)
				}
			}
			check(1 << 62)
			if o.len() != 0 || len(out) != 5000 {
				t.Fatalf("left %d, out %d", o.len(), len(out))
			}
		})
	}
}

// TestUnemitted: a message counts as unemitted from its delivery until its
// emit returns, whether held for ordering or emitted at once, and nothing
// stays counted once the assembler is closed, even when emit changed the
// message's bytes.
func TestUnemitted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		window  time.Duration
		rewrite bool // emit changes m.Raw, as a record job's rewrite and redaction do
	}{{"emitted at once", -1, false}, {"held to sort", time.Second, false}, {"emit rewrites the message", time.Second, true}} {
		window := tc.window
		t.Run(tc.name, func(t *testing.T) {
			var a *Assembler
			var emitted int
			var sawReqs, sawResps int64
			a = NewAssembler(Config{Ports: []uint16{18084}, Responses: true, OrderWindow: window}, func(m *message.Message) error {
				emitted++
				reqs, resps, bytes := a.Unemitted()
				if reqs+resps < 1 || bytes < int64(len(m.Raw)) {
					t.Errorf("in emit: %d requests, %d responses, %d bytes unemitted; want at least this message's %d bytes", reqs, resps, bytes, len(m.Raw))
				}
				sawReqs, sawResps = max(sawReqs, reqs), max(sawResps, resps)
				if tc.rewrite {
					m.Raw = append([]byte("X-Rewritten: a longer head than before\r\n"), m.Raw...)
				}
				return nil
			})
			if err := a.ReadFile(context.Background(), "testdata/keepalive.pcap"); err != nil {
				t.Fatal(err)
			}
			if emitted == 0 {
				t.Fatal("nothing emitted")
			}
			if reqs, resps, bytes := a.Unemitted(); reqs != 0 || resps != 0 || bytes != 0 {
				t.Errorf("after Close: %d requests, %d responses, %d bytes unemitted, want 0", reqs, resps, bytes)
			}
			if window >= 0 && (sawReqs == 0 || sawResps == 0) {
				t.Errorf("held for ordering: at most %d requests and %d responses seen unemitted, want both kinds held", sawReqs, sawResps)
			}
		})
	}
}
