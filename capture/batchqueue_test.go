package capture

import (
	"bytes"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
)

func TestBatchQueueOverflowCounted(t *testing.T) {
	var lc LiveCounters
	q := newBatchQueue(2, 64, &lc)
	pkt := bytes.Repeat([]byte{7}, 20)
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1, 0)}
	// 3 packets fill a 64-byte batch; the 4th does not fit.
	fill := func() {
		for i := 0; i < 3; i++ {
			if !q.add(pkt, ci) {
				t.Fatalf("packet %d did not fit", i)
			}
		}
		if q.add(pkt, ci) {
			t.Fatal("a 4th packet fit in 64 bytes")
		}
		q.flush()
	}
	fill()
	fill()
	if got := lc.QueueOverflow.Load(); got != 0 {
		t.Fatalf("overflow %d with room in the queue", got)
	}
	fill() // the queue holds 2 batches: this one is dropped
	if got := lc.QueueOverflow.Load(); got != 3 {
		t.Fatalf("overflow = %d, want 3", got)
	}
	if got := lc.Batches.Load(); got != 2 {
		t.Fatalf("batches = %d, want 2", got)
	}
	// The assembler takes one: the next batch is queued again.
	b := <-q.full
	if len(b.pkts) != 3 || !bytes.Equal(b.buf[b.pkts[2].off:b.pkts[2].end], pkt) {
		t.Fatalf("batch = %d packets", len(b.pkts))
	}
	q.release(b)
	fill()
	if got := lc.QueueOverflow.Load(); got != 3 {
		t.Fatalf("overflow = %d after the queue had room, want 3", got)
	}
	st := Stats{}
	lc.AddTo(st)
	if st["queue-overflow"] != 3 {
		t.Fatalf("stats = %v", st)
	}
}

func TestBatchQueueLargePacket(t *testing.T) {
	var lc LiveCounters
	q := newBatchQueue(4, 64, &lc)
	big := bytes.Repeat([]byte{1}, 200)
	if !q.add([]byte{1, 2}, gopacket.CaptureInfo{}) {
		t.Fatal("small packet refused")
	}
	if q.add(big, gopacket.CaptureInfo{}) {
		t.Fatal("200 bytes fit after a packet in a 64-byte batch")
	}
	q.flush()
	if !q.add(big, gopacket.CaptureInfo{}) {
		t.Fatal("a packet larger than a batch must get a batch of its own")
	}
	q.flush()
	q.close()
	var n, bytesN int
	for b := range q.full {
		for _, p := range b.pkts {
			n++
			bytesN += p.end - p.off
		}
		q.release(b)
	}
	if n != 2 || bytesN != 202 || lc.QueueOverflow.Load() != 0 {
		t.Fatalf("got %d packets, %d bytes, overflow %d", n, bytesN, lc.QueueOverflow.Load())
	}
}

func TestRingGeometry(t *testing.T) {
	tests := []struct {
		ring    int64
		snaplen int
		blocks  int
		block   int
		minHold time.Duration // time the ring holds at a low packet rate
	}{
		{ring: 64 << 20, snaplen: 262144, blocks: 128, block: 512 << 10, minHold: 12 * time.Second},
		{ring: 64 << 20, snaplen: 65535, blocks: 256, block: 256 << 10, minHold: 25 * time.Second},
		{ring: 0, snaplen: 1500, blocks: 256, block: 256 << 10, minHold: 25 * time.Second}, // DefaultRingSize
		{ring: 1 << 20, snaplen: 1500, blocks: 8, block: 256 << 10, minHold: 800 * time.Millisecond},
	}
	for _, tt := range tests {
		g := geometry(tt.ring, tt.snaplen)
		if g.numBlocks != tt.blocks || g.blockSize != tt.block {
			t.Errorf("ring %d snaplen %d: %d blocks of %d, want %d of %d", tt.ring, tt.snaplen, g.numBlocks, g.blockSize, tt.blocks, tt.block)
		}
		if g.blockSize%g.frameSize != 0 || g.frameSize < 1<<16 || g.blockSize < tt.snaplen {
			t.Errorf("ring %d snaplen %d: frame %d block %d", tt.ring, tt.snaplen, g.frameSize, g.blockSize)
		}
		if hold := time.Duration(g.numBlocks) * g.blockTimeout; hold < tt.minHold {
			t.Errorf("ring %d: holds %v at a low rate, want ≥ %v", tt.ring, hold, tt.minHold)
		}
		if g.queueBatches*g.batchBytes < 8<<20 {
			t.Errorf("ring %d: queue of %d bytes", tt.ring, g.queueBatches*g.batchBytes)
		}
	}
}
