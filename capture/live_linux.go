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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/replayctl/replayctl/message"
)

// Live captures on iface ("any" for all interfaces) with an AF_PACKET
// TPACKET_V3 ring and a kernel BPF filter on the ports, until ctx is done
// (then it returns nil after emitting what is complete) or emit fails.
// It needs root or CAP_NET_RAW. The counters include queue-overflow (see
// LiveCounters).
func Live(ctx context.Context, iface string, cfg LiveConfig, emit func(*message.Message) error) (Stats, error) {
	a := NewAssembler(cfg.Config, emit)
	var lc LiveCounters
	err := a.LiveCounted(ctx, iface, cfg, &lc)
	st := a.Stats()
	lc.AddTo(st)
	return st, err
}

// LiveCounters are the counters of the live reader, outside the assembler:
// the reader copies packets out of the kernel ring into batches that a
// bounded queue hands to the assembler, and it never waits for the
// assembler. A batch that finds the queue full is dropped and its packets
// counted as QueueOverflow, a loss like the kernel's drops.
type LiveCounters struct {
	// QueueOverflow counts the packets dropped because the queue to the
	// assembler was full.
	QueueOverflow atomic.Int64
	// Batches counts the batches handed to the assembler.
	Batches atomic.Int64
}

// AddTo adds the counters to st under their names (queue-overflow).
func (lc *LiveCounters) AddTo(st Stats) {
	st["queue-overflow"] = lc.QueueOverflow.Load()
}

// Live feeds a with packets captured on iface until ctx is done, then
// closes a. See the function Live.
func (a *Assembler) Live(ctx context.Context, iface string, cfg LiveConfig) error {
	var lc LiveCounters
	return a.LiveCounted(ctx, iface, cfg, &lc)
}

// ringGeometry is the shape of the TPACKET_V3 ring and of the queue
// behind it.
type ringGeometry struct {
	blockSize, frameSize, numBlocks int
	// blockTimeout is how long the kernel fills a block before it hands it
	// over partly filled: at a low packet rate every block carries this
	// much time, so the ring holds numBlocks × blockTimeout of traffic at
	// least, whatever the rate.
	blockTimeout time.Duration
	// batchBytes is the size of one batch's buffer, queueBatches the
	// queue's length in batches.
	batchBytes, queueBatches int
}

const (
	ringBlockSize    = 256 << 10
	ringBlockTimeout = 100 * time.Millisecond
	liveBatchBytes   = 256 << 10
	liveBatchPackets = liveBatchBytes / 32
	// liveBatchAge is how long (packet time) a batch fills before it is
	// handed over anyway; it is handed over at once when the ring is empty.
	liveBatchAge = 50 * time.Millisecond
	// liveIdleTick is how often held messages whose order window is over
	// are released (and idle connections looked at) when no packet comes:
	// a replay from a live capture is paced from the first release, so a
	// coarser tick made each request late by up to the tick (up to 100 ms).
	liveIdleTick = 10 * time.Millisecond
)

// geometry sizes the ring from ring (bytes, default DefaultRingSize) and snaplen:
// blocks of 256 KiB, or larger up to the snaplen (512 KiB for the default
// 262144), retired after 100 ms, so that the default 64 MiB ring has 128
// blocks and holds at least 12.8 s of traffic at a low rate (the 1 MiB
// blocks retired every 10 ms of before held 640 ms); and a queue of 256 KiB
// batches as large as the ring (at least 8 MiB) behind it, allocated as it
// fills.
func geometry(ring int64, snaplen int) ringGeometry {
	if ring <= 0 {
		ring = DefaultRingSize
	}
	g := ringGeometry{blockSize: ringBlockSize, blockTimeout: ringBlockTimeout, batchBytes: liveBatchBytes}
	// A frame larger than the block cannot be captured whole: the kernel
	// clamps a packet to the block, so the block grows with the snaplen.
	for g.blockSize < snaplen+128 && g.blockSize < 4<<20 {
		g.blockSize <<= 1
	}
	g.frameSize = 1 << 16
	for g.frameSize < snaplen+128 && g.frameSize < g.blockSize {
		g.frameSize <<= 1
	}
	g.numBlocks = int(ring / int64(g.blockSize))
	if g.numBlocks < 8 {
		g.numBlocks = 8
	}
	q := ring
	if q < 8<<20 {
		q = 8 << 20
	}
	g.queueBatches = int(q / int64(g.batchBytes))
	return g
}

