package engine

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/replayctl/replayctl/message"
)

// The production guard compares the addresses traffic was captured from with
// the addresses of the replay targets. An address is compared as written, and
// every address that means "this host" is compared as one: the unspecified
// addresses (0.0.0.0, ::), all of 127.0.0.0/8, ::1, "localhost" and the
// host's own interface addresses, when the capture was made on this host (a
// recording whose hosts include this one, a pcap read here, a .gor file). So
// http://0.0.0.0:8080, http://127.0.0.2:8080 or http://[::1]:8080 do not get
// around a capture of 127.0.0.1:8080. Messages without a recorded destination
// (.gor files, topics written by gor) are guarded by their Host header.

// selfAddrs is the set of this host's interface addresses, read once.
var selfAddrs = sync.OnceValue(func() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out[p.Addr().Unmap().WithZone("")] = true
		}
	}
	return out
})

// isSelf reports whether a means this host.
func isSelf(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	return a.IsUnspecified() || a.IsLoopback() || selfAddrs()[a]
}

// selfTargets records the ports of targets on this host (target name by port).
type selfTargets map[uint16]string

// hostGuard is what the guard knows beyond exact target addresses: the
// targets on this host, the targets' host names, and resolved Host headers.
type hostGuard struct {
	self  selfTargets
	names map[string]string // lower-case target host name → target name
	ports map[string]uint16 // lower-case target host name → its port
	exact map[netip.AddrPort]string

	mu       sync.Mutex
	resolved map[string][]netip.Addr // Host header name → addresses (nil: did not resolve)
	hosts    map[string]string       // Host header value → target it reaches ("" for none)
}

// maxResolved bounds the Host header names resolved for one replay.
const maxResolved = 4096

func newHostGuard() *hostGuard {
	return &hostGuard{self: selfTargets{}, names: map[string]string{}, ports: map[string]uint16{},
		exact: map[netip.AddrPort]string{}, resolved: map[string][]netip.Addr{}, hosts: map[string]string{}}
}

// addTarget notes one resolved address of a target.
func (h *hostGuard) addTarget(name string, a netip.AddrPort) {
	a = netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
	h.exact[a] = name
	if isSelf(a.Addr()) {
		h.self[a.Port()] = name
	}
}

// addName notes a target's host name and port.
func (h *hostGuard) addName(target, host string, port uint16) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	h.names[host], h.ports[host] = target, port
}

// local reports whether a capture made on capturingHost was made here; an
// unknown host counts as here.
func local(capturingHost string) bool {
	return capturingHost == "" || capturingHost == thisHost()
}

// thisHost is hostname(), read once (the guard asks for every message).
var thisHost = sync.OnceValue(hostname)

// hit returns the target a captured destination reaches, if any: exactly,
// or as "this host" when the capture was local.
func (h *hostGuard) hit(dst netip.AddrPort, isLocal bool) (string, bool) {
	a := netip.AddrPortFrom(dst.Addr().Unmap().WithZone(""), dst.Port())
	if name, ok := h.exact[a]; ok {
		return name, true
	}
	if !isLocal || !isSelf(a.Addr()) {
		return "", false
	}
	name, ok := h.self[dst.Port()]
	return name, ok
}

// hitHost checks a request's Host header (or absolute-form authority): a
// target with the same host name, or an address the name resolves to.
func (h *hostGuard) hitHost(ctx context.Context, raw []byte) (string, string, bool) {
	hostport := hostOf(raw)
	if hostport == "" {
		return "", "", false
	}
	h.mu.Lock()
	c, ok := h.hosts[hostport]
	h.mu.Unlock()
	if ok {
		return c, hostport, c != ""
	}
	name, hit := h.hitHostport(ctx, hostport)
	h.mu.Lock()
	if len(h.hosts) < maxResolved {
		h.hosts[hostport] = name
	}
	h.mu.Unlock()
	return name, hostport, hit
}

// hostOf returns a request's Host header value, or the authority of an
// absolute-form target, without parsing the whole request.
func hostOf(raw []byte) string {
	line, rest, ok := bytes.Cut(raw, []byte("\n"))
	if !ok {
		return ""
	}
	if _, target, ok := bytes.Cut(line, []byte(" ")); ok {
		target, _, _ = bytes.Cut(target, []byte(" "))
		if _, auth, ok := bytes.Cut(target, []byte("://")); ok {
			if i := bytes.IndexAny(auth, "/?#"); i >= 0 {
				auth = auth[:i]
			}
			if i := bytes.LastIndexByte(auth, '@'); i >= 0 {
				auth = auth[i+1:]
			}
			return string(auth)
		}
	}
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return ""
		}
		if len(line) > 5 && line[4] == ':' && bytes.EqualFold(line[:4], []byte("host")) {
			return string(bytes.TrimSpace(line[5:]))
		}
	}
	return ""
}

// hitHostport is hitHost for one Host value.
func (h *hostGuard) hitHostport(ctx context.Context, hostport string) (string, bool) {
	host, portText, err := net.SplitHostPort(hostport)
	if err != nil {
		host, portText = strings.Trim(hostport, "[]"), ""
	}
	var port uint16
	if p, err := strconv.ParseUint(portText, 10, 16); err == nil {
		port = uint16(p)
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	if name, ok := h.names[lower]; ok && (port == 0 || h.ports[lower] == port) {
		return name, true
	}
	if port == 0 {
		port = 80
	}
	for _, a := range h.resolve(ctx, lower) {
		if name, ok := h.hit(netip.AddrPortFrom(a, port), true); ok {
			return name, true
		}
	}
	return "", false
}

// resolve returns the addresses of a Host header name: itself when it is
// an IP, this host for localhost, else a DNS lookup (cached, bounded).
func (h *hostGuard) resolve(ctx context.Context, host string) []netip.Addr {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap().WithZone("")}
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return []netip.Addr{netip.IPv6Loopback()}
	}
	h.mu.Lock()
	addrs, seen := h.resolved[host]
	full := len(h.resolved) >= maxResolved
	h.mu.Unlock()
	if seen || full {
		return addrs
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err == nil {
		for _, ip := range ips {
			addrs = append(addrs, ip.Unmap().WithZone(""))
		}
	}
	h.mu.Lock()
	h.resolved[host] = addrs
	h.mu.Unlock()
	return addrs
}

// messageHit reports the target a message to be replayed was captured from.
func (h *hostGuard) messageHit(ctx context.Context, m *message.Message) (name, where string, hit bool) {
	if m.Dst.IsValid() {
		name, hit = h.hit(m.Dst, local(m.Host))
		return name, m.Dst.String(), hit
	}
	return h.hitHost(ctx, m.Raw)
}
