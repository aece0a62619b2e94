package kafkasink

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kgo"
)

// batchLike returns about n bytes shaped like a produce batch's records:
// GoReplay payloads of HTTP requests, varied enough not to compress to
// nothing.
func batchLike(n, seed int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "\x00\x021 %024x 17334500%011d 0\nGET /api/v1/products/%d?sort=price&page=%d HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/%d\r\nAccept: */*\r\n\r\n",
			i*7919+seed, i*104729+seed, (i*31+seed)%5000, i%13, seed)
	}
	return b.Bytes()[:n]
}

// random returns n bytes that do not compress (a fixed seed: the same every run).
func random(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// lz4ContentChecksum reports whether an LZ4 frame's flags say it carries
// the content checksum (FLG is the byte after the 4-byte magic; bit 2).
func lz4ContentChecksum(t *testing.T, frame []byte) bool {
	t.Helper()
	if len(frame) < 7 || !bytes.Equal(frame[:4], []byte{0x04, 0x22, 0x4d, 0x18}) {
		t.Fatalf("not an LZ4 frame: % x", frame[:min(len(frame), 8)])
	}
	return frame[4]&0x04 != 0
}

func TestLZ4CompressorFrames(t *testing.T) {
	c := newLZ4Compressor()
	kgoLZ4, err := kgo.DefaultCompressor(kgo.Lz4Compression())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		src  []byte
	}{
		{"one byte", []byte("x")},
		{"one record", batchLike(200, 1)},
		{"a batch", batchLike(1<<20, 2)},
		{"more than one 4 MiB block", batchLike(9<<20, 3)},
		{"incompressible", random(100 << 10)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var dst bytes.Buffer
			out, codec := c.Compress(&dst, tc.src)
			if codec != kgo.CodecLz4 || out == nil {
				t.Fatalf("codec %v, out nil %v", codec, out == nil)
			}
			if lz4ContentChecksum(t, out) {
				t.Error("the frame carries the content checksum")
			}
			// franz-go's own frames carry it: the difference is the point.
			ref, _ := kgoLZ4.Compress(new(bytes.Buffer), tc.src)
			if !lz4ContentChecksum(t, ref) {
				t.Error("franz-go's frame has no content checksum: lz4Compressor is no longer needed")
			}
			// Readers: pierrec's (which franz-go uses to fetch) and franz-go's decompressor.
			got, err := io.ReadAll(lz4.NewReader(bytes.NewReader(out)))
			if err != nil || !bytes.Equal(got, tc.src) {
				t.Fatalf("lz4 reader: err %v, equal %v", err, bytes.Equal(got, tc.src))
			}
			got, err = kgo.DefaultDecompressor().Decompress(out, kgo.CodecLz4)
			if err != nil || !bytes.Equal(got, tc.src) {
				t.Fatalf("kgo decompressor: err %v, equal %v", err, bytes.Equal(got, tc.src))
			}
		})
	}
}

// TestLZ4CompressorReuse compresses from many goroutines at once through the
// pooled writers: each frame holds its own input and nothing else.
func TestLZ4CompressorReuse(t *testing.T) {
	c := newLZ4Compressor()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 8 {
				src := batchLike(1000+(g*8+i)*3001, g*8+i)
				var dst bytes.Buffer
				out, _ := c.Compress(&dst, src)
				if out[4]&0x04 != 0 {
					errs <- fmt.Errorf("goroutine %d frame %d: a reused writer wrote the content checksum", g, i)
				}
				got, err := kgo.DefaultDecompressor().Decompress(out, kgo.CodecLz4)
				if err != nil || !bytes.Equal(got, src) {
					errs <- fmt.Errorf("goroutine %d frame %d: err %v, equal %v", g, i, err, bytes.Equal(got, src))
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkLZ4Compress compares lz4Compressor with franz-go's default lz4
// compressor on a 1 MiB batch, the size the sink's batches reach.
func BenchmarkLZ4Compress(b *testing.B) {
	src := batchLike(1<<20, 7)
	kgoLZ4, err := kgo.DefaultCompressor(kgo.Lz4Compression())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		c    kgo.Compressor
	}{{"replayctl", newLZ4Compressor()}, {"franz-go", kgoLZ4}} {
		b.Run(bc.name, func(b *testing.B) {
			var dst bytes.Buffer
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				dst.Reset()
				bc.c.Compress(&dst, src)
			}
		})
	}
}
