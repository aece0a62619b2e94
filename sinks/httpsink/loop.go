//go:build linux

package httpsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/replayctl/replayctl/stats"
)

// The closed model's event loop (plain-TCP targets, no sessions): a few
// goroutines, each locked to its thread, own a share of the workers'
// connection slots and drive nonblocking sockets with epoll. A slot does
// what a worker goroutine does (one request at a time, one keep-alive
// connection per target, the same Result), but a response is read when
// epoll says it came: no goroutine parks and wakes per request, no read
// ends in EAGAIN before it, and the loop takes its next requests from the
// queue while it is awake.

// loopSupported tells New that the event loop can run here.
const loopSupported = true

// evloop is one event loop and its slots.
type evloop struct {
	s      *Sender
	sh     *shard
	epfd   int
	epfile *os.File        // epfd in Go's poller
	rc     syscall.RawConn // epfile's
	dl     time.Time       // epfile's read deadline
	next   time.Time       // no request in flight has a deadline before it
	kickfd int             // eventfd: Send, Close and Stop wake a loop waiting for requests
	kickMu sync.Mutex
	down   bool // kickfd is closed (guarded by kickMu)
	// waiting is set while the loop has free slots and may sleep in
	// epoll_wait: the next Send kicks it.
	waiting atomic.Bool
	slots   []*lslot
	idle    []*lslot
	busy    int
	closed  bool     // the queue is closed: exit once every slot is done
	conns   []*lconn // by file descriptor
	addrs   [][]netip.AddrPort
	events  []unix.EpollEvent
	batch   []job
	gen     int32
}

// lconn is one connection of a slot.
type lconn struct {
	fd         int
	gen        int32 // tells its events from those of an earlier fd of the same number
	addr       netip.AddrPort
	slot       *lslot // the slot using it; nil while it idles in its slot's pool
	connecting bool
	// stirred: the connection became readable (or the peer closed it)
	// while idle, or after its last response: read at once after the
	// next write instead of waiting for an edge that already came.
	stirred bool
}

// lslot is one worker's share of a loop: one request at a time.
type lslot struct {
	conns    []*lconn // idle keep-alive connection per target
	active   bool
	j        job
	r        Result
	c        *lconn // connection of the request in flight (or being dialed)
	p        parser
	buf      []byte // read buffer: buf[rd:wr] not yet parsed
	rd, wr   int
	iov      [3][]byte
	vec      [3]unix.Iovec
	wbufs    [][]byte // left to write
	start    time.Time
	dialed   time.Time // when the current dial started
	deadline time.Time
	attempt  int
	fresh    bool // the request went on a connection opened for it
	addrIdx  int  // address of the target being dialed
}

// startLoops starts the event loops with the Workers slots shared out
// among them.
func (s *Sender) startLoops() error {
	n := min(runtime.GOMAXPROCS(0), s.cfg.Workers)
	for i := range n {
		l, err := newLoop(s, s.shards[i%len(s.shards)])
		if err != nil {
			for _, o := range s.loops {
				o.shutdown()
			}
			s.loops = nil
			return err
		}
		s.loops = append(s.loops, l)
	}
	for i := range s.cfg.Workers {
		l := s.loops[i%n]
		sl := &lslot{
			conns: make([]*lconn, len(s.targets)),
			p:     parser{keep: s.cfg.KeepResponse, limit: s.cfg.KeepLimit},
			buf:   make([]byte, readBufSize),
		}
		l.slots = append(l.slots, sl)
		l.idle = append(l.idle, sl)
	}
	for _, l := range s.loops {
		s.wg.Go(l.run)
	}
	return nil
}

