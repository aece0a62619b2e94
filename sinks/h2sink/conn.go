package h2sink

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/stats"
)

// The settings this client advertises. The receive windows are x/net's
// Transport's (4 MiB a stream, 1 GiB the connection), given back once half
// is used.
const (
	streamWindow  = 4 << 20
	connWindow    = 1 << 30
	maxReadFrame  = 1 << 20
	maxHeaderList = 10 << 20
	// initialMaxStreams caps the streams opened before the server's
	// SETTINGS say how many it takes (as x/net does).
	initialMaxStreams = 100
	// noMaxStreams stands for no SETTINGS_MAX_CONCURRENT_STREAMS (no
	// limit); it caps the server's value too.
	noMaxStreams = 1 << 20
	// maxStreamID is the last client stream ID (RFC 9113 §5.1.1).
	maxStreamID = 1<<31 - 1
	// maxWindow is the largest flow-control window (RFC 9113 §6.9.1).
	maxWindow = 1<<31 - 1
	// maxInformational caps the informational (1xx) answers a stream
	// takes before its final one, as net/http's HTTP/1 client did
	// (max1xxResponses, 5): past it, the stream fails (bad-response) and
	// is reset, where a server sending 103 Early Hints without end held it
	// until its timeout.
	maxInformational = 5
	// resetMemory is how many of the streams it reset last a connection
	// remembers: the frames the server sent on them before it got the
	// RST_STREAM are ignored (RFC 9113 §5.1). A frame on a stream reset
	// before those is taken as one on a stream closed long ago.
	resetMemory = 256
)

// recvWindows are the receive windows a new connection advertises: a
// stream's and the connection's (at least 65535, its initial size). Only
// tests change them (a server could overrun windows this size only with a
// frame larger than the client reads, as they are given back once half is
// used).
var recvWindows = struct{ stream, conn int }{streamWindow, connWindow}

// errConnLost is wrapped by the error of a stream whose connection ended
// under it (class reset).
var errConnLost = errors.New("h2 sink: connection lost")

// errNotUsable is the error of a stream that could not be opened: the
// connection was closing or had no stream ID left. Nothing was sent, so
// the request may go on another connection.
var errNotUsable = errors.New("h2 sink: connection not usable")

// protocolError is a connection error the client found in the server's
// frames: the reader sends it in a GOAWAY (its code, the reason as debug
// data) and ends the connection; its streams fail with it (class reset).
type protocolError struct {
	code   http2.ErrCode
	reason string
}

func (e *protocolError) Error() string {
	return fmt.Sprintf("connection error %v: %s", e.code, e.reason)
}

// goAwayError is the error of a stream the server's GOAWAY ended: not
// processed (retryable) when its ID is above the GOAWAY's last stream ID.
type goAwayError struct {
	code      http2.ErrCode
	debug     string
	processed bool
}

func (e *goAwayError) Error() string {
	s := fmt.Sprintf("server sent GOAWAY (%v)", e.code)
	if e.debug != "" {
		s += fmt.Sprintf(", debug %q", e.debug)
	}
	if !e.processed {
		s += ": the stream was not processed"
	}
	return s
}

// response is a stream's answer: the final header section in wire order,
// the body, and the trailers.
type response struct {
	status  int
	header  []h2text.Field
	body    []byte // the content kept: all of it, or a prefix (outRequest.keepBody)
	size    int64  // the content's length, kept or not
	trailer []h2text.Field
}

// stream is one request/response exchange on a clientConn.
type stream struct {
	id         uint32
	gotHeaders bool
	sentEnd    bool  // the frame that ends the request is written (or being written, under wmu)
	infos      uint8 // informational (1xx) answers received, up to maxInformational+1
	sendWindow int64 // the server's window for this stream's DATA
	resp       response
	keep       int           // content bytes kept at most (outRequest.keepBody; -1 none, 0 all)
	unacked    int           // DATA bytes received and not yet given back (padding included)
	done       chan struct{} // closed when the response ended or failed
	err        error
}

// clientConn is one HTTP/2 connection of the sender's own client, which
// replaces x/net's Transport on the send path: header fields go out in the
// order recorded, no goroutine is started per stream, and the answer's
// fields come back in the order the server sent them. x/net's Framer and
// HPACK do the framing and the header compression.
//
// One reader goroutine reads every frame; streams write their frames under
// wmu. Lock order: wmu, then mu.
type clientConn struct {
	bc          *batchConn
	fr          *http2.Framer
	pingTimeout time.Duration // how long a health check's PING may wait

	wmu  sync.Mutex // the framer's write side, henc and hbuf
	henc *hpack.Encoder
	hbuf bytes.Buffer

	mu            sync.Mutex
	streams       map[uint32]*stream
	nextID        uint32
	reserved      int   // streams taken by tryReserve, not yet released
	unopened      int   // reserved streams roundTrip has not given an ID yet
	maxStreams    int   // the server's SETTINGS_MAX_CONCURRENT_STREAMS
	initialWindow int64 // the server's SETTINGS_INITIAL_WINDOW_SIZE
	sendWindow    int64 // the server's connection window for our DATA
	maxFrame      int   // the server's SETTINGS_MAX_FRAME_SIZE
	unacked       int   // connection DATA bytes received, not given back
	recvStream    int   // the receive window of a stream (recvWindows)
	recvConn      int   // the connection's receive window (recvWindows)
	flow          chan struct{}
	goAway        *goAwayError  // the last GOAWAY received, nil before
	closing       bool          // GOAWAY received or Close called
	err           error         // set when the connection ended
	ready         chan struct{} // closed at the server's first SETTINGS, or when the connection ended
	pinging       bool          // a health check's PING is unanswered
	pings         uint64        // health check PINGs sent
	settings      bool          // the server's first SETTINGS came

	// resets are the streams the client reset last (a ring, 0 unused:
	// notOpen), nextReset where the next one goes. Under mu.
	resets    [resetMemory]uint32
	nextReset int

	// beforeTrailers, when set (by a test), runs before a stream's
	// trailers are sent.
	beforeTrailers func(*stream)
}

