package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// filterOpts describes the packets a kernel filter sees.
type filterOpts struct {
	ports []uint16
	// dgram: packets start at the network header (SOCK_DGRAM, as on "any");
	// otherwise at an Ethernet header, possibly VLAN-tagged.
	dgram bool
	// dropOutgoingIfindex > 0 drops packets leaving that interface (the
	// loopback interface shows each packet twice: outgoing and incoming).
	dropOutgoingIfindex int
	snaplen             uint32
	// decap also accepts tunnels whose inner packets are decapsulated:
	// GRE (ERSPAN), and UDP to or from the VXLAN and Geneve ports. Their
	// inner ports are checked in user space.
	decap bool
}

// UDP ports of the tunnels decapsulated.
const (
	portVXLAN  = 4789
	portGeneve = 6081
)

// asm is a tiny assembler with forward labels for classic BPF.
type asm struct {
	ins    []bpf.Instruction
	fixups []fixup
	labels map[string]int
}

type fixup struct {
	at          int
	true, false string // labels; "" = next instruction
}

func (a *asm) emit(i bpf.Instruction) { a.ins = append(a.ins, i) }

// jump emits a conditional jump to labels.
func (a *asm) jump(cond bpf.JumpTest, val uint32, ifTrue, ifFalse string) {
	a.fixups = append(a.fixups, fixup{len(a.ins), ifTrue, ifFalse})
	a.ins = append(a.ins, bpf.JumpIf{Cond: cond, Val: val})
}

func (a *asm) label(name string) { a.labels[name] = len(a.ins) }

func (a *asm) assemble() ([]bpf.RawInstruction, error) {
	for _, f := range a.fixups {
		j := a.ins[f.at].(bpf.JumpIf)
		for _, x := range []struct {
			name string
			skip *uint8
		}{{f.true, &j.SkipTrue}, {f.false, &j.SkipFalse}} {
			if x.name == "" {
				continue
			}
			to, ok := a.labels[x.name]
			if !ok {
				return nil, fmt.Errorf("bpf: no label %q", x.name)
			}
			d := to - f.at - 1
			if d < 0 || d > 255 {
				return nil, fmt.Errorf("bpf: jump to %q too far (%d)", x.name, d)
			}
			*x.skip = uint8(d)
		}
		a.ins[f.at] = j
	}
	return bpf.Assemble(a.ins)
}