func newLoop(s *Sender, sh *shard) (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("http sink: epoll: %w", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("http sink: epoll: %w", err)
	}
	kick, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, fmt.Errorf("http sink: eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(kick)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, kick, &ev); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(kick)
		return nil, fmt.Errorf("http sink: epoll: %w", err)
	}
	// The loop sleeps in Go's own poller, on its epoll descriptor (which
	// is readable when one of its sockets is ready): the goroutine parks
	// once per wake, however many responses came, and no thread blocks in
	// a system call of its own.
	file := os.NewFile(uintptr(epfd), "epoll")
	rc, err := file.SyscallConn()
	if err != nil {
		_ = file.Close()
		_ = unix.Close(kick)
		return nil, fmt.Errorf("http sink: epoll: %w", err)
	}
	return &evloop{
		s: s, sh: sh, epfd: epfd, epfile: file, rc: rc, kickfd: kick,
		addrs:  make([][]netip.AddrPort, len(s.targets)),
		events: make([]unix.EpollEvent, 128),
	}, nil
}

// wakeLoops kicks the loops waiting for requests (after a Send).
func (s *Sender) wakeLoops() {
	for _, l := range s.loops {
		if l.waiting.Load() && l.waiting.CompareAndSwap(true, false) {
			l.kick()
		}
	}
}

// kickLoops wakes every loop (Close, Stop).
func (s *Sender) kickLoops() {
	for _, l := range s.loops {
		l.kick()
	}
}

func (l *evloop) kick() {
	one := [8]byte{1}
	l.kickMu.Lock()
	if !l.down {
		_, _ = unix.Write(l.kickfd, one[:])
	}
	l.kickMu.Unlock()
}

func (l *evloop) run() {
	defer l.shutdown()
	for {
		l.pull()
		if l.closed && l.busy == 0 {
			return
		}
		if len(l.idle) > 0 && !l.closed {
			// Announce the wait, then look once more: a Send that
			// queued after the look sees the flag and kicks.
			l.waiting.Store(true)
			if l.pull() > 0 || l.closed {
				l.waiting.Store(false)
				if l.closed && l.busy == 0 {
					return
				}
			}
		}
		// Whatever is ready already is taken without blocking (and
		// without the scheduler's bookkeeping of a blocking system call);
		// only an idle loop blocks.
		n, err := l.poll()
		if n == 0 && err == nil {
			n, err = l.wait()
		}
		l.waiting.Store(false)
		if err != nil {
			// Cannot happen with valid descriptors; fail what is in
			// flight rather than spin.
			l.failAll(fmt.Errorf("epoll_wait: %w", err))
			continue
		}
		for _, ev := range l.events[:max(n, 0)] {
			l.event(ev)
		}
		l.expire()
	}
}

// pull takes requests from the queue into free slots without blocking and
// returns how many it took (a request that ends at once, as after Close's
// deadline, frees its slot for the next). After Stop it drops every queued
// request.
func (l *evloop) pull() int {
	s := l.s
	taken := 0
	for !l.closed {
		k := len(l.idle)
		stopped := s.stopped.Load()
		if stopped {
			k = len(s.lq.ring)
		}
		if k == 0 {
			return taken
		}
		jobs, closed := s.lq.take(l.batch[:0], k)
		l.closed = closed
		for i := range jobs {
			if stopped || s.stopped.Load() {
				s.drop(&jobs[i])
			} else {
				sl := l.idle[len(l.idle)-1]
				l.idle = l.idle[:len(l.idle)-1]
				l.start(sl, jobs[i])
			}
			jobs[i] = job{}
		}
		l.batch = jobs[:0]
		taken += len(jobs)
		if len(jobs) < k {
			return taken
		}
	}
	return taken
}

