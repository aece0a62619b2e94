// Package echo is the built-in loopback target "builtin:echo": an HTTP server
// on 127.0.0.1 that answers every request 200 with a short JSON body and
// counts what it received. The quickstart and tests replay against it.
package echo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Server is a running echo target.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	requests atomic.Int64
	bytes    atomic.Int64
}

// Start listens on addr ("127.0.0.1:0" when empty) and serves until Close.
func Start(addr string) (*Server, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("builtin:echo: %w", err)
	}
	s := &Server{ln: ln}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	s.bytes.Add(n)
	count := s.requests.Add(1)
	body := `{"ok":true,"method":` + strconv.Quote(r.Method) + `,"path":` + strconv.Quote(r.URL.Path) +
		`,"bytes":` + strconv.FormatInt(n, 10) + `,"n":` + strconv.FormatInt(count, 10) + "}\n"
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = io.WriteString(w, body)
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Requests is how many requests the server answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Close stops the server, waiting briefly for requests in flight.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return s.srv.Close()
	}
	return nil
}
