package cli

import (
	"errors"
	"fmt"
	"syscall"
)

// bindError says what to do about a listener that could not be opened on
// addr, the value of flag: the port is taken (by which process, when this
// host tells it cheaply), the address is not this host's, or the port is a
// privileged one. ok is false for other errors, returned as they are.
//
// The same command could run with another flag value, or later: it is a
// runtime failure (exit 1), as a data dir held by another process is, not
// a usage error; broker, serve and agent --metrics-listen say so alike.
func bindError(err error, flag, addr string) (_ error, ok bool) {
	switch {
	case err == nil:
		return nil, false
	case errors.Is(err, syscall.EADDRINUSE):
		by := "another process"
		if h := portHolder(addr); h != "" {
			by = h
		}
		return fmt.Errorf("%s %s: %w by %s: stop it, or give another %s HOST:PORT", flag, addr, syscall.EADDRINUSE, by, flag), true
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s %s: %w: it is not an address of this host; give one of its own (127.0.0.1:PORT, or 0.0.0.0:PORT for all)", flag, addr, syscall.EADDRNOTAVAIL), true
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%s %s: %w: a port below 1024 needs root (or CAP_NET_BIND_SERVICE); give a port from 1024 up", flag, addr, syscall.EACCES), true
	}
	return err, false
}
