package h2sink

import (
	"crypto/tls"
	"errors"
	"net"
	"runtime"
	"sync"
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

// batchConn coalesces the writes of concurrent streams into fewer system
// calls. x/net's client writes and flushes once per request under its
// connection's write lock, so a busy connection costs one write(2) per
// request; here Write only appends to a buffer and a writer goroutine
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
	done    chan struct{} // the writer goroutine ended
}

// newBatchConn wraps c and starts its writer. A *tls.Conn keeps its
// ConnectionState visible, which x/net reads.
func newBatchConn(c net.Conn) net.Conn {
	b := &batchConn{Conn: c, done: make(chan struct{})}
	b.wake = sync.NewCond(&b.mu)
	b.room = sync.NewCond(&b.mu)
	go b.writer()
	if tc, ok := c.(*tls.Conn); ok {
		return &batchTLSConn{batchConn: b, tc: tc}
	}
	return b
}

// Write appends p to the bytes the writer sends next. It waits only while
// batchLimit bytes are held.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.err == nil && len(b.buf) >= batchLimit {
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

// Close sends what is held (for at most closeDrain), then closes the
// connection.
func (b *batchConn) Close() error {
	b.mu.Lock()
	if b.closing {
		b.mu.Unlock()
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

// batchTLSConn is a batchConn over TLS.
type batchTLSConn struct {
	*batchConn
	tc *tls.Conn
}

// ConnectionState is the TLS connection's.
func (b *batchTLSConn) ConnectionState() tls.ConnectionState { return b.tc.ConnectionState() }