// newClientConn starts HTTP/2 on bc: it writes the preface, the settings
// and the connection window, and starts the reader. It does not wait for
// the server's settings. pingTimeout is how long the PING of a health
// check (healthCheck) may go unanswered.
func newClientConn(bc *batchConn, pingTimeout time.Duration) (*clientConn, error) {
	cc := &clientConn{
		bc:            bc,
		pingTimeout:   pingTimeout,
		streams:       map[uint32]*stream{},
		nextID:        1,
		maxStreams:    initialMaxStreams,
		initialWindow: 65535,
		sendWindow:    65535,
		maxFrame:      16384,
		recvStream:    recvWindows.stream,
		recvConn:      recvWindows.conn,
		flow:          make(chan struct{}),
		ready:         make(chan struct{}),
	}
	cc.fr = http2.NewFramer(bc, bufio.NewReaderSize(bc, 64<<10))
	cc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.fr.MaxHeaderListSize = maxHeaderList
	cc.fr.SetMaxReadFrameSize(maxReadFrame)
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	if _, err := bc.Write([]byte(http2.ClientPreface)); err != nil {
		return nil, err
	}
	if err := cc.fr.WriteSettings(
		http2.Setting{ID: http2.SettingEnablePush, Val: 0},
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(cc.recvStream)},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: maxReadFrame},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
	); err != nil {
		return nil, err
	}
	if cc.recvConn > 65535 {
		if err := cc.fr.WriteWindowUpdate(0, uint32(cc.recvConn-65535)); err != nil {
			return nil, err
		}
	}
	go cc.read()
	return cc, nil
}

// usable reports whether one more stream could be opened: the connection
// is not closing, and a stream ID is left for it once the streams reserved
// and not yet opened have theirs.
func (cc *clientConn) usable() bool {
	return !cc.closing && cc.err == nil && int64(cc.nextID)+2*int64(cc.unopened) <= maxStreamID
}

// tryReserve takes a stream slot, false when the connection has none.
func (cc *clientConn) tryReserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if !cc.usable() || cc.reserved >= cc.maxStreams {
		return false
	}
	cc.reserved++
	cc.unopened++
	return true
}

// reserveNew takes the first slot of a connection just opened, whether
// or not it is still usable (roundTrip then says why not).
func (cc *clientConn) reserveNew() {
	cc.mu.Lock()
	cc.reserved++
	cc.unopened++
	cc.mu.Unlock()
}

// release gives back a slot tryReserve or reserveNew took.
func (cc *clientConn) release() {
	cc.mu.Lock()
	cc.reserved--
	cc.mu.Unlock()
}

// idle reports whether the connection is done with: no stream on it, and
// none can be opened (unusable, or the server's
// SETTINGS_MAX_CONCURRENT_STREAMS is 0).
func (cc *clientConn) idle() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.reserved == 0 && (!cc.usable() || cc.settings && cc.maxStreams == 0)
}

// close sends GOAWAY and closes the connection; streams still open fail.
// It takes at most about closeDrain: writes stop waiting for room in the
// batchConn first (they fail), as a write waiting under wmu for a server
// that reads nothing would hold the GOAWAY, and the close, without end.
func (cc *clientConn) close() {
	cc.mu.Lock()
	first := !cc.closing
	cc.closing = true
	cc.mu.Unlock()
	if first {
		cc.bc.closeSoon()
		cc.wmu.Lock()
		_ = cc.fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		cc.wmu.Unlock()
	}
	_ = cc.bc.Close()
}

// outRequest is a request as it goes out: pr with the authority and
// scheme it is sent with.
type outRequest struct {
	pr        *h2text.Request
	authority string
	scheme    string
	hasLength bool // a content-length field was recorded
	// keepBody, when above 0, is how many bytes of the answer's content
	// are kept (a prefix; the rest is only counted, in response.size);
	// discardBody keeps none. Otherwise all of it is kept.
	keepBody    int
	discardBody bool
}

