//go:build linux

package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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
	fo := filterOpts{ports: cfg.Ports, snaplen: uint32(snaplen)}
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
	lastFlush := time.Now()
	for {
		if ctx.Err() != nil {
			drops()
			return a.Close()
		}
		data, ci, err := tp.ZeroCopyReadPacketData()
		switch {
		case err == nil:
			if err := a.Decode(data, ci, linkType); err != nil {
				a.Close()
				return err
			}
		case errors.Is(err, afpacket.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		default:
			a.Close()
			return fmt.Errorf("capture: reading %q: %w", iface, err)
		}
		if now := time.Now(); now.Sub(lastFlush) >= 100*time.Millisecond {
			lastFlush = now
			drops()
			if err := a.Flush(now); err != nil {
				a.Close()
				return err
			}
		}
	}
}
