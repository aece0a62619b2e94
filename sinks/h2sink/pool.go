package h2sink

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// pconn is one HTTP/2 connection and the streams it carries now.
type pconn struct {
	cc       *clientConn
	inflight int
	used     int64 // last use, for session eviction
	// replaced: a session connection another one replaced while it had
	// streams; put closes it after the last one.
	replaced bool
}

// pool holds a target's connections: shared ones, filled up to MaxStreams
// streams each, and one per recorded connection in session mode.
type pool struct {
	s        *Sender
	t        *target
	mu       sync.Mutex
	dialMu   sync.Mutex // one dial at a time: waiting streams then share it
	conns    []*pconn
	sessions map[string]*pconn
	clock    int64
}

// get returns a connection with room for one more stream (reserved), and
// the time spent opening it when it is new.
//
// Connections leave the pool under mu and are closed after it is
// released, and after dialMu too: a close can wait up to closeDrain for
// its last bytes, and would hold every other stream of the pool, or
// every other dial, meanwhile. Once out of the pool, no one else
// reserves a stream on them.
func (p *pool) get(ctx context.Context, session string) (*pconn, time.Duration, error) {
	if pc := p.reuse(session); pc != nil {
		return pc, 0, nil
	}
	p.dialMu.Lock()
	pc, connect, unused, err := p.open(ctx, session)
	p.dialMu.Unlock()
	for _, cc := range unused {
		cc.close()
	}
	return pc, connect, err
}

// open is get under dialMu: it reserves a stream on a connection opened
// while this one waited for dialMu, or dials one. It returns the
// connections to close once dialMu is released: idle ones dropped from
// the pool, a session's stale or evicted one, and a new one whose server
// sent no SETTINGS in time.
func (p *pool) open(ctx context.Context, session string) (pc *pconn, connect time.Duration, unused []*clientConn, err error) {
	if pc, unused = p.reserve(session); pc != nil {
		return pc, 0, unused, nil // opened while this one waited
	}
	start := time.Now()
	cc, err := p.dial(ctx)
	connect = time.Since(start)
	if err != nil {
		if cc != nil {
			unused = append(unused, cc)
		}
		return nil, connect, unused, err
	}
	p.s.conns.Add(1)
	cc.reserveNew()
	pc = &pconn{cc: cc, inflight: 1}
	p.mu.Lock()
	defer p.mu.Unlock()
	if session != "" {
		if old := p.sessions[session]; old != nil {
			if old.inflight == 0 {
				unused = append(unused, old.cc)
			} else {
				old.replaced = true // no longer in the pool: put closes it
			}
		}
		if len(p.sessions) >= maxSessions {
			if evicted := p.evict(); evicted != nil {
				unused = append(unused, evicted)
			}
		}
		p.clock++
		pc.used = p.clock
		p.sessions[session] = pc
	} else {
		p.conns = append(p.conns, pc)
	}
	return pc, connect, unused, nil
}

// reuse reserves a stream on an open connection, nil when none has room.
// Shared connections the server closed while idle are dropped (closed
// once mu is released).
func (p *pool) reuse(session string) *pconn {
	pc, idle := p.reserve(session)
	for _, cc := range idle {
		cc.close()
	}
	return pc
}

// reserve is reuse under mu; it returns the idle connections it dropped.
func (p *pool) reserve(session string) (*pconn, []*clientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if session != "" {
		if pc := p.sessions[session]; pc != nil && pc.cc.tryReserve() {
			pc.inflight++
			p.clock++
			pc.used = p.clock
			return pc, nil
		}
		return nil, nil
	}
	live := p.conns[:0]
	var found *pconn
	var idle []*clientConn
	for _, pc := range p.conns {
		if pc.inflight == 0 && pc.cc.idle() {
			idle = append(idle, pc.cc)
			continue
		}
		live = append(live, pc)
		if found == nil && pc.inflight < p.s.cfg.MaxStreams && pc.cc.tryReserve() {
			pc.inflight++
			found = pc
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
	return found, idle
}

// evict takes the least recently used idle session connection out of the
// pool and returns it (nil when none is idle); the caller closes it once
// mu is released. Under mu.
func (p *pool) evict() *clientConn {
	var oldest string
	min := int64(-1)
	for k, pc := range p.sessions {
		if pc.inflight == 0 && (min < 0 || pc.used < min) {
			oldest, min = k, pc.used
		}
	}
	if min < 0 {
		return nil
	}
	cc := p.sessions[oldest].cc
	delete(p.sessions, oldest)
	return cc
}

// put ends a stream on pc; a shared connection that went away is closed
// once its last stream is done.
func (p *pool) put(pc *pconn, session string) {
	if cc := p.done(pc, session); cc != nil {
		cc.close()
	}
}

// done is put under mu: it returns pc's connection when it is to be
// closed, out of the pool.
func (p *pool) done(pc *pconn, session string) *clientConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	pc.inflight--
	pc.cc.release()
	if pc.inflight > 0 || !pc.replaced && !pc.cc.idle() {
		return nil
	}
	if session != "" {
		if p.sessions[session] == pc {
			delete(p.sessions, session)
		}
		return pc.cc
	}
	for i, c := range p.conns {
		if c == pc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			break
		}
	}
	return pc.cc
}

func (p *pool) closeAll() {
	p.mu.Lock()
	conns, sessions := p.conns, p.sessions
	p.conns, p.sessions = nil, map[string]*pconn{}
	p.mu.Unlock()
	for _, pc := range conns {
		pc.cc.close()
	}
	for _, pc := range sessions {
		pc.cc.close()
	}
}

// dial opens a connection: TCP, TLS with ALPN h2 for https targets, and
// the HTTP/2 preface and settings; it waits for the server's SETTINGS.
// When they do not come in time, it returns the connection with the
// error, for the caller to close (after dialMu: the close can take up to
// closeDrain, and would hold the other dials to the target meanwhile).
func (p *pool) dial(ctx context.Context) (*clientConn, error) {
	ctx, cancel := context.WithTimeout(ctx, p.t.timeout)
	defer cancel()
	nc, err := p.s.dialer.DialContext(ctx, "tcp", p.t.addr)
	if err != nil {
		return nil, err
	}
	if p.t.tls != nil {
		tc := tls.Client(nc, p.t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = nc.Close()
			if strings.Contains(err.Error(), "no application protocol") {
				return nil, &classed{fmt.Errorf("%s: %w: %w", p.t.addr, ErrNoH2, err), "alpn"}
			}
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol != http2.NextProtoTLS {
			_ = nc.Close()
			return nil, &classed{fmt.Errorf("%s: %w", p.t.addr, ErrNoH2), "alpn"}
		}
		nc = tc
	}
	bc := newBatchConn(nc)
	cc, err := newClientConn(bc, p.t.timeout)
	if err != nil {
		_ = bc.Close()
		return nil, err
	}
	// The server's SETTINGS_MAX_CONCURRENT_STREAMS holds from its first
	// SETTINGS on, and the streams opened before could be over it (Go's
	// server refuses those; x/net assumes 100 until then): the workers
	// that wait for this dial reserve their streams once it is known.
	select {
	case <-cc.ready: // or the connection ended: its stream says why
	case <-ctx.Done():
		return cc, fmt.Errorf("%s: no SETTINGS from the server: %w", p.t.addr, ctx.Err())
	}
	return cc, nil
}