// buildFilter compiles a classic BPF program that accepts TCP over IPv4 or
// IPv6 to or from one of the ports (any TCP when ports is empty or too
// long to test one by one), with or without a VLAN tag, and with decap the
// tunnels opened by the Assembler.
func buildFilter(o filterOpts) ([]bpf.RawInstruction, error) {
	a := &asm{labels: map[string]int{}}
	ports := o.ports
	if len(ports) > 30 {
		ports = nil
	}
	if o.dropOutgoingIfindex > 0 {
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jump(bpf.JumpEqual, 4 /* PACKET_OUTGOING */, "", "start")
		a.emit(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex})
		a.jump(bpf.JumpEqual, uint32(o.dropOutgoingIfindex), "reject", "start")
	}
	a.label("start")
	// ip emits the tests of an IPv4 or IPv6 packet whose header starts at l3.
	// tunnel emits the tests of a packet that is not TCP (protocol in A):
	// GRE is accepted, UDP is checked by udpPorts, others rejected.
	tunnel := func(name string, udpPorts func()) {
		a.label(name)
		if !o.decap {
			a.emit(bpf.RetConstant{Val: 0})
			return
		}
		a.jump(bpf.JumpEqual, 47, "accept", "")
		a.jump(bpf.JumpEqual, 17, "", "reject")
		udpPorts()
	}
	udpPort := func() {
		a.jump(bpf.JumpEqual, portVXLAN, "accept", "")
		a.jump(bpf.JumpEqual, portGeneve, "accept", "reject")
	}
	ip4 := func(l3 uint32, name string) {
		a.label(name)
		a.emit(bpf.LoadAbsolute{Off: l3 + 9, Size: 1})
		a.jump(bpf.JumpEqual, 6, "", name+"-tunnel")
		// A fragment after the first has no TCP header, no port to test:
		// it is accepted, and the Assembler reassembles the packet and
		// tests it whole.
		a.emit(bpf.LoadAbsolute{Off: l3 + 6, Size: 2})
		a.jump(bpf.JumpBitsSet, 0x1fff, "accept", "")
		a.emit(bpf.LoadMemShift{Off: l3})
		ports4 := func(off uint32) {
			a.emit(bpf.LoadIndirect{Off: l3 + off, Size: 2})
			for _, p := range ports {
				a.jump(bpf.JumpEqual, uint32(p), "accept", "")
			}
		}
		if len(ports) == 0 {
			a.emit(bpf.RetConstant{Val: o.snaplen})
		} else {
			ports4(0)
			ports4(2)
			a.emit(bpf.RetConstant{Val: 0})
		}
		tunnel(name+"-tunnel", func() {
			// A tunnel's fragments after the first too: the Assembler
			// reassembles them.
			a.emit(bpf.LoadAbsolute{Off: l3 + 6, Size: 2})
			a.jump(bpf.JumpBitsSet, 0x1fff, "accept", "")
			a.emit(bpf.LoadMemShift{Off: l3})
			a.emit(bpf.LoadIndirect{Off: l3 + 2, Size: 2})
			udpPort()
		})
	}
	ip6 := func(l3 uint32, name string) {
		// ports6 tests the TCP ports at l3+off (after the fixed header,
		// or after a Fragment header).
		ports6 := func(off uint32) {
			if len(ports) == 0 {
				a.emit(bpf.RetConstant{Val: o.snaplen})
				return
			}
			for _, o := range []uint32{off, off + 2} {
				a.emit(bpf.LoadAbsolute{Off: l3 + o, Size: 2})
				for _, p := range ports {
					a.jump(bpf.JumpEqual, uint32(p), "accept", "")
				}
			}
			a.emit(bpf.RetConstant{Val: 0})
		}
		a.label(name)
		a.emit(bpf.LoadAbsolute{Off: l3 + 6, Size: 1})
		a.jump(bpf.JumpEqual, 6, "", name+"-ext")
		ports6(40)
		// A Fragment header (44) right after the fixed one: the first
		// fragment is tested by the ports after it, those after the
		// first, which have none, are accepted (of TCP, or of a tunnel
		// unless decap is off): the Assembler reassembles the packet and
		// tests it whole.
		a.label(name + "-ext")
		// Hop-by-hop options (0), routing (43), destination options (60)
		// before TCP or a Fragment header: their lengths vary, and the
		// packet is accepted for the Assembler to decode and test.
		a.jump(bpf.JumpEqual, 0, "accept", "")
		a.jump(bpf.JumpEqual, 43, "accept", "")
		a.jump(bpf.JumpEqual, 60, "accept", "")
		a.jump(bpf.JumpEqual, 44, "", name+"-tunnel")
		a.emit(bpf.LoadAbsolute{Off: l3 + 42, Size: 2})
		a.jump(bpf.JumpBitsSet, 0xfff8, name+"-later", "")
		a.emit(bpf.LoadAbsolute{Off: l3 + 40, Size: 1})
		a.jump(bpf.JumpEqual, 6, "", name+"-ftunnel")
		ports6(48)
		tunnel(name+"-ftunnel", func() {
			a.emit(bpf.LoadAbsolute{Off: l3 + 50, Size: 2})
			udpPort()
		})
		a.label(name + "-later")
		a.emit(bpf.LoadAbsolute{Off: l3 + 40, Size: 1})
		a.jump(bpf.JumpEqual, 6, "accept", name+"-ltunnel")
		tunnel(name+"-ltunnel", func() {
			a.emit(bpf.RetConstant{Val: o.snaplen}) // UDP: no port to test
		})
		tunnel(name+"-tunnel", func() {
			a.emit(bpf.LoadAbsolute{Off: l3 + 42, Size: 2})
			udpPort()
		})
	}
	if o.dgram {
		a.emit(bpf.LoadAbsolute{Off: 0, Size: 1})
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4})
		a.jump(bpf.JumpEqual, 4, "ip4", "")
		a.jump(bpf.JumpEqual, 6, "ip6", "reject")
		ip4(0, "ip4")
		ip6(0, "ip6")
	} else {
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 2})
		a.jump(bpf.JumpEqual, 0x0800, "ip4", "")
		a.jump(bpf.JumpEqual, 0x86dd, "ip6", "")
		a.jump(bpf.JumpEqual, 0x8100, "", "reject")
		a.emit(bpf.LoadAbsolute{Off: 16, Size: 2})
		a.jump(bpf.JumpEqual, 0x0800, "vip4", "")
		a.jump(bpf.JumpEqual, 0x86dd, "vip6", "reject")
		ip4(14, "ip4")
		ip6(14, "ip6")
		ip4(18, "vip4")
		ip6(18, "vip6")
	}
	a.label("accept")
	a.emit(bpf.RetConstant{Val: o.snaplen})
	a.label("reject")
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}