// roundTrip sends req as a new stream (its slot reserved) and waits for
// the answer. wrote reports whether its HEADERS went on the connection.
// When ctx ends before roundTrip returns, the connection is checked
// (healthCheck): roundTrip may be blocked writing to a connection whose
// server stopped reading, and only closing the connection ends that
// write.
func (cc *clientConn) roundTrip(ctx context.Context, req *outRequest) (resp *response, wrote bool, err error) {
	pr := req.pr
	if err := checkFields(pr); err != nil {
		cc.mu.Lock()
		cc.unopened-- // never
		cc.mu.Unlock()
		return nil, false, err
	}
	endAfterHeaders := len(pr.Body) == 0 && len(pr.Trailer) == 0
	st := &stream{done: make(chan struct{}), keep: req.keepBody}
	if req.discardBody {
		st.keep = -1
	}
	stop := context.AfterFunc(ctx, cc.healthCheck)
	defer func() {
		if stop() && ctx.Err() != nil {
			cc.healthCheck() // ctx ended as roundTrip returned: stop won the race
		}
	}()

	cc.wmu.Lock()
	cc.mu.Lock()
	cc.unopened-- // opened now, or never
	if err := ctx.Err(); err != nil {
		// Timed out waiting for the write lock: not sent.
		cc.mu.Unlock()
		cc.wmu.Unlock()
		return nil, false, err
	}
	if !cc.usable() || len(cc.streams) >= cc.maxStreams {
		// At the limit: the server lowered its
		// SETTINGS_MAX_CONCURRENT_STREAMS after this stream was
		// reserved. It goes on another connection.
		err := cc.unusableErr()
		cc.mu.Unlock()
		cc.wmu.Unlock()
		return nil, false, err
	}
	st.id = cc.nextID
	cc.nextID += 2
	st.sendWindow = cc.initialWindow
	st.sentEnd = endAfterHeaders
	cc.streams[st.id] = st
	maxFrame := cc.maxFrame
	cc.mu.Unlock()
	err = cc.writeHeaderBlock(st.id, cc.encodeHeaders(req), endAfterHeaders, maxFrame)
	cc.wmu.Unlock()
	if err != nil {
		cc.forget(st)
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, false, ctxErr // the health check closed the connection under the write
		}
		return nil, false, fmt.Errorf("%w: %w", errNotUsable, err)
	}
	wrote = true

	if !endAfterHeaders {
		if err := cc.writeBody(ctx, st, pr); err != nil {
			cc.cancel(st)
			if ctxErr := ctx.Err(); ctxErr != nil {
				err = ctxErr
			}
			return nil, wrote, err
		}
	}
	select {
	case <-st.done:
	case <-ctx.Done():
		cc.cancel(st)
		return nil, wrote, ctx.Err()
	}
	if st.err != nil {
		return nil, wrote, st.err
	}
	return &st.resp, wrote, nil
}

// unusableErr is why no stream can be opened now.
func (cc *clientConn) unusableErr() error {
	switch {
	case cc.err != nil:
		return fmt.Errorf("%w: %w", errNotUsable, cc.err)
	case cc.goAway != nil:
		return &goAwayError{code: cc.goAway.code, debug: cc.goAway.debug}
	case cc.maxStreams == 0:
		return fmt.Errorf("%w: the server allows no stream (SETTINGS_MAX_CONCURRENT_STREAMS 0)", errNotUsable)
	}
	return errNotUsable
}

// invalidFieldError is a header field that may not go out in HTTP/2.
type invalidFieldError struct{ name string }

func (e *invalidFieldError) Error() string {
	return fmt.Sprintf("invalid HTTP/2 header field %q", e.name)
}
func (e *invalidFieldError) ErrClass() string { return "invalid-request" }

// checkFields returns an invalidFieldError for a header or trailer field
// of pr that may not go out in HTTP/2. It runs before any field is
// encoded: a header block encoded and then not sent would leave entries
// in the HPACK encoder's dynamic table that the server never got, and the
// connection's next header blocks would refer to them.
func checkFields(pr *h2text.Request) error {
	for _, f := range pr.Header {
		if f.Name == "content-length" || f.Name == "trailer" && len(pr.Trailer) > 0 {
			continue // not sent as recorded
		}
		if !validField(f) {
			return &invalidFieldError{f.Name}
		}
	}
	for _, f := range pr.Trailer {
		if !validField(f) {
			return &invalidFieldError{f.Name}
		}
	}
	return nil
}

func validField(f h2text.Field) bool {
	return httpguts.ValidHeaderFieldName(f.Name) && strings.ToLower(f.Name) == f.Name && httpguts.ValidHeaderFieldValue(f.Value)
}

