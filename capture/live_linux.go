//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// Live captures on iface ("any" for all interfaces) with an AF_PACKET
// TPACKET_V3 ring and a kernel BPF filter on the ports, until ctx is done
// (then it returns nil after emitting what is complete) or emit fails.
// It needs root or CAP_NET_RAW.
func Live(ctx context.Context, iface string, cfg LiveConfig, emit func(*message.Message) error) (Stats, error) {
	a := NewAssembler(cfg.Config, emit)
	err := a.Live(ctx, iface, cfg)
	return a.Stats(), err
}

// Live feeds a with packets captured on iface until ctx is done, then
// closes a. See the function Live.
func (a *Assembler) Live(ctx context.Context, iface string, cfg LiveConfig) error {
	snaplen := cfg.Snaplen
	if snaplen <= 0 {
		snaplen = 262144
	}
	ring := cfg.RingSize
	if ring <= 0 {
		ring = 32 << 20
	}
	const blockSize = 1 << 20
	frameSize := 1 << 16
	for frameSize < snaplen+128 && frameSize < blockSize {
		frameSize <<= 1
	}
	numBlocks := int(ring / blockSize)
	if numBlocks < 2 {
		numBlocks = 2
	}
	opts := []any{
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(frameSize),
		afpacket.OptBlockSize(blockSize),
		afpacket.OptNumBlocks(numBlocks),
		afpacket.OptBlockTimeout(10 * time.Millisecond),
		afpacket.OptPollTimeout(100 * time.Millisecond),
	}
	fo := filterOpts{ports: cfg.Ports, snaplen: uint32(snaplen), decap: !cfg.NoDecap}
	linkType := layers.LinkTypeEthernet
	var loIndex int
	if ifs, err := net.Interfaces(); err == nil {
		for _, i := range ifs {
			if i.Flags&net.FlagLoopback != 0 {
				loIndex = i.Index
			}
		}
	}
	if iface == "any" || iface == "" {
		// Interfaces of every kind: read from the network header on.
		opts = append(opts, afpacket.OptSocketType(afpacket.SocketDgram))
		fo.dgram = true
		linkType = layers.LinkTypeRaw
		fo.dropOutgoingIfindex = loIndex
	} else {
		ni, err := net.InterfaceByName(iface)
		if err != nil {
			return fmt.Errorf("capture: interface %q: %w", iface, err)
		}
		opts = append(opts, afpacket.OptInterface(iface), afpacket.OptAddVLANHeader(true))
		if ni.Flags&net.FlagLoopback != 0 {
			fo.dropOutgoingIfindex = ni.Index
		}
		if len(ni.HardwareAddr) == 0 && ni.Flags&net.FlagLoopback == 0 {
			// tun and other interfaces without a link header.
			opts = append(opts, afpacket.OptSocketType(afpacket.SocketDgram))
			fo.dgram, linkType = true, layers.LinkTypeRaw
		}
	}
	tp, err := afpacket.NewTPacket(opts...)
	if err != nil {
		return fmt.Errorf("capture: opening AF_PACKET socket on %q: %w", iface, err)
	}
	defer tp.Close()
	if fo.dropOutgoingIfindex > 0 && !fo.dgram {
		// On the loopback interface every packet is seen twice, outgoing
		// then incoming: with PACKET_IGNORE_OUTGOING the kernel neither
		// clones nor filters the outgoing copy for this socket, work done
		// in the context of the traffic's senders. Where the option cannot
		// be set, the BPF filter drops outgoing packets.
		if err := ignoreOutgoing(tp); err != nil {
			slog.Debug("capture: outgoing loopback packets left to the BPF filter", "err", err)
		}
	}
	prog, err := buildFilter(fo)
	if err != nil {
		return fmt.Errorf("capture: building BPF filter: %w", err)
	}
	if err := tp.SetBPF(prog); err != nil {
		return fmt.Errorf("capture: attaching BPF filter: %w", err)
	}
	if cfg.Promiscuous && !fo.dgram {
		if err := tp.SetPromiscuous(true); err != nil {
			return fmt.Errorf("capture: promiscuous mode on %q: %w", iface, err)
		}
	}
	slog.Debug("capture started", "interface", iface, "ports", cfg.Ports, "frame", frameSize, "blocks", numBlocks)
	// Packets queued before the filter was attached are drained by the
	// port classification in Decode.
	drops := func() {
		if _, s3, err := tp.SocketStats(); err == nil {
			a.SetKernelDrops(int64(s3.Drops()))
		}
	}
	// The clock, the context and the idle work are looked at every
	// tickEvery of packet time (the kernel's timestamps, wall clock) and
	// on every poll timeout, not per packet.
	const tickEvery = 10 * time.Millisecond
	// When ctx ends, the packets the kernel already queued in the ring are
	// still read (up to maxDrain, or until the ring is empty), so that a
	// stop loses nothing that was captured.
	const maxDrain = time.Second
	var lastTick, lastIdle, drainUntil time.Time
	for {
		data, ci, err := tp.ZeroCopyReadPacketData()
		tick, empty := false, false
		switch {
		case err == nil:
			if err := a.Decode(data, ci, linkType); err != nil {
				a.Close()
				return err
			}
			if ci.Timestamp.Sub(lastTick) >= tickEvery {
				lastTick, tick = ci.Timestamp, true
			}
		case errors.Is(err, afpacket.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
			tick, empty = true, true
		default:
			a.Close()
			return fmt.Errorf("capture: reading %q: %w", iface, err)
		}
		if !tick {
			continue
		}
		if ctx.Err() != nil {
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(maxDrain)
			}
			if empty || time.Now().After(drainUntil) {
				drops()
				return a.Close()
			}
			continue
		}
		if now := time.Now(); now.Sub(lastIdle) >= 100*time.Millisecond {
			lastIdle = now
			drops()
			if err := a.idle(now); err != nil {
				a.Close()
				return err
			}
		}
	}
}

// packetIgnoreOutgoing is PACKET_IGNORE_OUTGOING (Linux 4.20+).
const packetIgnoreOutgoing = 23

// ignoreOutgoing sets PACKET_IGNORE_OUTGOING on tp's socket. afpacket does
// not export the descriptor, so it is read by reflection; when that fails
// the option is not set and the BPF filter drops outgoing packets instead.
func ignoreOutgoing(tp *afpacket.TPacket) error {
	f := reflect.ValueOf(tp).Elem().FieldByName("fd")
	if !f.IsValid() || f.Kind() != reflect.Int || f.Int() <= 0 {
		return errors.New("afpacket.TPacket has no socket descriptor field")
	}
	if err := syscall.SetsockoptInt(int(f.Int()), syscall.SOL_PACKET, packetIgnoreOutgoing, 1); err != nil {
		return fmt.Errorf("setsockopt PACKET_IGNORE_OUTGOING: %w", err)
	}
	return nil
}
