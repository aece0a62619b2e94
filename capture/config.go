// Package capture turns packets into HTTP/1.x messages: it decodes link,
// network and TCP layers, reassembles TCP streams (out-of-order segments,
// retransmissions, overlaps, FIN/RST) and splits each direction of a stream
// into requests and responses, keeping their bytes exactly as they were on
// the wire. Packets come from pcap/pcapng files (ReadFile) or from a live
// AF_PACKET socket (Live); both feed an Assembler.
//
// Pairing: the side whose port is in Config.Ports is the server; requests go
// client → server, responses server → client, and responses are paired with
// requests in order per connection (pipelining included), checked against
// TCP sequence numbers: the ACK of a response's first segment says how much
// of the request stream the server had read, so a lost response or request
// does not shift the pairing of the ones after it. A paired
// response carries its request's ID and Latency = response time − request
// time. Interim 1xx responses (100 Continue, 103 Early Hints) are not emitted
// and not paired: they are counted as interim-responses. 101 Switching
// Protocols is a final response; after it, and after a 2xx answer to CONNECT,
// the connection is no longer parsed.
//
// Ordering: a message is complete only when its last byte is seen, so
// messages are emitted in completion order unless Config.OrderWindow holds
// them back and sorts them by capture time (the time of their first packet).
//
// Nothing is dropped silently: every loss is counted in Stats.
package capture

import (
	"net/netip"
	"time"
)

// Config says which traffic to capture and bounds the memory used.
// Zero values take the defaults named on each field.
type Config struct {
	// Ports are the server ports; the side of a connection whose port is
	// listed is the server. Empty: the side that received the SYN, or,
	// without a SYN, the side with the lower port.
	Ports []uint16
	// Hosts, when not empty, are the only server addresses captured.
	Hosts []netip.Addr
	// Responses emits responses as well as requests.
	Responses bool
	// MaxBody caps the body bytes kept per message (default 1 MiB); beyond
	// it the body is cut and Message.Truncated is set.
	MaxBody int64
	// MaxStreams caps the TCP connections tracked at once (default 100000);
	// new connections beyond it are counted as streams-dropped.
	MaxStreams int
	// MaxStreamBytes caps the bytes buffered per connection direction
	// (default MaxBody + 64 KiB); excess is counted as buffer-overflow.
	MaxStreamBytes int64
	// MaxBufferedBytes caps all bytes buffered, by the splitters and by TCP
	// reassembly (default 256 MiB); excess is counted.
	MaxBufferedBytes int64
	// IdleTimeout closes connections without packets for that long
	// (default 2 minutes, in capture time).
	IdleTimeout time.Duration
	// OrderWindow holds complete messages up to this long (in capture time)
	// to emit them sorted by capture time (default 1 s; negative: emit each
	// message as soon as it is complete). At most 65536 messages and 64 MiB
	// are held: beyond, the oldest are emitted early.
	OrderWindow time.Duration
	// Host is the capturing host's name, set on every message.
	Host string
	// NoDecap turns off decapsulation. By default, packets mirrored
	// through a tunnel are opened and the HTTP inside them captured: VXLAN
	// (UDP port 4789, what AWS VPC Traffic Mirroring delivers), Geneve
	// (UDP 6081), GRE, and ERSPAN types I, II and III over GRE; a live
	// capture's kernel filter then lets these packets through too.
	NoDecap bool
}

// LiveConfig configures a live AF_PACKET capture.
type LiveConfig struct {
	Config
	// Snaplen is the bytes captured per packet (default 262144).
	Snaplen int
	// RingSize is the kernel ring buffer size in bytes (default
	// DefaultRingSize).
	RingSize int64
	// Promiscuous puts the interface in promiscuous mode.
	Promiscuous bool
}

const (
	defaultMaxBody     = 1 << 20
	defaultMaxStreams  = 100_000
	defaultMaxBuffered = 256 << 20
	defaultIdle        = 2 * time.Minute
	defaultOrderWindow = time.Second
	maxPending         = 1024 // requests awaiting a response, per connection
)

func (c Config) withDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = defaultMaxBody
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = defaultMaxStreams
	}
	if c.MaxStreamBytes <= 0 {
		c.MaxStreamBytes = c.MaxBody + maxHeader
	}
	if c.MaxBufferedBytes <= 0 {
		c.MaxBufferedBytes = defaultMaxBuffered
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultIdle
	}
	if c.OrderWindow == 0 {
		c.OrderWindow = defaultOrderWindow
	}
	return c
}

// counter names one statistic.
type counter int

const (
	cPackets counter = iota
	cBytes
	cDecodeErrors
	cIgnored
	cFragments
	cStreams
	cStreamsActive
	cStreamsDropped
	cRequests
	cResponses
	cUnparsable
	cIncomplete
	cTruncated
	cUnpaired
	cInterim
	cGaps
	cBufferOverflow
	cPendingOverflow
	cUpgraded
	cKernelDrops
	cHeaderTooLong
	cUnanswered
	cBadContentLength
	cBadTransferEncoding
	cBadHeader
	cLatePackets
	cBogusRST
	cDecapsulated
	cFileCutShort
	cHoles
	cSnaplenCut
	cFragmentsIncomplete
	cBufferCut
	nCounters
)

