package capture

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/replayctl/replayctl/message"
)

// packetReader is what pcapgo's Reader and NgReader have in common.
type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// ReadFile reads a pcap or pcapng file (told apart by their magic number)
// to its end and calls emit for each HTTP message, then returns the
// counters. It stops early when ctx is done or emit returns an error.
func ReadFile(ctx context.Context, path string, cfg Config, emit func(*message.Message) error) (Stats, error) {
	a := NewAssembler(cfg, emit)
	err := a.ReadFile(ctx, path)
	return a.Stats(), err
}

// ReadFile feeds every packet of a pcap or pcapng file to a, then closes a.
func (a *Assembler) ReadFile(ctx context.Context, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	if err := a.ReadFrom(ctx, f); err != nil {
		return fmt.Errorf("capture: reading %s: %w", path, err)
	}
	return nil
}

// ReadFrom feeds every packet of a pcap or pcapng stream to a, then closes a.
func (a *Assembler) ReadFrom(ctx context.Context, r io.Reader) error {
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, 1<<20)
	magic, err := br.Peek(4)
	if err != nil {
		if len(magic) == 0 && errors.Is(err, io.EOF) {
			return errors.New("not a pcap or pcapng file: it is empty (write one with tcpdump -w FILE)")
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("not a pcap or pcapng file: it holds %d byte(s), less than a pcap header", len(magic))
		}
		return fmt.Errorf("reading magic number: %w", err)
	}
	var pr packetReader
	var linkType func(ci gopacket.CaptureInfo) layers.LinkType
	switch m := binary.LittleEndian.Uint32(magic); m {
	case 0x0a0d0d0a:
		// Each interface has its own link type (dumpcap -i eth0 -i any,
		// mergecap of an Ethernet and a cooked capture): without
		// WantMixedLinkType, pcapgo skips the packets of every interface
		// whose link type is not the first's, silently.
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return fmt.Errorf("pcapng: %w", err)
		}
		pr = ng
		linkType = func(ci gopacket.CaptureInfo) layers.LinkType {
			if intf, err := ng.Interface(ci.InterfaceIndex); err == nil {
				return intf.LinkType
			}
			return ng.LinkType()
		}
	case 0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1:
		pc, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("pcap: %w", err)
		}
		pr = pc
		lt := pc.LinkType()
		linkType = func(gopacket.CaptureInfo) layers.LinkType { return lt }
	default:
		head, _ := br.Peek(64)
		return notPcap(head)
	}
	for n := 0; ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				a.Close()
				return err
			}
		}
		at := cr.n - int64(br.Buffered()) // where the packet's record starts
		data, ci, err := pr.ZeroCopyReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// A file cut short (a capture still being written, a copy
			// interrupted) ends the input; what was read is kept.
			if errors.Is(err, io.ErrUnexpectedEOF) {
				// The input was read to its end: what follows the
				// record's start is all that is left of it.
				if rest := cr.n - at; rest > maxCutRecord {
					// Not one packet cut by the end of the file: a
					// damaged header claimed more than the file holds
					// (pcapng's block length), and the rest of the
					// file is not read.
					a.Close()
					return fmt.Errorf("packet %d at byte %d: damaged: its header claims more bytes than the %d left in the file, which are not read", n+1, at, rest)
				}
				// Counted as a loss (file-cut-short) by the record job.
				a.count(cFileCutShort, 1)
				break
			}
			a.Close()
			return fmt.Errorf("packet %d: %w", n+1, err)
		}
		if err := a.Decode(data, ci, linkType(ci)); err != nil {
			a.Close()
			return err
		}
	}
	return a.Close()
}

// maxCutRecord bounds what is left of a file that ends in the middle of a
// packet's record: the largest packet a capture holds (a 256 KiB snap
// length) and its header and pcapng options. More is not a file cut short
// but a damaged header.
const maxCutRecord = 256<<10 + 64<<10

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// gorHeader is the first line of a GoReplay (.gor) file's first payload:
// "<type> <hex id> <unix-ns>", type 1 (request), 2 (response) or 3.
var gorHeader = regexp.MustCompile(`^[123] [0-9a-f]+ [0-9]+`)

// notPcap says why a file that does not start with a pcap or pcapng magic
// number is not read, and what to do: a GoReplay file, gzip, text and
// other bytes each get their own hint. head is the file's first bytes;
// none of them is shown but the magic number (a capture file may hold
// secrets; its first four bytes, in hex, tell formats apart).
func notPcap(head []byte) error {
	switch {
	case gorHeader.Match(head):
		return errors.New("not a pcap or pcapng file: it looks like a GoReplay (.gor) file; read it with source: {gor: {path: …}}")
	case head[0] == 0x1f && head[1] == 0x8b:
		return errors.New("not a pcap or pcapng file: it is gzip-compressed; gunzip it first (a .gor.gz is read by source: {gor: {path: …}})")
	}
	return fmt.Errorf("not a pcap or pcapng file (its first bytes are %x; a pcap's are d4c3b2a1 or a1b2c3d4, a pcapng's 0a0d0d0a): write one with tcpdump -w FILE, or save it from Wireshark as pcap or pcapng", head[:4])
}