// wait parks until an event is ready or the earliest deadline of a
// request in flight passes (then it returns no event).
func (l *evloop) wait() (int, error) {
	want := l.next
	if l.busy == 0 {
		want = time.Time{}
	}
	// The deadline set only moves earlier, or on once it has passed: at
	// worst a wake finds nothing expired and sets the next one.
	if (!l.dl.IsZero() && !time.Now().Before(l.dl)) || (!want.IsZero() && (l.dl.IsZero() || want.Before(l.dl))) {
		if err := l.epfile.SetReadDeadline(want); err != nil {
			return 0, err
		}
		l.dl = want
	}
	var (
		n    int
		perr error
	)
	err := l.rc.Read(func(uintptr) bool {
		n, perr = l.poll()
		return n > 0 || perr != nil
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return n, perr
}

func (l *evloop) event(ev unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == l.kickfd {
		var b [8]byte
		_, _ = unix.Read(l.kickfd, b[:])
		return
	}
	if fd >= len(l.conns) {
		return
	}
	c := l.conns[fd]
	if c == nil || c.gen != ev.Pad {
		return
	}
	hup := ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0
	sl := c.slot
	if sl == nil {
		if hup || ev.Events&unix.EPOLLIN != 0 {
			c.stirred = true
		}
		return
	}
	if c.connecting {
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.connected(sl)
		}
		return
	}
	if len(sl.wbufs) > 0 {
		if hup || ev.Events&unix.EPOLLIN != 0 {
			// An answer before the whole request is out (413 after the
			// head): edge-triggered, no second edge comes for it, so it is
			// read once the write is done.
			c.stirred = true
		}
		if ev.Events&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			l.write(sl)
		}
		return
	}
	if hup || ev.Events&unix.EPOLLIN != 0 {
		l.read(sl, hup)
	}
}

// start begins j in sl, as worker.do does.
func (l *evloop) start(sl *lslot, j job) {
	s := l.s
	sl.j = j
	sl.r = s.newResult(&sl.j)
	sl.active = true
	l.busy++
	if err := s.ctx.Err(); err != nil {
		sl.r.Err = fmt.Errorf("send to %s: %w", s.targets[j.t].name, err)
		l.done(sl)
		return
	}
	c := sl.conns[j.t]
	sl.conns[j.t] = nil
	sl.attempt = 0
	l.attempt(sl, c)
}

// attempt sends sl's request on c, or on a new connection when c is nil.
func (l *evloop) attempt(sl *lslot, c *lconn) {
	sl.fresh = c == nil
	if c != nil {
		l.send(sl, c)
		return
	}
	sl.dialed = time.Now()
	l.setDeadline(sl, sl.dialed.Add(l.s.targets[sl.j.t].timeout))
	sl.addrIdx = 0
	l.dial(sl)
}

// dial starts a nonblocking connect to the target's address sl.addrIdx.
func (l *evloop) dial(sl *lslot) {
	t := &l.s.targets[sl.j.t]
	addrs, err := l.resolve(sl.j.t)
	if err != nil {
		sl.r.Connect += time.Since(sl.dialed)
		sl.r.Err = fmt.Errorf("%s: %w", t.name, err)
		l.done(sl)
		return
	}
	a := addrs[sl.addrIdx]
	family, sa, err := sockaddr(a)
	if err != nil {
		l.connectFailed(sl, a, err)
		return
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		l.connectFailed(sl, a, os.NewSyscallError("socket", err))
		return
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30)
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS && err != unix.EINTR {
		_ = unix.Close(fd)
		l.connectFailed(sl, a, os.NewSyscallError("connect", err))
		return
	}
	l.gen++
	c := &lconn{fd: fd, gen: l.gen, addr: a, connecting: true, slot: sl}
	// Edge-triggered: an event per arrival, none per request to re-arm.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd), Pad: c.gen}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = unix.Close(fd)
		l.connectFailed(sl, a, os.NewSyscallError("epoll_ctl", err))
		return
	}
	for fd >= len(l.conns) {
		l.conns = append(l.conns, nil)
	}
	l.conns[fd] = c
	sl.c = c
}

// sockaddr returns the socket family and address for a, with an IPv6
// zone (fe80::1%eth0, or a numeric zone) as its scope ID.
func sockaddr(a netip.AddrPort) (int, unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() || ip.Is4In6() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.Unmap().As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		id, err := zoneID(z)
		if err != nil {
			return 0, nil, err
		}
		sa.ZoneId = id
	}
	return unix.AF_INET6, sa, nil
}

// zoneIDs caches zoneID's interface lookups (a netlink dump each, on the
// loop's goroutine otherwise at every dial).
var zoneIDs sync.Map // string → uint32