// DefaultRingSize is the kernel ring's size when Config.RingSize is 0, as
// the scenario language's default.
const DefaultRingSize = 64 << 20

var counterNames = [nCounters]string{
	cPackets:         "packets",
	cBytes:           "bytes",
	cDecodeErrors:    "decode-errors",
	cIgnored:         "packets-ignored",
	cFragments:       "ip-fragments",
	cStreams:         "streams",
	cStreamsActive:   "streams-active",
	cStreamsDropped:  "streams-dropped",
	cRequests:        "requests",
	cResponses:       "responses",
	cUnparsable:      "unparsable",
	cIncomplete:      "incomplete",
	cTruncated:       "truncated",
	cUnpaired:        "unpaired-responses",
	cInterim:         "interim-responses",
	cGaps:            "gaps",
	cBufferOverflow:  "buffer-overflow",
	cPendingOverflow: "pending-overflow",
	cUpgraded:        "upgraded",
	cKernelDrops:     "kernel-drops",

	cUnanswered:          "unanswered-requests",
	cBadContentLength:    "refused-content-length",
	cBadTransferEncoding: "refused-transfer-encoding",
	cBadHeader:           "refused-header-line",
	cLatePackets:         "late-packets",
	cBogusRST:            "bogus-rst",
	cDecapsulated:        "decapsulated",
	cHeaderTooLong:       "header-too-long",
	cFileCutShort:        "file-cut-short",
	cHoles:               "holes",
	cSnaplenCut:          "snaplen-cut",
	cFragmentsIncomplete: "fragments-incomplete",
	cBufferCut:           "buffer-cut",
}

// Stats are the capture counters by name:
//
//	packets, bytes          packets and bytes read
//	decode-errors           packets whose layers could not be decoded, and
//	                        fragments that make no packet (they contradict
//	                        each other, or the packet's TCP checksum fails:
//	                        fragments of two packets with one Id)
//	file-cut-short          a pcap file that ends in the middle of a packet:
//	                        1, that packet is lost (the rest is kept)
//	snaplen-cut             packets of captured connections cut short by the
//	                        capture's snaplen (tcpdump -s): bytes of their
//	                        payload are not in the capture (a loss; the holes
//	                        they leave are counted as holes too)
//	packets-ignored         packets that are not TCP or not to/from Ports/Hosts
//	ip-fragments            IPv4 and IPv6 fragments read (those of TCP and of
//	                        tunnels are reassembled, and their packet decoded
//	                        once whole; others are ignored)
//	fragments-incomplete    packets of captured connections (their first
//	                        fragment says so) whose other fragments never all
//	                        came: dropped after 30 s (IPv4) or 60 s (IPv6) of
//	                        capture time, past 16 MiB held or at the end of
//	                        the capture (a loss; the holes they leave are
//	                        counted as holes too), unless TCP has sent the
//	                        first fragment's bytes again since (the network
//	                        lost a fragment; the capture lost nothing)
//	streams                 TCP connections seen
//	streams-active          TCP connections tracked now
//	streams-dropped         connections not tracked because of MaxStreams
//	requests, responses     messages emitted
//	unparsable              runs of bytes that are not HTTP/1.x (skipped)
//	refused-content-length  of which: messages with two different or malformed
//	                        Content-Lengths (framing them would desync)
//	refused-transfer-encoding of which: requests with a transfer coding other
//	                        than chunked
//	refused-header-line     of which: header blocks with a line that is not a field
//	incomplete              messages cut by the end of their stream, a gap or the
//	                        start of the capture; those whose start was seen are
//	                        emitted as a truncated prefix when their framing is
//	                        known (a hole inside a body of known length, a
//	                        response to close cut by a RST, a response whose
//	                        head is whole cut by the end of its stream or of
//	                        the capture)
//	truncated               messages whose body was cut at a limit
//	unpaired-responses      responses without a request
//	unanswered-requests     requests left without a response (their response
//	                        was lost, or the connection ended first)
//	interim-responses       1xx responses other than 101 (not emitted)
//	gaps                    holes in a TCP stream (lost or unbuffered bytes),
//	                        and data of a connection whose start was not seen
//	holes                   of which: holes after the stream's start was
//	                        seen: bytes that were on the wire and are not in
//	                        the capture (a loss)
//	buffer-overflow         messages cut by MaxStreamBytes/MaxBufferedBytes,
//	                        and IP fragments dropped past 16 MiB held
//	buffer-cut              of them, messages whose body was cut there: body
//	                        bytes that were on the wire are not in the
//	                        capture (a loss, unlike a cut at MaxBody)
//	pending-overflow        requests forgotten because too many awaited answers
//	upgraded                connections no longer HTTP (101, CONNECT)
//	kernel-drops            packets the kernel dropped (live capture)
//	header-too-long         messages abandoned because their header block
//	                        passed 64 KiB (not recorded; not counted as unparsable)
//	late-packets            packets of a connection already closed (data
//	                        retransmitted after both FINs), ignored
//	bogus-rst               RSTs with a bad checksum or outside the window, ignored
//	decapsulated            packets taken out of VXLAN, Geneve or GRE (ERSPAN)
type Stats map[string]int64
