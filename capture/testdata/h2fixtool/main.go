// Command h2fixtool is the loopback HTTP/2 servers and the gRPC client that
// make-h2-fixtures.sh drives to produce the HTTP/2 capture fixtures. Each
// server writes what it received and answered, per request, into a golden
// JSON file, so tests compare the captured messages with what really went
// over the wire.
//
//	h2fixtool h2c -addr 127.0.0.1:28471 -golden x.golden.json    (until SIGINT)
//	h2fixtool grpc -addr 127.0.0.1:28472 -golden x.golden.json   (until SIGINT)
//	h2fixtool h2c-client -addr 127.0.0.1:28471 -n 6
//	h2fixtool grpc-client -addr 127.0.0.1:28472 -n 5 -watch 2
package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Exchange is one request as a server saw it and what it answered.
type Exchange struct {
	Seq       string            `json:"seq"` // the x-seq header (h2c) or metadata (gRPC)
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Authority string            `json:"authority"`
	Header    map[string]string `json:"header"`
	Body      []byte            `json:"body"`      // request body (h2c) or gRPC request message
	Status    int               `json:"status"`    // HTTP status
	RespBody  []byte            `json:"resp_body"` // response body (h2c) or gRPC response messages, concatenated
	Trailer   map[string]string `json:"trailer,omitempty"`
}

type golden struct {
	mu   sync.Mutex
	list []Exchange
}

func (g *golden) add(e Exchange) {
	g.mu.Lock()
	g.list = append(g.list, e)
	g.mu.Unlock()
}

func (g *golden) write(path string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	sort.Slice(g.list, func(i, j int) bool { return g.list[i].Seq < g.list[j].Seq })
	b, _ := json.MarshalIndent(g.list, "", "  ")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		log.Fatal(err)
	}
}