// encodeHeaders HPACK-encodes req's header section into hbuf (under wmu)
// and returns it: the pseudo-header fields, then the recorded fields in
// their order. With trailers, a trailer field declares their names (the
// recorded one could name fields left out). checkFields has passed.
func (cc *clientConn) encodeHeaders(req *outRequest) []byte {
	pr := req.pr
	cc.hbuf.Reset()
	write := func(name, value string) { _ = cc.henc.WriteField(hpack.HeaderField{Name: name, Value: value}) }
	write(":method", pr.Method)
	if pr.Method != "CONNECT" {
		write(":scheme", req.scheme)
	}
	write(":authority", req.authority)
	if pr.Method != "CONNECT" {
		write(":path", requestPath(pr))
	}
	// The body's length goes where the first recorded content-length
	// was, and the trailer names where the recorded trailer field was
	// (after the others when none was recorded): the fields keep their
	// recorded order.
	var trailerNames string
	if len(pr.Trailer) > 0 {
		var names []string
		for _, f := range pr.Trailer {
			if !slices.Contains(names, f.Name) {
				names = append(names, f.Name)
			}
		}
		trailerNames = strings.Join(names, ",")
	}
	wroteLength, wroteTrailer := false, false
	for _, f := range pr.Header {
		switch {
		case f.Name == "content-length":
			if !wroteLength {
				write("content-length", strconv.Itoa(len(pr.Body)))
				wroteLength = true
			}
		case f.Name == "trailer" && len(pr.Trailer) > 0:
			if !wroteTrailer {
				write("trailer", trailerNames)
				wroteTrailer = true
			}
		default:
			write(f.Name, f.Value)
		}
	}
	if req.hasLength && !wroteLength {
		write("content-length", strconv.Itoa(len(pr.Body)))
	}
	if len(pr.Trailer) > 0 && !wroteTrailer {
		write("trailer", trailerNames)
	}
	return cc.hbuf.Bytes()
}

// requestPath is the :path of pr: asterisk-form only for OPTIONS (RFC
// 9113 §8.3.1), otherwise a path starting with "/".
func requestPath(pr *h2text.Request) string {
	switch {
	case pr.Path == "*" && pr.Method == "OPTIONS":
		return "*"
	case pr.Path == "*" || !strings.HasPrefix(pr.Path, "/"):
		return "/" + strings.TrimPrefix(pr.Path, "/")
	}
	return pr.Path
}

// writeHeaderBlock writes a header block as HEADERS and CONTINUATION
// frames of at most maxFrame bytes (under wmu).
func (cc *clientConn) writeHeaderBlock(id uint32, block []byte, endStream bool, maxFrame int) error {
	first := block[:min(len(block), maxFrame)]
	rest := block[len(first):]
	if err := cc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first, EndStream: endStream, EndHeaders: len(rest) == 0}); err != nil {
		return err
	}
	for len(rest) > 0 {
		chunk := rest[:min(len(rest), maxFrame)]
		rest = rest[len(chunk):]
		if err := cc.fr.WriteContinuation(id, len(rest) == 0, chunk); err != nil {
			return err
		}
	}
	return nil
}

