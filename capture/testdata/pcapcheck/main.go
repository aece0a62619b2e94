// Command pcapcheck compares what replayctl's capture finds in pcap files
// with what tshark finds, tshark being the reference: the requests and
// responses counted, the request each response is paired with
// (http.request_in), and each message's capture time against the time of
// its first packet (the first frame of tshark's reassembled segments). It
// is run by hand on captures that are not part of the project:
//
//	go run ./capture/testdata/pcapcheck [-decode-as tcp.port==1234,http] FILE...
//
// It prints one line per file, and with -v each disagreement. tshark's
// messages are taken over TCP only, without retransmissions (which tshark
// dissects again) and without interim 1xx responses (counted apart by
// replayctl, not emitted).
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/message"
)

// tmsg is one HTTP message as tshark sees it.
type tmsg struct {
	frame      int
	resp       bool
	sport      uint16
	dport      uint16
	first      float64 // epoch seconds of its first packet
	requestIn  int     // responses: frame of the request
	ours       *message.Message
	ourMatched bool
}

func main() {
	var decodeAs multi
	flag.Var(&decodeAs, "decode-as", "tshark -d option (repeatable)")
	verbose := flag.Bool("v", false, "print each disagreement")
	flag.Parse()
	fmt.Printf("%-48s %12s %12s %14s %14s %s\n", "file", "tshark q/r", "ours q/r", "paired same", "max time err", "our counters")
	for _, f := range flag.Args() {
		if err := check(f, decodeAs, *verbose); err != nil {
			log.Printf("%s: %v", f, err)
		}
	}
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, " ") }
func (m *multi) Set(s string) error { *m = append(*m, s); return nil }

func tshark(args ...string) ([]string, error) {
	cmd := exec.Command("tshark", args...)
	cmd.Stderr = nil
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		// A file cut short makes tshark fail after printing what it read.
		return nil, fmt.Errorf("tshark %v: %w", args, err)
	}
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), nil
}

func check(path string, decodeAs []string, verbose bool) error {
	var da []string
	for _, d := range decodeAs {
		da = append(da, "-d", d)
	}
	times := map[int]float64{}
	lines, err := tshark(append([]string{"-r", path, "-T", "fields", "-e", "frame.number", "-e", "frame.time_epoch"}, da...)...)
	if err != nil {
		return err
	}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 2 {
			continue
		}
		n, _ := strconv.Atoi(f[0])
		t, _ := strconv.ParseFloat(f[1], 64)
		times[n] = t
	}
	args := append([]string{"-r", path, "-Y", "tcp && (http.request || http.response) && !tcp.analysis.retransmission", "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "frame.number", "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "http.request.method", "-e", "http.response.code",
		"-e", "http.request_in", "-e", "tcp.segment"}, da...)
	lines, err = tshark(args...)
	if err != nil {
		return err
	}
	var msgs []*tmsg
	ports := map[uint16]bool{}
	for _, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) < 7 {
			continue
		}
		frame, _ := strconv.Atoi(f[0])
		sp, _ := strconv.Atoi(f[1])
		dp, _ := strconv.Atoi(f[2])
		first := times[frame]
		if f[6] != "" {
			for _, s := range strings.Split(f[6], ",") {
				n, _ := strconv.Atoi(s)
				first = math.Min(first, times[n])
			}
		}
		for range splitNonEmpty(f[3]) {
			msgs = append(msgs, &tmsg{frame: frame, sport: uint16(sp), dport: uint16(dp), first: first})
			ports[uint16(dp)] = true
		}
		reqIn := splitNonEmpty(f[5])
		for i, code := range splitNonEmpty(f[4]) {
			if c, _ := strconv.Atoi(code); c >= 100 && c < 200 && c != 101 {
				// Interim responses are counted apart, not emitted.
				continue
			}
			m := &tmsg{frame: frame, resp: true, sport: uint16(sp), dport: uint16(dp), first: first, requestIn: -1}
			if i < len(reqIn) {
				m.requestIn, _ = strconv.Atoi(reqIn[i])
			}
			msgs = append(msgs, m)
		}
	}
	var cfg capture.Config
	for p := range ports {
		cfg.Ports = append(cfg.Ports, p)
	}
	slices.Sort(cfg.Ports)
	cfg.Responses = true
	var ours []*message.Message
	st, err := capture.ReadFile(context.Background(), path, cfg, func(m *message.Message) error {
		ours = append(ours, m)
		return nil
	})
	if err != nil && !strings.Contains(err.Error(), "unexpected EOF") {
		return err
	}
	// Match each tshark message with ours: same kind and ports, the
	// nearest capture time among those not taken.
	used := map[*message.Message]bool{}
	var tq, tr, maxErr float64
	for _, m := range msgs {
		if m.resp {
			tr++
		} else {
			tq++
		}
		var best *message.Message
		bestD := math.Inf(1)
		for _, o := range ours {
			if used[o] || (o.Kind == message.Response) != m.resp || o.Src.Port() != m.sport || o.Dst.Port() != m.dport {
				continue
			}
			d := math.Abs(float64(o.Time)/1e9 - m.first)
			if d < bestD {
				best, bestD = o, d
			}
		}
		if best != nil && bestD < 5 {
			used[best] = true
			m.ours = best
			maxErr = math.Max(maxErr, bestD)
		} else if verbose {
			fmt.Printf("  %s: tshark's %s in frame %d not found in ours\n", filepath.Base(path), kind(m.resp), m.frame)
		}
	}
	byFrame := map[int]*tmsg{}
	for _, m := range msgs {
		if !m.resp {
			if _, ok := byFrame[m.frame]; !ok {
				byFrame[m.frame] = m
			}
		}
	}
	same, pairs := 0, 0
	for _, m := range msgs {
		if !m.resp || m.requestIn <= 0 {
			continue
		}
		pairs++
		q := byFrame[m.requestIn]
		if q != nil && q.ours != nil && m.ours != nil && q.ours.ID == m.ours.ID {
			same++
		} else if verbose {
			fmt.Printf("  %s: response in frame %d (request in %d) paired differently\n", filepath.Base(path), m.frame, m.requestIn)
		}
	}
	var oq, or int
	for _, o := range ours {
		if o.Kind == message.Response {
			or++
		} else {
			oq++
		}
		if verbose && !used[o] {
			fmt.Printf("  %s: our %v at %s not in tshark's: %q\n", filepath.Base(path), o.Kind, time.Unix(0, o.Time).UTC().Format(time.RFC3339Nano), firstLine(o.Raw))
		}
	}
	var c []string
	for _, k := range []string{"gaps", "holes", "snaplen-cut", "fragments-incomplete", "file-cut-short", "incomplete", "truncated", "unparsable", "unpaired-responses", "unanswered-requests", "interim-responses", "upgraded", "late-packets", "bogus-rst"} {
		if st[k] != 0 {
			c = append(c, fmt.Sprintf("%s=%d", k, st[k]))
		}
	}
	fmt.Printf("%-48s %12s %12s %14s %14s %s\n", filepath.Base(path), fmt.Sprintf("%.0f/%.0f", tq, tr), fmt.Sprintf("%d/%d", oq, or),
		fmt.Sprintf("%d/%d", same, pairs), fmt.Sprintf("%.1f µs", maxErr*1e6), strings.Join(c, " "))
	return nil
}

func kind(resp bool) string {
	if resp {
		return "response"
	}
	return "request"
}

func splitNonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i]
	}
	if len(b) > 60 {
		b = b[:60]
	}
	return string(b)
}

func init() { log.SetFlags(0); log.SetOutput(os.Stderr) }