func flat(h map[string][]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		out[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	return out
}

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: h2fixtool h2c|grpc|grpc-client [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:28471", "listen or dial address")
	out := fs.String("golden", "", "golden JSON file to write (servers)")
	n := fs.Int("n", 5, "unary calls (grpc-client)")
	watch := fs.Int("watch", 2, "server-streaming calls (grpc-client)")
	_ = fs.Parse(os.Args[2:])
	switch os.Args[1] {
	case "h2c":
		serveH2C(*addr, *out)
	case "grpc":
		serveGRPC(*addr, *out)
	case "h2c-client":
		if err := h2cClient(*addr, *n); err != nil {
			log.Fatal(err)
		}
	case "grpc-client":
		if err := grpcClient(*addr, *n, *watch); err != nil {
			log.Fatal(err)
		}
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func waitSignal() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	fmt.Println("ready")
	<-ch
}

// serveH2C answers every request with its path, a header, and a trailer.
func serveH2C(addr, out string) {
	g := &golden{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp := fmt.Sprintf("answer to %s %s with %d bytes\n", r.Method, r.URL.Path, len(body))
		w.Header().Set("Trailer", "X-Checksum")
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Server", "h2fixtool")
		status := http.StatusOK
		if strings.HasPrefix(r.URL.Path, "/missing") {
			status = http.StatusNotFound
		}
		w.WriteHeader(status)
		w.(http.Flusher).Flush() // no Content-Length: the body ends with the trailers
		_, _ = io.WriteString(w, resp)
		w.Header().Set("X-Checksum", fmt.Sprint(len(resp)))
		seq := r.Header.Get("X-Seq")
		if seq == "" {
			seq = r.URL.Query().Get("x-seq")
		}
		g.add(Exchange{Seq: seq, Method: r.Method, Path: r.URL.RequestURI(), Authority: r.Host,
			Header: flat(r.Header), Body: body, Status: status, RespBody: []byte(resp),
			Trailer: map[string]string{"x-checksum": fmt.Sprint(len(resp))}})
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	// The smallest frame size, so that a large header block goes on in
	// CONTINUATION frames.
	srv := &http.Server{Handler: h2c.NewHandler(h, &http2.Server{MaxReadFrameSize: 16384})}
	go srv.Serve(ln)
	waitSignal()
	_ = srv.Close()
	g.write(out)
}

// healthServer answers Check with SERVING for any service but "down", and
// Watch with three updates.
type healthServer struct {
	grpc_health_v1.UnimplementedHealthServer
	g      *golden
	status grpc_health_v1.HealthCheckResponse_ServingStatus
}

func seqOf(ctx context.Context) (string, map[string]string) {
	md, _ := metadata.FromIncomingContext(ctx)
	m := flat(md)
	return m["x-seq"], m
}

func (s *healthServer) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	seq, md := seqOf(ctx)
	in, _ := proto.Marshal(req)
	e := Exchange{Seq: seq, Method: "POST", Path: "/grpc.health.v1.Health/Check", Authority: md[":authority"], Header: md, Body: in, Status: 200}
	if req.Service == "down" {
		e.Trailer = map[string]string{"grpc-status": "5", "grpc-message": "unknown service down"}
		s.g.add(e)
		return nil, status.Error(5, "unknown service down")
	}
	resp := &grpc_health_v1.HealthCheckResponse{Status: s.status}
	e.RespBody, _ = proto.Marshal(resp)
	e.Trailer = map[string]string{"grpc-status": "0"}
	s.g.add(e)
	return resp, nil
}

func (s *healthServer) Watch(req *grpc_health_v1.HealthCheckRequest, stream grpc_health_v1.Health_WatchServer) error {
	seq, md := seqOf(stream.Context())
	in, _ := proto.Marshal(req)
	e := Exchange{Seq: seq, Method: "POST", Path: "/grpc.health.v1.Health/Watch", Authority: md[":authority"], Header: md, Body: in, Status: 200,
		Trailer: map[string]string{"grpc-status": "0"}}
	for _, st := range []grpc_health_v1.HealthCheckResponse_ServingStatus{1, 2, 1} {
		resp := &grpc_health_v1.HealthCheckResponse{Status: st}
		b, _ := proto.Marshal(resp)
		e.RespBody = append(e.RespBody, b...)
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	s.g.add(e)
	return nil
}

func serveGRPC(addr, out string) {
	g := &golden{}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	srv := grpc.NewServer()
	grpc_health_v1.RegisterHealthServer(srv, &healthServer{g: g, status: grpc_health_v1.HealthCheckResponse_SERVING})
	go srv.Serve(ln)
	waitSignal()
	srv.Stop()
	g.write(out)
}

// grpcClient makes n unary Check calls (every fourth one for the unknown
// service "down") and watch server-streaming Watch calls on one connection,
// each with an x-seq metadata entry.
func grpcClient(addr string, n, watch int) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := grpc_health_v1.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		svc := fmt.Sprintf("svc-%d", i)
		if i%4 == 3 {
			svc = "down"
		}
		mctx := metadata.AppendToOutgoingContext(ctx, "x-seq", fmt.Sprintf("u%03d", i), "x-tenant", "acme")
		_, err := c.Check(mctx, &grpc_health_v1.HealthCheckRequest{Service: svc})
		if err != nil && status.Code(err) != 5 {
			return err
		}
	}
	for i := range watch {
		mctx := metadata.AppendToOutgoingContext(ctx, "x-seq", fmt.Sprintf("w%03d", i))
		st, err := c.Watch(mctx, &grpc_health_v1.HealthCheckRequest{Service: "watched"})
		if err != nil {
			return err
		}
		for {
			if _, err := st.Recv(); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
		}
	}
	return nil
}

// h2cClient sends n concurrent requests over one prior-knowledge HTTP/2
// connection, so their frames interleave: bodies of 30 kB (flow control),
// one header of 30 kB (CONTINUATION frames), request trailers on one.
func h2cClient(addr string, n int) error {
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, a string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	// One connection first, so every request is a stream on it.
	if resp, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/warmup?x-seq=c000"); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	} else {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body := strings.Repeat(fmt.Sprintf("stream %d data ", i), 30000/15)
			req, _ := http.NewRequest("PUT", fmt.Sprintf("http://%s/c/%d", addr, i), io.NopCloser(strings.NewReader(body)))
			req.ContentLength = -1
			req.Header.Set("X-Seq", fmt.Sprintf("c%03d", i+1))
			if i == 1 {
				// 30 kB that HPACK's Huffman code cannot shrink below one
				// 16 kB frame: the block goes on in CONTINUATION frames.
				big := make([]byte, 30000)
				for k := range big {
					big[k] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(k*7919+k/62)%62]
				}
				req.Header.Set("X-Big", string(big))
			}
			if i == 2 {
				req.Trailer = http.Header{"X-Request-Trailer": {"done"}}
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}