// zoneID returns the scope ID of an IPv6 zone: a number, or an interface
// name.
func zoneID(z string) (uint32, error) {
	if n, err := strconv.ParseUint(z, 10, 32); err == nil {
		return uint32(n), nil
	}
	if v, ok := zoneIDs.Load(z); ok {
		return v.(uint32), nil
	}
	ifi, err := net.InterfaceByName(z)
	if err != nil {
		return 0, fmt.Errorf("zone %q: %w", z, err)
	}
	zoneIDs.Store(z, uint32(ifi.Index))
	return uint32(ifi.Index), nil
}

// resolve returns the addresses of target t, looked up once per loop (and
// again after a connection to it failed).
func (l *evloop) resolve(t int) ([]netip.AddrPort, error) {
	if a := l.addrs[t]; a != nil {
		return a, nil
	}
	tg := &l.s.targets[t]
	host, portStr, err := net.SplitHostPort(tg.addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		// An address (no lookup); the resolver would drop an IPv6 zone.
		l.addrs[t] = []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}
		return l.addrs[t], nil
	}
	ctx, cancel := context.WithTimeout(l.s.ctx, l.s.targets[t].timeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
	}
	if len(ips) == 0 {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
	}
	a := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		a[i] = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	l.addrs[t] = a
	return a, nil
}

// connectFailed tries the target's next address, or fails sl's request
// with err, as a dial error.
func (l *evloop) connectFailed(sl *lslot, a netip.AddrPort, err error) {
	sl.c = nil
	if sl.addrIdx+1 < len(l.addrs[sl.j.t]) {
		sl.addrIdx++
		l.dial(sl)
		return
	}
	l.addrs[sl.j.t] = nil // look up again next time
	t := &l.s.targets[sl.j.t]
	sl.r.Connect += time.Since(sl.dialed)
	sl.r.Err = fmt.Errorf("%s: %w", t.name, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(a), Err: err})
	l.done(sl)
}

// connected ends sl's connect: the request goes out, or the connect failed.
func (l *evloop) connected(sl *lslot) {
	c := sl.c
	errno, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && errno != 0 {
		err = unix.Errno(errno)
	}
	if err != nil {
		l.closeConn(c)
		l.connectFailed(sl, c.addr, os.NewSyscallError("connect", err))
		return
	}
	c.connecting = false
	sl.r.Connect += time.Since(sl.dialed)
	l.send(sl, c)
}

// send starts a round trip of sl's request on c, as worker.roundTrip does.
func (l *evloop) send(sl *lslot, c *lconn) {
	s := l.s
	j := &sl.j
	t := &s.targets[j.t]
	sl.c, c.slot = c, sl
	sl.start = time.Now()
	l.setDeadline(sl, sl.start.Add(t.timeout))
	sl.p.reset(nil)
	sl.p.begin(j.info.method)
	sl.rd, sl.wr = 0, 0
	sl.r.BytesIn = 0
	raw := j.req.Raw
	if j.info.hostStart >= 0 {
		sl.iov = [3][]byte{raw[:j.info.hostStart], t.hostBytes, raw[j.info.hostEnd:]}
		sl.wbufs = sl.iov[:3]
		sl.r.BytesOut = int64(len(raw) + len(t.host) - (j.info.hostEnd - j.info.hostStart))
	} else {
		sl.iov = [3][]byte{raw}
		sl.wbufs = sl.iov[:1]
		sl.r.BytesOut = int64(len(raw))
	}
	l.write(sl)
}

// write writes what is left of sl's request; when it is all out, reads
// at once if the connection was stirred, else waits for the response.
func (l *evloop) write(sl *lslot) {
	c := sl.c
	for len(sl.wbufs) > 0 {
		n, err := rawWritev(c.fd, sl.wbufs, &sl.vec)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return // the next EPOLLOUT goes on
		}
		if err != nil {
			l.fail(sl, fmt.Errorf("write request: %w", l.opError("write", c, os.NewSyscallError("writev", err))), false)
			return
		}
		for n > 0 && len(sl.wbufs) > 0 {
			if n >= len(sl.wbufs[0]) {
				n -= len(sl.wbufs[0])
				sl.wbufs = sl.wbufs[1:]
			} else {
				sl.wbufs[0] = sl.wbufs[0][n:]
				n = 0
			}
		}
		for len(sl.wbufs) > 0 && len(sl.wbufs[0]) == 0 {
			sl.wbufs = sl.wbufs[1:]
		}
	}
	sl.iov = [3][]byte{}
	if c.stirred {
		c.stirred = false
		l.read(sl, true)
	}
}

