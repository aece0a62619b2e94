package capture

import (
	"bytes"
	"context"
	"testing"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// TestPcapngMixedLinkTypes reads a pcapng file with two interfaces of
// different link types, as `dumpcap -i eth0 -i any` or mergecap of an
// Ethernet and a Linux cooked capture write it: the packets of both
// interfaces are captured, each decoded by its own interface's link type.
// pcapgo's NgReader skips, silently and uncounted, the packets of every
// interface whose link type differs from the first's unless told
// WantMixedLinkType.
func TestPcapngMixedLinkTypes(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&buf, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 262144}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	sll2, err := w.AddInterface(pcapgo.NgInterface{Name: "any", LinkType: layers.LinkTypeLinuxSLL2, SnapLength: 262144})
	if err != nil {
		t.Fatal(err)
	}
	segs := append(handshake(), seg{true, 0, req1, "A"}, seg{false, 0, resp1, "A"},
		seg{true, uint32(len(req1)), "", "FA"}, seg{false, uint32(len(resp1)), "", "FA"})
	eth := newFlow(t, linkEthernet, "10.0.0.1:40000", "10.0.0.2:8080")
	cooked := newFlow(t, linkSLL2, "10.0.0.3:40001", "10.0.0.2:8080")
	cooked.ts = eth.ts.Add(-500_000) // interleaved with eth's packets
	for i := range segs {
		for _, fi := range []struct {
			f     *flow
			iface int
		}{{eth, 0}, {cooked, sll2}} {
			data, ci := fi.f.packet(segs[i])
			ci.InterfaceIndex = fi.iface
			if err := w.WritePacket(ci, data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var msgs []*message.Message
	a := NewAssembler(Config{Ports: []uint16{8080}, Responses: true}, func(m *message.Message) error { msgs = append(msgs, m); return nil })
	if err := a.ReadFrom(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	st := a.Stats()
	clients := map[string]int{}
	for _, m := range msgs {
		clients[m.Src.Addr().String()+"/"+m.Kind.String()]++
		if m.Kind == message.Request && string(m.Raw) != req1 || m.Kind == message.Response && string(m.Raw) != resp1 {
			t.Errorf("%s %s: %q", m.Src, m.Kind, m.Raw)
		}
	}
	for _, k := range []string{"10.0.0.1/request", "10.0.0.3/request", "10.0.0.2/response"} {
		want := 1
		if k == "10.0.0.2/response" {
			want = 2
		}
		if clients[k] != want {
			t.Errorf("%s: %d messages, want %d (all: %v)", k, clients[k], want, clients)
		}
	}
	if st["packets"] != 14 || st["decode-errors"] != 0 || st["packets-ignored"] != 0 {
		t.Errorf("packets %d (want 14), decode-errors %d, packets-ignored %d", st["packets"], st["decode-errors"], st["packets-ignored"])
	}
}