// writeBody writes pr's body as DATA frames within the server's flow
// control windows, then its trailers; the last frame ends the stream. It
// stops once the stream ended (the answer came first, or a reset): each
// frame is decided and written under wmu, after a look under mu at
// whether the stream is still open, so that no frame follows the answer
// that ended the stream, nor the RST_STREAM that ends its sending (RFC
// 9113 §8.1).
func (cc *clientConn) writeBody(ctx context.Context, st *stream, pr *h2text.Request) error {
	body := pr.Body
	noTrailers := len(pr.Trailer) == 0
	for len(body) > 0 {
		if err := ctx.Err(); err != nil {
			return err // past its timeout: the rest is not sent
		}
		cc.wmu.Lock()
		n, wait, err := cc.takeWindow(st, len(body), noTrailers)
		if err != nil || n <= 0 {
			cc.wmu.Unlock()
			if err != nil || n < 0 {
				return err // n < 0: the stream ended, its answer stands
			}
			select {
			case <-wait:
			case <-st.done:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		chunk := body[:n]
		body = body[n:]
		err = cc.fr.WriteData(st.id, len(body) == 0 && noTrailers, chunk)
		cc.wmu.Unlock()
		if err != nil {
			return fmt.Errorf("%w: %w", errConnLost, err)
		}
	}
	if noTrailers {
		return nil
	}
	if cc.beforeTrailers != nil {
		cc.beforeTrailers(st)
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	cc.mu.Lock()
	select {
	case <-st.done:
		// The answer came, or a reset: the trailers are not encoded
		// (the HPACK encoder's table stays as the server's).
		cc.mu.Unlock()
		return nil
	default:
	}
	st.sentEnd = true
	maxFrame := cc.maxFrame
	cc.mu.Unlock()
	cc.hbuf.Reset()
	for _, f := range pr.Trailer {
		_ = cc.henc.WriteField(hpack.HeaderField{Name: f.Name, Value: f.Value})
	}
	if err := cc.writeHeaderBlock(st.id, cc.hbuf.Bytes(), true, maxFrame); err != nil {
		return fmt.Errorf("%w: %w", errConnLost, err)
	}
	return nil
}

// takeWindow takes up to want bytes of send window for st (under wmu,
// the frame written before wmu is released): n > 0 bytes taken; n == 0
// none now, wait until wait is closed; n < 0 the stream has ended. When
// n is want and last is set, the frame ends the stream (st.sentEnd). err:
// the connection failed.
func (cc *clientConn) takeWindow(st *stream, want int, last bool) (n int, wait <-chan struct{}, err error) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	select {
	case <-st.done:
		return -1, nil, st.err
	default:
	}
	if cc.err != nil {
		return 0, nil, fmt.Errorf("%w: %w", errConnLost, cc.err)
	}
	n = int(min(int64(want), int64(cc.maxFrame), cc.sendWindow, st.sendWindow))
	if n <= 0 || !cc.settings {
		// Before its SETTINGS, the server's windows are not known: Go's
		// server, for one, holds a client to a smaller window it
		// announces before the client could read it.
		return 0, cc.flow, nil
	}
	cc.sendWindow -= int64(n)
	st.sendWindow -= int64(n)
	st.sentEnd = last && n == want
	return n, nil, nil
}

// forget drops a stream that never went out.
func (cc *clientConn) forget(st *stream) {
	cc.mu.Lock()
	delete(cc.streams, st.id)
	cc.mu.Unlock()
}

// cancel ends st from our side: RST_STREAM CANCEL unless the stream has
// ended both ways.
func (cc *clientConn) cancel(st *stream) {
	cc.mu.Lock()
	_, open := cc.streams[st.id]
	delete(cc.streams, st.id)
	usable := cc.err == nil
	if open && usable {
		cc.noteReset(st.id) // before the reader could see a frame of it
	}
	cc.mu.Unlock()
	if open && usable {
		cc.wmu.Lock()
		_ = cc.fr.WriteRSTStream(st.id, http2.ErrCodeCancel)
		cc.wmu.Unlock()
	}
}

// finish ends st with err (nil: its answer is whole). Under mu.
func (cc *clientConn) finish(st *stream, err error) {
	delete(cc.streams, st.id)
	st.err = err
	close(st.done)
}

// read reads frames until the connection ends, then fails the streams
// still open.
func (cc *clientConn) read() {
	var err error
	for {
		var f http2.Frame
		f, err = cc.fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed frame (a header section with a field
				// HTTP/2 forbids): that stream fails as a bad-response
				// (not as reset by the server) and is reset, the
				// connection goes on.
				cc.mu.Lock()
				st := cc.streams[se.StreamID]
				if st != nil {
					cc.finish(st, &classed{fmt.Errorf("malformed response: %v", se), stats.ClassBadResponse})
				}
				idle := st == nil && cc.neverOpened(se.StreamID)
				cc.mu.Unlock()
				if idle { // RFC 9113 §5.1
					err = &protocolError{http2.ErrCodeProtocol, fmt.Sprintf("the server sent a frame on stream %d, which the client never opened (%v)", se.StreamID, se)}
					break
				}
				cc.streamError(se)
				continue
			}
			err = cc.readError(err)
			break
		}
		if err = cc.handle(f); err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				cc.streamError(se) // a malformed answer
				continue
			}
			break
		}
	}
	var pe *protocolError
	var ce http2.ConnectionError
	switch {
	// An error of the server's: say which before closing (RFC 9113
	// §5.4.1), as x/net does; before the streams fail, so that it is
	// written before the pool closes the connection.
	case errors.As(err, &pe):
		cc.wmu.Lock()
		_ = cc.fr.WriteGoAway(0, pe.code, []byte(pe.reason))
		cc.wmu.Unlock()
	case errors.As(err, &ce):
		cc.wmu.Lock()
		_ = cc.fr.WriteGoAway(0, http2.ErrCode(ce), nil)
		cc.wmu.Unlock()
	}
	cc.mu.Lock()
	if cc.err == nil {
		cc.err = err
	}
	var fail error = fmt.Errorf("%w: %w", errConnLost, err)
	if cc.goAway != nil && cc.goAway.code != http2.ErrCodeNo {
		fail = &goAwayError{code: cc.goAway.code, debug: cc.goAway.debug, processed: true}
	}
	for _, st := range cc.streams {
		cc.finish(st, fail)
	}
	if !cc.settings {
		close(cc.ready)
	}
	close(cc.flow)
	cc.flow = make(chan struct{})
	cc.mu.Unlock()
	_ = cc.bc.Close()
}

// readError gives a connection error of the Framer its reason: a frame
// over the size the client allows is a FRAME_SIZE_ERROR (RFC 9113 §4.2),
// and a ConnectionError carries the Framer's detail (which frame, why),
// when it has one.
// Both then go to the server in the GOAWAY and to the failed requests.
func (cc *clientConn) readError(err error) error {
	if errors.Is(err, http2.ErrFrameTooLarge) {
		return &protocolError{http2.ErrCodeFrameSize, fmt.Sprintf("the server sent a frame over the %d bytes of SETTINGS_MAX_FRAME_SIZE", maxReadFrame)}
	}
	var ce http2.ConnectionError
	if errors.As(err, &ce) {
		if d := cc.fr.ErrorDetail(); d != nil {
			return &protocolError{http2.ErrCode(ce), d.Error()}
		}
		return &protocolError{http2.ErrCode(ce), "the server sent a frame HTTP/2 does not allow"}
	}
	return err
}

