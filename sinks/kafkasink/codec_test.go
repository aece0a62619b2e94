package kafkasink_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
)

// captureBatch returns n records as a capture of wrk against a small Go
// server produces them (a request and its response per exchange, over 32
// connections, IDs and times advancing), encoded about as a Kafka record
// batch holds them: lengths, key, value and headers of each record.
func captureBatch(n int, browser bool) []byte {
	t0 := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC).UnixNano()
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
	if browser {
		req = string(httpMsg().Raw)
	}
	resp := "HTTP/1.1 200 OK\r\nDate: Fri, 04 Dec 2026 18:00:00 GMT\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nok\n"
	var b []byte
	for i := range n {
		c := i / 2 % 32
		m := &message.Message{Kind: message.Request, ID: fmt.Sprintf("4f1c2a9e0b1d4e5f%08x", i/2),
			ConnID: fmt.Sprintf("127.0.0.1:%d-127.0.0.1:8080-%d", 40000+c, t0+int64(c)*1e6),
			Time:   t0 + int64(i)*14_000, Src: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(40000+c)),
			Dst: netip.MustParseAddrPort("127.0.0.1:8080"), Raw: []byte(req)}
		if i%2 == 1 {
			m.Kind, m.Latency, m.Raw, m.Src, m.Dst = message.Response, 42_000+int64(i%7)*1000, []byte(resp), m.Dst, m.Src
		}
		r := kafkasink.Record("t", m, "rec-20261204-180000-abcdef", "")
		b = binary.AppendVarint(b, int64(i)*14)
		b = binary.AppendVarint(b, int64(len(r.Key)))
		b = append(b, r.Key...)
		b = binary.AppendVarint(b, int64(len(r.Value)))
		b = append(b, r.Value...)
		for _, h := range r.Headers {
			b = binary.AppendVarint(b, int64(len(h.Key)))
			b = append(b, h.Key...)
			b = binary.AppendVarint(b, int64(len(h.Value)))
			b = append(b, h.Value...)
		}
	}
	return b
}

// BenchmarkCodec compresses batches of captured records as the producer
// does (kafkasink.Compressor, the codecs ProducerOpts offers; zstd at its
// fastest level too, and franz-go's own lz4 frames with their content
// checksum for comparison): CPU per record and the compressed size. Batches of 875
// records are what one partition of four gets in a 50 ms linger at 70 000
// messages/s; batches of 50, what it gets when requests leave as soon as
// there is room.
func BenchmarkCodec(b *testing.B) {
	type codec struct {
		name string
		comp kgo.Compressor // nil: none
	}
	var codecs []codec
	for _, name := range []string{"none", "lz4", "snappy", "zstd", "gzip"} {
		comp, err := kafkasink.Compressor(name)
		if err != nil {
			b.Fatal(err)
		}
		codecs = append(codecs, codec{name, comp})
	}
	for _, c := range []struct {
		name  string
		codec kgo.CompressionCodec
	}{{"zstd-fastest", kgo.ZstdCompression().WithLevel(1)}, {"lz4-franz-go", kgo.Lz4Compression()}} {
		comp, err := kgo.DefaultCompressor(c.codec)
		if err != nil {
			b.Fatal(err)
		}
		codecs = append(codecs, codec{c.name, comp})
	}
	for _, kind := range []string{"wrk", "browser"} {
		for _, records := range []int{50, 875} {
			src := captureBatch(records, kind == "browser")
			for _, c := range codecs {
				b.Run(fmt.Sprintf("%s/%d/%s", kind, records, c.name), func(b *testing.B) {
					comp := c.comp
					var buf bytes.Buffer
					out := src
					b.SetBytes(int64(len(src)))
					for b.Loop() {
						if comp != nil {
							buf.Reset()
							out, _ = comp.Compress(&buf, src)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*records), "ns/record")
					b.ReportMetric(float64(len(out))/float64(records), "wire-B/record")
					b.ReportMetric(float64(len(src))/float64(len(out)), "ratio")
				})
			}
		}
	}
}
