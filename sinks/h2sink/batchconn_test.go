package h2sink

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loopPair returns both ends of a TCP connection on loopback.
func loopPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestBatchConnKeepsEveryByteInOrder: writers in turn (as x/net's write
// lock makes them) and Close at the end; the peer reads every byte in
// the order written, and the writes shared system calls.
func TestBatchConnKeepsEveryByteInOrder(t *testing.T) {
	c, srv := loopPair(t)
	cc := &countingConn{Conn: c}
	bc := newBatchConn(cc)
	var want bytes.Buffer
	var mu sync.Mutex // x/net's cc.wmu
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				mu.Lock()
				line := fmt.Appendf(nil, "writer %d frame %d\n", w, i)
				want.Write(line)
				if _, err := bc.Write(line); err != nil {
					t.Error(err)
				}
				mu.Unlock()
			}
		})
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(srv)
		got <- b
	}()
	wg.Wait()
	if err := bc.Close(); err != nil {
		t.Fatal(err)
	}
	b := <-got
	if !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("peer read %d bytes, %d written; same: %v", len(b), want.Len(), bytes.Equal(b, want.Bytes()))
	}
	if n := cc.writes.Load(); n >= 16000 {
		t.Errorf("%d writes to the socket for 16000 frames: none gathered", n)
	}
	if _, err := bc.Write([]byte("late")); !errors.Is(err, errBatchClosed) {
		t.Fatalf("write after close: %v, want %v", err, errBatchClosed)
	}
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestBatchConnWriteErrorSticks: once the peer is gone, a later Write
// fails instead of gathering bytes nobody sends.
func TestBatchConnWriteErrorSticks(t *testing.T) {
	c, srv := loopPair(t)
	bc := newBatchConn(c)
	srv.(*net.TCPConn).SetLinger(0)
	srv.Close() // RST: the next writes fail
	deadline := time.Now().Add(10 * time.Second)
	var err error
	for err == nil && time.Now().Before(deadline) {
		_, err = bc.Write(make([]byte, 4096))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a reset connection kept succeeding")
	}
	if _, again := bc.Write([]byte("x")); again == nil {
		t.Fatal("the write error did not stick")
	}
	_ = bc.Close()
}

// TestBatchConnBoundedWhenPeerStalls: a peer that reads nothing makes
// Write wait past batchLimit (memory stays bounded), and Close still
// returns, within closeDrain.
func TestBatchConnBoundedWhenPeerStalls(t *testing.T) {
	c, _ := loopPair(t)
	bc := newBatchConn(c)
	blocked := make(chan int)
	go func() {
		n := 0
		chunk := make([]byte, 64<<10)
		for n < 64*batchLimit { // far more than the socket buffers and batchLimit hold
			if _, err := bc.Write(chunk); err != nil {
				break
			}
			n += len(chunk)
		}
		blocked <- n
	}()
	select {
	case n := <-blocked:
		t.Fatalf("%d bytes accepted with the peer reading nothing", n)
	case <-time.After(300 * time.Millisecond):
	}
	start := time.Now()
	_ = bc.Close()
	if d := time.Since(start); d > closeDrain+2*time.Second {
		t.Fatalf("Close took %s", d)
	}
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("a Write waiting for room did not return after Close")
	}
}

// TestBatchConnConcurrentCloses: two Close calls at once (the reader
// ending and the pool closing the connection) both wait for the held
// bytes to be sent; the second one does not close the socket under the
// first one's drain (the last frames, a GOAWAY, were lost).
func TestBatchConnConcurrentCloses(t *testing.T) {
	c, srv := loopPair(t)
	// A small send buffer: most of the bytes stay in the batchConn until
	// the peer reads.
	_ = c.(*net.TCPConn).SetWriteBuffer(4096)
	bc := newBatchConn(c)
	want := bytes.Repeat([]byte("0123456789abcdef"), (3*batchLimit/4)/16) // held: under batchLimit
	for chunk := range slices.Chunk(want, 64<<10) {
		if _, err := bc.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { _ = bc.Close() })
	}
	time.Sleep(200 * time.Millisecond) // the peer reads after the two Close calls
	got, _ := io.ReadAll(srv)
	wg.Wait()
	if !bytes.Equal(got, want) {
		t.Fatalf("peer read %d bytes of %d", len(got), len(want))
	}
}
