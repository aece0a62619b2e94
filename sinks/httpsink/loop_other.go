//go:build !linux

package httpsink

// loopSupported: the event loop is Linux's (epoll); elsewhere the closed
// model runs on worker goroutines.
const loopSupported = false

type evloop struct{}

func (s *Sender) startLoops() error { return nil }
func (s *Sender) wakeLoops()        {}
func (s *Sender) kickLoops()        {}