// LiveCounted is Live with the reader's counters kept in lc, which the
// caller may read while the capture runs.
func (a *Assembler) LiveCounted(ctx context.Context, iface string, cfg LiveConfig, lc *LiveCounters) error {
	snaplen := cfg.Snaplen
	if snaplen <= 0 {
		snaplen = 262144
	}
	g := geometry(cfg.RingSize, snaplen)
	opts := []any{
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptFrameSize(g.frameSize),
		afpacket.OptBlockSize(g.blockSize),
		afpacket.OptNumBlocks(g.numBlocks),
		afpacket.OptBlockTimeout(g.blockTimeout),
		afpacket.OptPollTimeout(g.blockTimeout),
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
	slog.Debug("capture started", "interface", iface, "ports", cfg.Ports, "frame", g.frameSize, "block", g.blockSize,
		"blocks", g.numBlocks, "queue-batches", g.queueBatches)
	// Packets queued before the filter was attached are drained by the
	// port classification in Decode.
	q := newBatchQueue(g.queueBatches, g.batchBytes, lc)
	defer track(iface, a, q, lc)()
	var abort atomic.Bool
	readErr := make(chan error, 1)
	go func() {
		defer q.close()
		readErr <- readRing(ctx, tp, q, &abort, func(drops int64) { a.SetKernelDrops(drops) })
	}()
	err = a.consume(q, linkType)
	if err != nil {
		// emit failed: stop the reader and let it go.
		abort.Store(true)
		for b := range q.full {
			q.queued.Add(-int64(len(b.pkts)))
			q.release(b)
		}
		<-readErr
		a.Close()
		return err
	}
	if err := <-readErr; err != nil {
		a.Close()
		return fmt.Errorf("capture: reading %q: %w", iface, err)
	}
	return a.Close()
}

// consume feeds a with the queue's batches until the queue is closed, and
// does the assembler's idle work every liveIdleTick.
func (a *Assembler) consume(q *batchQueue, linkType layers.LinkType) error {
	tick := time.NewTicker(liveIdleTick)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-q.full:
			if !ok {
				return nil
			}
			for i := range b.pkts {
				p := &b.pkts[i]
				err := a.Decode(b.buf[p.off:p.end:p.end], p.ci, linkType)
				q.queued.Add(-1)
				if err != nil {
					q.queued.Add(-int64(len(b.pkts) - i - 1))
					q.release(b)
					return err
				}
			}
			q.release(b)
		case now := <-tick.C:
			if err := a.idle(now); err != nil {
				return err
			}
		}
	}
}

// readRing copies the ring's packets into batches and queues them until
// ctx is done (then it goes on reading what the kernel already queued, up
// to maxDrain or until the ring is empty) or abort is set. It never waits
// for the assembler. drops is given the kernel's drop count now and then.
func readRing(ctx context.Context, tp *afpacket.TPacket, q *batchQueue, abort *atomic.Bool, drops func(int64)) error {
	// The clock, the context and the drop counter are looked at every
	// tickEvery of packet time (the kernel's timestamps) and on every poll
	// timeout, not per packet; a batch is handed over when full, after
	// liveBatchAge, or when the ring is empty.
	const tickEvery = 10 * time.Millisecond
	const maxDrain = time.Second
	kernelDrops := func() {
		if _, s3, err := tp.SocketStats(); err == nil {
			drops(int64(s3.Drops()))
		}
	}
	defer kernelDrops()
	defer q.flush()
	var lastTick, lastStats, drainUntil, batchStart time.Time
	for {
		if abort.Load() {
			return nil
		}
		data, ci, err := tp.ZeroCopyReadPacketData()
		tick, empty := false, false
		switch {
		case err == nil:
			if q.empty() {
				batchStart = ci.Timestamp
			}
			if !q.add(data, ci) {
				q.flush()
				batchStart = ci.Timestamp
				q.add(data, ci)
			}
			if ci.Timestamp.Sub(lastTick) >= tickEvery {
				lastTick, tick = ci.Timestamp, true
			}
		case errors.Is(err, afpacket.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
			tick, empty = true, true
		default:
			return err
		}
		if !tick {
			continue
		}
		if empty || lastTick.Sub(batchStart) >= liveBatchAge {
			q.flush()
		}
		if ctx.Err() != nil {
			if drainUntil.IsZero() {
				drainUntil = time.Now().Add(maxDrain)
			}
			if empty || time.Now().After(drainUntil) {
				return nil
			}
			continue
		}
		if now := time.Now(); now.Sub(lastStats) >= 100*time.Millisecond {
			lastStats = now
			kernelDrops()
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
