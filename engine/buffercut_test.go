package engine_test

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestBufferCutIsLoss records two uploads of 900 KB whose packets alternate
// (two clients sending at once) with max-buffered: 1MiB: the capture cannot
// hold both bodies, cuts them, and that is a loss (buffer-cut), said with
// its cause, that fails the job unless on-loss says warn. It was only the
// counter buffer-overflow, the run said done and exited 0, and its cut
// line blamed max-body (the walk: 18 of 50 uploads of 7 MB cut at 256 MiB).
func TestBufferCutIsLoss(t *testing.T) {
	body := strings.Repeat("0123456789", 90_000)
	upload := []req{{0, fmt.Sprintf("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s", len(body), body)}}
	for _, onLoss := range []string{"", "warn"} {
		t.Run("on-loss="+onLoss, func(t *testing.T) {
			dir := t.TempDir()
			a, b := filepath.Join(dir, "a.pcap"), filepath.Join(dir, "b.pcap")
			writePcap(t, a, netip.MustParseAddrPort("127.0.0.1:8080"), upload)
			writePcap(t, b, netip.MustParseAddrPort("127.0.0.2:8080"), upload)
			interleavePcaps(t, filepath.Join(dir, "in.pcap"), a, b)
			rep := recordLossy(t, dir, `{pcap: {path: in.pcap, ports: [8080], max-buffered: 1MiB}}`, onLoss,
				"buffer-cut 2 messages (recorded with their body cut because the capture's buffers were full",
				"the summary does not say the capture's buffers cut the bodies")
			if number(t, rep, "lost", "buffer-cut") != 2 || number(t, rep, "requests") != 2 {
				t.Errorf("report lost %v, requests %v", field(t, rep, "lost"), field(t, rep, "requests"))
			}
		})
	}
}

// interleavePcaps writes to dst the packets of the Ethernet pcaps a and b
// alternately, one of a then one of b, 10 µs apart from t0.
func interleavePcaps(t *testing.T, dst, a, b string) {
	t.Helper()
	read := func(path string) [][]byte {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rd, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		var pkts [][]byte
		for {
			data, _, err := rd.ReadPacketData()
			if err != nil {
				return pkts
			}
			pkts = append(pkts, data)
		}
	}
	pa, pb := read(a), read(b)
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	at := t0
	for i := range max(len(pa), len(pb)) {
		for _, pkts := range [][][]byte{pa, pb} {
			if i < len(pkts) {
				if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: at, CaptureLength: len(pkts[i]), Length: len(pkts[i])}, pkts[i]); err != nil {
					t.Fatal(err)
				}
				at = at.Add(10 * time.Microsecond)
			}
		}
	}
}