// streamError fails the stream of se (unless malformed failed it already)
// and resets it.
func (cc *clientConn) streamError(se http2.StreamError) {
	cc.mu.Lock()
	if st := cc.streams[se.StreamID]; st != nil {
		cc.finish(st, se)
	}
	cc.noteReset(se.StreamID)
	cc.mu.Unlock()
	cc.wmu.Lock()
	_ = cc.fr.WriteRSTStream(se.StreamID, se.Code)
	cc.wmu.Unlock()
}

// noteReset remembers that the client resets stream id. Under mu.
func (cc *clientConn) noteReset(id uint32) {
	cc.resets[cc.nextReset] = id
	cc.nextReset = (cc.nextReset + 1) % resetMemory
}

// neverOpened reports whether stream id is idle (RFC 9113 §5.1): one of
// the client's the client has not opened, or one of the server's, which
// it can open only by PUSH_PROMISE (push is off). Under mu.
func (cc *clientConn) neverOpened(id uint32) bool {
	return id%2 == 0 || id >= cc.nextID
}

// notOpen is what a DATA or HEADERS frame (what) on stream id, not open,
// is (RFC 9113 §5.1, §6.1). Under mu. On a stream never opened, a
// connection error PROTOCOL_ERROR. On a stream the client reset lately,
// nil: the frame is ignored (the server may have sent it before it got
// the RST_STREAM; DATA still counts against the connection's window). On
// any other closed stream (closed by END_STREAM or by the server's
// RST_STREAM: the client keeps no state to tell which), a stream error
// STREAM_CLOSED: the stream is reset, and its later frames are ignored.
func (cc *clientConn) notOpen(id uint32, what string) error {
	switch {
	case cc.neverOpened(id):
		return &protocolError{http2.ErrCodeProtocol, fmt.Sprintf("the server sent %s on stream %d, which the client never opened", what, id)}
	case slices.Contains(cc.resets[:], id):
		return nil
	}
	return http2.StreamError{StreamID: id, Code: http2.ErrCodeStreamClosed, Cause: fmt.Errorf("%s on closed stream %d", what, id)}
}

// malformed fails st with a bad-response error for a malformed answer
// (RFC 9113 §8.1.1). Unless the stream is closed both ways (the frame
// ended it and the request was sent whole), it returns the stream error
// the reader resets the stream with: the server would otherwise keep it
// open, and count it against its SETTINGS_MAX_CONCURRENT_STREAMS, after
// the client let it go. Under mu.
func (cc *clientConn) malformed(st *stream, ended bool, err error) error {
	reset := !ended || !st.sentEnd
	cc.finish(st, &classed{err, stats.ClassBadResponse})
	if !reset {
		return nil
	}
	return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeProtocol, Cause: err}
}

// handle processes one frame; an error ends the connection.
func (cc *clientConn) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		return cc.onHeaders(f)
	case *http2.DataFrame:
		return cc.onData(f)
	case *http2.RSTStreamFrame:
		cc.mu.Lock()
		defer cc.mu.Unlock()
		if st := cc.streams[f.StreamID]; st != nil {
			cc.finish(st, http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode})
		} else if cc.neverOpened(f.StreamID) {
			// RFC 9113 §6.4. On a closed stream it is ignored (§5.1).
			return &protocolError{http2.ErrCodeProtocol, fmt.Sprintf("the server sent RST_STREAM on stream %d, which the client never opened", f.StreamID)}
		}
	case *http2.SettingsFrame:
		return cc.onSettings(f)
	case *http2.WindowUpdateFrame:
		return cc.onWindowUpdate(f)
	case *http2.PingFrame:
		if f.IsAck() {
			cc.mu.Lock()
			cc.pinging = false
			cc.mu.Unlock()
			return nil
		}
		cc.wmu.Lock()
		err := cc.fr.WritePing(true, f.Data)
		cc.wmu.Unlock()
		return err
	case *http2.GoAwayFrame:
		// Its fields are copied: the Framer reuses a frame once the next
		// one is read (and its accessors panic then).
		ga := &goAwayError{code: f.ErrCode, debug: string(f.DebugData())}
		cc.mu.Lock()
		cc.goAway = ga
		cc.closing = true
		for id, st := range cc.streams {
			if id > f.LastStreamID {
				cc.finish(st, &goAwayError{code: ga.code, debug: ga.debug})
			}
		}
		cc.mu.Unlock()
	case *http2.PushPromiseFrame:
		return &protocolError{http2.ErrCodeProtocol, "the server sent a PUSH_PROMISE, though the client's SETTINGS_ENABLE_PUSH is 0"}
	}
	return nil
}

// wakeWriters wakes the streams waiting for send window. Under mu.
func (cc *clientConn) wakeWriters() {
	close(cc.flow)
	cc.flow = make(chan struct{})
}

