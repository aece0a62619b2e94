// Command fixtool is the loopback HTTP server and clients that
// make-fixtures.sh drives to produce the capture test fixtures. The server
// records every byte each connection read and wrote into a golden JSON file,
// so tests can compare the captured messages with what was really sent.
//
//	fixtool serve -addr 127.0.0.1:18080 -golden x.golden.json   (until SIGINT)
//	fixtool pipeline -addr 127.0.0.1:18080 -paths /a,/b,/c      (one write, then read all)
//	fixtool load -addr 127.0.0.1:8080 -conns 4 -n 50 -every 100ms
//	fixtool synth -out DIR                                      (the synth-*.pcap fixtures)
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

type record struct {
	Client string `json:"client"`
	C2S    []byte `json:"c2s"`
	S2C    []byte `json:"s2c"`
	mu     sync.Mutex
}

type teeConn struct {
	net.Conn
	rec *record
}

func (c teeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.mu.Lock()
	c.rec.C2S = append(c.rec.C2S, b[:n]...)
	c.rec.mu.Unlock()
	return n, err
}

func (c teeConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.rec.mu.Lock()
	c.rec.S2C = append(c.rec.S2C, b[:n]...)
	c.rec.mu.Unlock()
	return n, err
}

type teeListener struct {
	net.Listener
	mu   sync.Mutex
	recs []*record
}

func (l *teeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	r := &record{Client: c.RemoteAddr().String()}
	l.mu.Lock()
	l.recs = append(l.recs, r)
	l.mu.Unlock()
	return teeConn{c, r}, nil
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Trailer", "X-Body-Length")
		w.Header().Set("Content-Type", "text/plain")
		for i := range 3 {
			fmt.Fprintf(w, "part %d of the answer\n", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Body-Length", fmt.Sprint(len(body)))
	})
	mux.HandleFunc("/stream", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "line %d\n", i)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/204", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		w.WriteHeader(http.StatusNotModified)
	})
	mux.HandleFunc("/large", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "20000")
		w.Write([]byte(strings.Repeat("0123456789", 2000)))
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"ok":true}`))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"method":%q,"path":%q,"received":%d}`, r.Method, r.URL.Path, n)
	})
	return mux
}

func serve(addr, golden string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	tl := &teeListener{Listener: ln}
	srv := &http.Server{Handler: handler()}
	go srv.Serve(tl)
	fmt.Println("ready")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	out, err := json.MarshalIndent(tl.recs, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(golden, append(out, '\n'), 0o644)
}

// pipeline writes all requests in one write, then reads all responses.
func pipeline(addr, paths string) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	var b strings.Builder
	ps := strings.Split(paths, ",")
	for _, p := range ps {
		fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: fixtool\r\n\r\n", p, addr)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return err
	}
	br := bufio.NewReader(c)
	for range ps {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}

// load runs conns keep-alive connections, each sending n requests, one
// every interval.
func load(addr string, conns, n int, every time.Duration) error {
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
			paths := []string{"/api/items", "/api/users/42", "/api/cart", "/health"}
			for j := range n {
				var resp *http.Response
				var err error
				if j%5 == 4 {
					resp, err = cl.Post("http://"+addr+"/api/orders", "application/json",
						strings.NewReader(fmt.Sprintf(`{"item":%d,"qty":%d}`, j, i+1)))
				} else {
					resp, err = cl.Get("http://" + addr + paths[(i+j)%len(paths)])
				}
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				time.Sleep(every)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func main() {
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18080", "address")
	golden := fs.String("golden", "golden.json", "golden file (serve)")
	paths := fs.String("paths", "/a,/b,/c", "paths (pipeline)")
	conns := fs.Int("conns", 4, "connections (load)")
	n := fs.Int("n", 50, "requests per connection (load)")
	every := fs.Duration("every", 100*time.Millisecond, "interval (load)")
	out := fs.String("out", ".", "directory of the synthetic fixtures (synth)")
	fs.Parse(os.Args[2:])
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(*addr, *golden)
	case "pipeline":
		err = pipeline(*addr, *paths)
	case "load":
		err = load(*addr, *conns, *n, *every)
	case "synth":
		err = writeSynth(*out)
	default:
		err = fmt.Errorf("unknown mode %q", os.Args[1])
	}
	if err != nil {
		log.Fatal(err)
	}
}
