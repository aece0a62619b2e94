package capture

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// TestBPFFilterFragments6 runs the kernel filter of a live capture on IPv6
// fragments of TCP: the first is tested by its ports (after the Fragment
// header), the others, which have none, are accepted, with ports to test
// or without. The filter looked for TCP right after the IPv6 header and
// rejected every fragment: live, a packet sent in fragments was lost.
func TestBPFFilterFragments6(t *testing.T) {
	for _, ports := range [][]uint16{{8080}, nil} {
		for _, dgram := range []bool{false, true} {
			vm := filterVM(t, filterOpts{ports: ports, dgram: dgram, snaplen: 65535, decap: true})
			for _, tt := range []struct {
				dst  string
				want []bool // each fragment accepted
			}{
				{"[2001:db8::2]:8080", []bool{true, true, true}},
				{"[2001:db8::2]:22", []bool{ports == nil, true, true}},
			} {
				f := newFlow(t, linkEthernet, "[2001:db8::1]:40000", tt.dst)
				data, _ := f.packet(seg{true, 0, req1, "A"})
				for i, fr := range fragment6(t, data, 9, 24, 48) {
					if dgram {
						fr = fr[14:]
					}
					n, err := vm.Run(fr)
					if err != nil {
						t.Fatal(err)
					}
					if (n > 0) != tt.want[i] {
						t.Errorf("ports %v dgram=%v %s fragment %d: accepted=%v, want %v", ports, dgram, tt.dst, i, n > 0, tt.want[i])
					}
				}
			}
		}
	}
}

// TestBPFFilterTunnelFragments runs the kernel filter of a live capture
// on the fragments of a tunnel packet (VXLAN, in IPv4 and in IPv6): all
// are accepted, as the Assembler reassembles tunnels' fragments too. The
// filter let the first through and rejected the others (IPv4), or
// rejected all (IPv6): the first, of a tunnel, then counted as a packet
// lost (fragments-incomplete) that the filter itself had cut.
func TestBPFFilterTunnelFragments(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		vm := filterVM(t, filterOpts{ports: []uint16{8080}, snaplen: 65535, decap: true})
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		udp := &layers.UDP{SrcPort: 40000, DstPort: portVXLAN}
		var ip gopacket.SerializableLayer
		if v6 {
			eth.EthernetType = layers.EthernetTypeIPv6
			ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
			_ = udp.SetNetworkLayerForChecksum(ip6)
			ip = ip6
		} else {
			ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
			_ = udp.SetNetworkLayerForChecksum(ip4)
			ip = ip4
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, 200))); err != nil {
			t.Fatal(err)
		}
		frames := fragment(t, buf.Bytes(), 64, 128)
		if v6 {
			frames = fragment6(t, buf.Bytes(), 3, 64, 128)
		}
		for i, fr := range frames {
			n, err := vm.Run(fr)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Errorf("v6=%v: fragment %d rejected", v6, i)
			}
		}
	}
}

// filterVM is the kernel filter a live capture of o installs, in x/net's
// BPF interpreter, to run on frames as the kernel would.
func filterVM(t *testing.T, o filterOpts) *bpf.VM {
	t.Helper()
	prog, err := buildFilter(o)
	if err != nil {
		t.Fatal(err)
	}
	ins := make([]bpf.Instruction, len(prog))
	for i, r := range prog {
		ins[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}