// onWindowUpdate grows a send window. A window taken past maxWindow is a
// FLOW_CONTROL_ERROR (RFC 9113 §6.9.1): of the connection for its window,
// of the stream (failed as bad-response and reset) for a stream's. An
// increment of 0 never comes here: x/net's Framer returns it as a
// PROTOCOL_ERROR (a stream error, or a connection error on stream 0).
func (cc *clientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	inc := int64(f.Increment)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if f.StreamID == 0 {
		if cc.sendWindow+inc > maxWindow {
			return &protocolError{http2.ErrCodeFlowControl, "WINDOW_UPDATE took the connection's send window past 2^31-1"}
		}
		cc.sendWindow += inc
	} else if st := cc.streams[f.StreamID]; st != nil {
		if st.sendWindow+inc > maxWindow {
			cc.finish(st, &classed{fmt.Errorf("flow-control error: the server's WINDOW_UPDATE took stream %d's send window past 2^31-1 (stream reset with FLOW_CONTROL_ERROR)", f.StreamID), stats.ClassBadResponse})
			return http2.StreamError{StreamID: f.StreamID, Code: http2.ErrCodeFlowControl}
		}
		st.sendWindow += inc
	} else if cc.neverOpened(f.StreamID) {
		// RFC 9113 §5.1. On a closed stream it is ignored.
		return &protocolError{http2.ErrCodeProtocol, fmt.Sprintf("the server sent WINDOW_UPDATE on stream %d, which the client never opened", f.StreamID)}
	}
	cc.wakeWriters()
	return nil
}

func (cc *clientConn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	var setTable bool
	cc.mu.Lock()
	if !cc.settings {
		cc.settings = true
		close(cc.ready)
		if _, ok := f.Value(http2.SettingMaxConcurrentStreams); !ok {
			// Not limited (RFC 9113 §6.5.2): initialMaxStreams held
			// only until now. max-streams caps it.
			cc.maxStreams = noMaxStreams
		}
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		// Out of range (RFC 9113 §6.5.2): a connection error. A
		// SETTINGS_MAX_FRAME_SIZE of 0 made header blocks endless
		// runs of empty CONTINUATION frames.
		if err := s.Valid(); err != nil {
			var ce http2.ConnectionError
			if errors.As(err, &ce) {
				return &protocolError{http2.ErrCode(ce), fmt.Sprintf("the server's SETTINGS are invalid: %v", s)}
			}
			return err
		}
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(s.Val, noMaxStreams))
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - cc.initialWindow
			for _, st := range cc.streams {
				if st.sendWindow+delta > maxWindow {
					// RFC 9113 §6.9.2: a connection error.
					return &protocolError{http2.ErrCodeFlowControl, fmt.Sprintf("SETTINGS_INITIAL_WINDOW_SIZE %d took stream %d's send window past 2^31-1", s.Val, st.id)}
				}
			}
			cc.initialWindow = int64(s.Val)
			for _, st := range cc.streams {
				st.sendWindow += delta
			}
		case http2.SettingMaxFrameSize:
			cc.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			tableSize, setTable = s.Val, true
		}
		return nil
	})
	cc.wakeWriters()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if setTable {
		cc.henc.SetMaxDynamicTableSize(tableSize)
	}
	return cc.fr.WriteSettingsAck()
}

func (cc *clientConn) onHeaders(f *http2.MetaHeadersFrame) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	st := cc.streams[f.StreamID]
	if st == nil {
		// The Framer decoded the header block: the HPACK decoder's
		// table stays in step.
		return cc.notOpen(f.StreamID, "HEADERS")
	}
	if f.Truncated {
		// The Framer dropped the fields past our
		// SETTINGS_MAX_HEADER_LIST_SIZE: not the server's answer.
		return cc.malformed(st, f.StreamEnded(), fmt.Errorf("malformed response: header section over %d bytes (SETTINGS_MAX_HEADER_LIST_SIZE)", maxHeaderList))
	}
	if st.gotHeaders {
		if !f.StreamEnded() {
			return cc.malformed(st, false, errors.New("malformed response: trailers without END_STREAM"))
		}
		st.resp.trailer = appendFields(nil, f.RegularFields())
		cc.endResponse(st)
		return nil
	}
	status, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || status < 100 || status > 999 {
		return cc.malformed(st, f.StreamEnded(), fmt.Errorf("malformed response: :status %q", f.PseudoValue("status")))
	}
	if status < 200 {
		switch {
		case f.StreamEnded():
			return cc.malformed(st, true, fmt.Errorf("malformed response: %d with END_STREAM", status))
		case status == 101:
			return cc.malformed(st, false, errors.New("malformed response: 101 (Switching Protocols), which HTTP/2 does not have (RFC 9113 §8.6)"))
		}
		if st.infos++; st.infos > maxInformational {
			err := fmt.Errorf("more than %d informational (1xx) answers before the final one (the last %d)", maxInformational, status)
			cc.finish(st, &classed{err, stats.ClassBadResponse})
			return http2.StreamError{StreamID: st.id, Code: http2.ErrCodeCancel, Cause: err}
		}
		return nil // informational: the final answer follows
	}
	st.gotHeaders = true
	st.resp.status = status
	st.resp.header = appendFields(make([]h2text.Field, 0, len(f.Fields)), f.RegularFields())
	if f.StreamEnded() {
		cc.endResponse(st)
	}
	return nil
}

