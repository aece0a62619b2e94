package h2sink

import (
	"bytes"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// batchLimit is how many bytes a connection holds unwritten before Write
// waits for the socket.
const batchLimit = 1 << 20

// closeDrain is how long Close waits for held bytes (a GOAWAY, the last
// frames) to reach the socket.
const closeDrain = time.Second

// errBatchClosed is what a Write after Close returns.
var errBatchClosed = errors.New("h2 sink: connection closed")

// http1Prefix starts an HTTP/1.x answer. An HTTP/2 server's first bytes
// are a frame header (SETTINGS), whose length would then be over 4 MiB.
var http1Prefix = []byte("HTTP/1.")

// errHTTP1Read is what Read returns once the peer's first bytes are an
// HTTP/1.x answer: the reader then fails the streams at once, where
// it would wait for the megabytes of a frame that never comes.
var errHTTP1Read = errors.New("h2 sink: the peer answered in HTTP/1.x, not HTTP/2")

// batchConn coalesces the writes of concurrent streams into fewer system
// calls: a busy connection would cost one write(2) per frame; here Write
// only appends to a buffer and a writer goroutine
// sends whatever gathered while the previous write was in the kernel, as
// h2load does once per turn of its event loop. The bytes and their order
// are unchanged. A failed write is returned by every later Write, and the
// reader sees the connection close.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	wake    *sync.Cond // the writer: bytes to send or closing
	room    *sync.Cond // writers waiting below batchLimit
	buf     []byte     // gathered, not yet handed to the socket
	err     error      // the first write error, or errBatchClosed
	closing bool
	// soon: Close is coming; a Write that would wait for room fails
	// (closeSoon).
	soon bool
	done chan struct{} // the writer goroutine ended

	// Read side (the connection's one reader goroutine): sniffed counts the first
	// bytes read that match http1Prefix, -1 once they do not or did.
	sniffed int
	h1      atomic.Pointer[string] // the status line of an HTTP/1.x answer
}

// newBatchConn wraps c and starts its writer.
func newBatchConn(c net.Conn) *batchConn {
	b := &batchConn{Conn: c, done: make(chan struct{})}
	b.wake = sync.NewCond(&b.mu)
	b.room = sync.NewCond(&b.mu)
	go b.writer()
	return b
}

// Read reads from the connection; when the peer's first bytes are an
// HTTP/1.x answer, it notes its status line and fails with errHTTP1Read.
func (b *batchConn) Read(p []byte) (int, error) {
	n, err := b.Conn.Read(p)
	if b.sniffed >= 0 && n > 0 {
		if line, ok := b.sniff(p[:n]); ok {
			b.h1.Store(&line)
			return 0, errHTTP1Read
		}
	}
	return n, err
}

// sniff matches p, the next bytes read, against http1Prefix; it returns
// the answer's status line once the whole prefix matched.
func (b *batchConn) sniff(p []byte) (string, bool) {
	k := min(len(http1Prefix)-b.sniffed, len(p))
	if !bytes.Equal(p[:k], http1Prefix[b.sniffed:b.sniffed+k]) {
		b.sniffed = -1
		return "", false
	}
	b.sniffed += k
	if b.sniffed < len(http1Prefix) {
		return "", false
	}
	b.sniffed = -1
	rest := p[k:]
	if i := bytes.IndexAny(rest, "\r\n"); i >= 0 {
		rest = rest[:i]
	}
	return string(http1Prefix) + string(rest[:min(len(rest), 64)]), true
}

// http1Answer is the status line the peer answered in HTTP/1.x, "" when
// it did not.
func (b *batchConn) http1Answer() string {
	if l := b.h1.Load(); l != nil {
		return *l
	}
	return ""
}

// Write appends p to the bytes the writer sends next. It waits only while
// batchLimit bytes are held; after closeSoon, it fails instead.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.buf) >= batchLimit {
		if b.soon {
			return 0, errBatchClosed
		}
		b.room.Wait()
	}
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	b.wake.Signal()
	return len(p), nil
}

// writer sends the gathered bytes, swapping two buffers so that writes go
// on gathering while one is in the kernel.
func (b *batchConn) writer() {
	defer close(b.done)
	var out []byte
	b.mu.Lock()
	for {
		for len(b.buf) == 0 && !b.closing && b.err == nil {
			b.wake.Wait()
		}
		if b.err != nil || len(b.buf) == 0 {
			b.mu.Unlock()
			return
		}
		if !b.closing {
			b.mu.Unlock()
			runtime.Gosched()
			b.mu.Lock()
		}
		out, b.buf = b.buf, out[:0]
		b.room.Broadcast()
		b.mu.Unlock()
		_, err := b.Conn.Write(out)
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
			b.room.Broadcast()
		}
	}
}

// closeSoon makes the Writes that would wait for room fail, those
// waiting included: the connection is about to be closed, and its last
// frames (a GOAWAY) must not wait without end for a peer that reads
// nothing (with batchLimit bytes held, they are not written).
func (b *batchConn) closeSoon() {
	b.mu.Lock()
	b.soon = true
	b.room.Broadcast()
	b.mu.Unlock()
}

// Close sends what is held (for at most closeDrain), then closes the
// connection. A Close while another one drains waits for that drain: the
// reader's and the pool's Close can meet.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
		<-b.done
		return b.Conn.Close()
	}
	b.closing = true
	b.wake.Signal()
	b.mu.Unlock()
	_ = b.Conn.SetWriteDeadline(time.Now().Add(closeDrain))
	<-b.done
	b.mu.Lock()
	if b.err == nil {
		b.err = errBatchClosed
	}
	b.room.Broadcast()
	b.mu.Unlock()
	return b.Conn.Close()
}