// read reads what came on sl's connection and parses it. Edge-triggered:
// a read shorter than the room left took everything there was, unless the
// peer closed (hup): then it reads on to the end.
func (l *evloop) read(sl *lslot, hup bool) {
	c := sl.c
	for {
		room := len(sl.buf) - sl.wr
		n, err := rawRead(c.fd, sl.buf[sl.wr:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if err != nil {
			l.fail(sl, fmt.Errorf("read response: %w", l.opError("read", c, os.NewSyscallError("read", err))), true)
			return
		}
		if n == 0 {
			if err := sl.p.eof(sl.wr > sl.rd); err != nil {
				l.fail(sl, fmt.Errorf("read response: %w", err), true)
				return
			}
			l.complete(sl, true)
			return
		}
		done, err := sl.parse(n)
		if err != nil {
			l.fail(sl, fmt.Errorf("read response: %w", err), true)
			return
		}
		if done {
			l.complete(sl, hup)
			return
		}
		if n < room && !hup {
			return
		}
	}
}

// parse feeds the n bytes just read into buf[wr:] to the parser. What is
// left unparsed (a partial line) moves to the front of the buffer; a line
// that fills the whole buffer is an error, as with read's bufio.Reader.
func (sl *lslot) parse(n int) (bool, error) {
	sl.wr += n
	k, done, err := sl.p.feed(sl.buf[sl.rd:sl.wr])
	sl.rd += k
	if err != nil || done {
		return done, err
	}
	switch {
	case sl.rd == sl.wr:
		sl.rd, sl.wr = 0, 0
	case sl.wr == len(sl.buf) && sl.rd == 0:
		return false, errLineTooLong(len(sl.buf))
	case sl.wr == len(sl.buf):
		sl.wr = copy(sl.buf, sl.buf[sl.rd:sl.wr])
		sl.rd = 0
	}
	return false, nil
}

// complete ends sl's round trip with its response; the connection goes
// back to the slot's pool if it may carry another request (stirred when
// the peer already closed it: the next request on it finds out at once).
func (l *evloop) complete(sl *lslot, hup bool) {
	s := l.s
	r := &sl.r
	resp := sl.p.resp
	r.BytesIn = sl.p.n
	r.Latency = time.Since(sl.start)
	r.Status = resp.status
	if s.cfg.KeepResponse {
		r.Response = bytes.Clone(sl.p.out)
		r.ResponseTruncated = sl.p.trunc
	}
	c := sl.c
	sl.c, c.slot = nil, nil
	if resp.keepAlive && !sl.j.info.close && sl.rd == sl.wr {
		c.stirred = c.stirred || hup
		sl.conns[sl.j.t] = c
	} else {
		l.closeConn(c)
	}
	l.done(sl)
}

// fail ends sl's round trip with err (timed: after the write, so latency
// and bytes read count), sending once more on a new connection when a
// pooled one turned out stale, as worker.do does.
func (l *evloop) fail(sl *lslot, err error, timed bool) {
	if timed {
		sl.r.BytesIn = sl.p.n
		sl.r.Latency = time.Since(sl.start)
	}
	c := sl.c
	sl.c = nil
	sl.wbufs, sl.iov = nil, [3][]byte{}
	if c != nil {
		c.slot = nil
		l.closeConn(c)
	}
	stale := !sl.fresh && sl.attempt == 0 && sl.p.n == 0 && stats.Classify(err) == stats.ClassReset
	if stale && sl.j.info.replayable {
		sl.r.Retried = true
		sl.attempt++
		l.attempt(sl, nil)
		return
	}
	if stale {
		err = notResent(err)
	}
	t := &l.s.targets[sl.j.t]
	sl.r.Err = fmt.Errorf("%s %s: %w", t.name, t.addr, err)
	l.done(sl)
}

// setDeadline sets sl's deadline and keeps l.next at or before it.
func (l *evloop) setDeadline(sl *lslot, d time.Time) {
	sl.deadline = d
	if l.next.IsZero() || d.Before(l.next) {
		l.next = d
	}
}

// expire fails the requests (and connects) past their deadline. The slots
// are looked at only once the earliest deadline set may have passed.
func (l *evloop) expire() {
	if l.busy == 0 || l.next.IsZero() {
		return
	}
	now := time.Now()
	if now.Before(l.next) {
		return
	}
	defer func() {
		l.next = time.Time{}
		for _, sl := range l.slots {
			if sl.active && (l.next.IsZero() || sl.deadline.Before(l.next)) {
				l.next = sl.deadline
			}
		}
	}()
	for _, sl := range l.slots {
		if !sl.active || now.Before(sl.deadline) || sl.c == nil {
			continue
		}
		c := sl.c
		switch {
		case c.connecting:
			l.closeConn(c)
			sl.c = nil
			t := &l.s.targets[sl.j.t]
			sl.r.Connect += time.Since(sl.dialed)
			sl.r.Err = fmt.Errorf("%s: %w", t.name, &net.OpError{Op: "dial", Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.addr), Err: os.ErrDeadlineExceeded})
			l.done(sl)
		case len(sl.wbufs) > 0:
			l.fail(sl, fmt.Errorf("write request: %w", l.opError("write", c, os.ErrDeadlineExceeded)), false)
		default:
			l.fail(sl, fmt.Errorf("read response: %w", l.opError("read", c, os.ErrDeadlineExceeded)), true)
		}
	}
}

// failAll fails every request in flight with err.
func (l *evloop) failAll(err error) {
	for _, sl := range l.slots {
		if sl.active && sl.c != nil {
			sl.attempt = 1 // no retry
			l.fail(sl, err, true)
		}
	}
}

func (l *evloop) opError(op string, c *lconn, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: net.TCPAddrFromAddrPort(c.addr), Err: err}
}