// endResponse ends st with its whole answer; a request still being sent
// is reset (RFC 9113 §8.1: the answer stands). Under mu.
func (cc *clientConn) endResponse(st *stream) {
	reset := !st.sentEnd
	cc.finish(st, nil)
	if reset {
		// Not noted (noteReset): the server ended the stream first, a
		// frame after that is its error (notOpen).
		go func() { // not under mu: writes take wmu first
			cc.wmu.Lock()
			_ = cc.fr.WriteRSTStream(st.id, http2.ErrCodeNo)
			cc.wmu.Unlock()
		}()
	}
}

func appendFields(dst []h2text.Field, fields []hpack.HeaderField) []h2text.Field {
	for _, f := range fields {
		dst = append(dst, h2text.Field{Name: f.Name, Value: f.Value})
	}
	return dst
}

// onData keeps a DATA frame's bytes and gives the window back once half
// of it is used. The whole frame counts, padding included (RFC 9113
// §6.9.1): the connection's window for the frames of every stream (those
// on streams no longer open too, ignored or answered with a reset:
// notOpen), a stream's for its own. A
// window is given back when the client decides to (under mu, before the
// WINDOW_UPDATE is written), so the server's view of a window is never
// larger than the client's: a frame past the client's is past the window
// advertised, a connection FLOW_CONTROL_ERROR.
func (cc *clientConn) onData(f *http2.DataFrame) error {
	n := int(f.Length)
	var connInc, streamInc uint32
	cc.mu.Lock()
	st := cc.streams[f.StreamID]
	var rst error // a stream error to reset the stream with
	if st == nil {
		var pe *protocolError
		if rst = cc.notOpen(f.StreamID, "DATA"); errors.As(rst, &pe) {
			cc.mu.Unlock()
			return rst
		}
	}
	if over := cc.unacked+n > cc.recvConn; over || st != nil && st.unacked+n > cc.recvStream {
		cc.mu.Unlock()
		which := "the connection's"
		if !over {
			which = "the stream's"
		}
		return &protocolError{http2.ErrCodeFlowControl, fmt.Sprintf("the server sent DATA (%d bytes on stream %d) past %s receive window", n, f.StreamID, which)}
	}
	cc.unacked += n
	if cc.unacked >= cc.recvConn/2 {
		connInc, cc.unacked = uint32(cc.unacked), 0
	}
	if st != nil {
		if !st.gotHeaders {
			rst = cc.malformed(st, f.StreamEnded(), errors.New("malformed response: DATA before the response's HEADERS"))
			st = nil
		} else {
			data := f.Data()
			st.resp.size += int64(len(data))
			if st.keep == 0 {
				st.resp.body = append(st.resp.body, data...)
			} else if room := st.keep - len(st.resp.body); room > 0 {
				st.resp.body = append(st.resp.body, data[:min(room, len(data))]...)
			}
			if f.StreamEnded() {
				cc.endResponse(st)
				st = nil
			} else if st.unacked += n; st.unacked >= cc.recvStream/2 {
				streamInc, st.unacked = uint32(st.unacked), 0
			}
		}
	}
	cc.mu.Unlock()
	if connInc == 0 && streamInc == 0 {
		return rst
	}
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	if connInc > 0 {
		if err := cc.fr.WriteWindowUpdate(0, connInc); err != nil {
			return err
		}
	}
	if streamInc > 0 {
		if err := cc.fr.WriteWindowUpdate(f.StreamID, streamInc); err != nil {
			return err
		}
	}
	return rst
}

// healthCheck runs when a stream's context ended before its round trip
// did (it timed out): it sends a PING (unless one is unanswered), and
// closes the connection (its streams fail as reset) if no answer comes
// within pingTimeout, so that later requests do not go to a dead
// connection. The timer starts before the PING is written: the write
// waits for the write lock, which a write the server does not read (its
// socket full) holds until the connection is closed.
func (cc *clientConn) healthCheck() {
	cc.mu.Lock()
	if cc.pinging || cc.err != nil {
		cc.mu.Unlock()
		return
	}
	cc.pinging = true
	cc.pings++
	ping := cc.pings
	cc.mu.Unlock()
	time.AfterFunc(cc.pingTimeout, func() {
		// This PING unanswered: not a later one, whose own timer
		// fires later.
		cc.mu.Lock()
		dead := cc.pinging && cc.pings == ping && cc.err == nil
		cc.mu.Unlock()
		if dead {
			// No drain: the socket is not read. Blocked writes fail,
			// and the reader ends the streams.
			_ = cc.bc.Conn.Close()
		}
	})
	cc.wmu.Lock()
	_ = cc.fr.WritePing(false, [8]byte{'r', 'e', 'p', 'l', 'a', 'y'})
	cc.wmu.Unlock()
}