// done delivers sl's result and frees the slot.
func (l *evloop) done(sl *lslot) {
	l.s.finish(l.sh, &sl.r)
	sl.active = false
	sl.j, sl.r = job{}, Result{}
	l.busy--
	l.idle = append(l.idle, sl)
}

func (l *evloop) closeConn(c *lconn) {
	if c.fd < len(l.conns) && l.conns[c.fd] == c {
		l.conns[c.fd] = nil
	}
	_ = unix.Close(c.fd)
	c.fd = -1
}

// shutdown closes the loop's connections and descriptors.
func (l *evloop) shutdown() {
	for _, sl := range l.slots {
		for i, c := range sl.conns {
			if c != nil {
				l.closeConn(c)
				sl.conns[i] = nil
			}
		}
		if sl.c != nil {
			l.closeConn(sl.c)
			sl.c = nil
		}
	}
	_ = l.epfile.Close()
	l.kickMu.Lock()
	l.down = true
	_ = unix.Close(l.kickfd)
	l.kickMu.Unlock()
}

// The system calls of the loop that never block (nonblocking sockets,
// epoll_wait with no timeout) are made raw: the goroutine keeps its P, so
// the scheduler neither hands the P to another thread nor wakes one for
// it, as it may during a system call.

// poll returns the events ready now.
func (l *evloop) poll() (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	if e != 0 {
		if e == unix.EINTR {
			return 0, nil
		}
		return 0, e
	}
	return int(n), nil
}

func rawWritev(fd int, bufs [][]byte, vec *[3]unix.Iovec) (int, error) {
	k := 0
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		vec[k].Base = &b[0]
		vec[k].SetLen(len(b))
		k++
	}
	if k == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&vec[0])), uintptr(k))
	*vec = [3]unix.Iovec{}
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
