// Package grpctest runs a real gRPC server (grpc-go's health service, and
// its reflection service for bidirectional streaming) on loopback for tests
// and benchmarks: it records every call it receives (method, metadata,
// request messages) and can be told to answer one service differently, so
// that a replay to it can be checked call by call and a comparison can find
// the changed field.
package grpctest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Call is one call a Server received.
type Call struct {
	Method   string            // full method, "/grpc.health.v1.Health/Check"
	Metadata map[string]string // keys lower case, values joined by ", "
	Request  []byte            // the request message, serialized
}

// Server is a recording health server.
type Server struct {
	grpc_health_v1.UnimplementedHealthServer
	// Changed, when set, is a service whose Check answer is NOT_SERVING
	// instead of SERVING.
	Changed string
	addr    string
	srv     *grpc.Server
	mu      sync.Mutex
	calls   []Call
}

// Start listens on a free loopback port and serves until Stop.
func Start(changed string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Changed: changed, addr: ln.Addr().String()}
	s.srv = grpc.NewServer(grpc.UnaryInterceptor(s.unary), grpc.StreamInterceptor(s.stream))
	grpc_health_v1.RegisterHealthServer(s.srv, s)
	reflection.RegisterV1(s.srv)
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// Stop stops the server.
func (s *Server) Stop() { s.srv.Stop() }

// Calls returns the calls received so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// record adds a call with its request messages, serialized and
// concatenated.
func (s *Server) record(ctx context.Context, method string, reqs []byte) {
	md, _ := metadata.FromIncomingContext(ctx)
	m := map[string]string{}
	for k, v := range md {
		m[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Method: method, Metadata: m, Request: reqs})
	s.mu.Unlock()
}

func (s *Server) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	b, _ := proto.Marshal(req.(proto.Message))
	s.record(ctx, info.FullMethod, b)
	return h(ctx, req)
}

// recvStream keeps the messages a streaming call receives.
type recvStream struct {
	grpc.ServerStream
	msgs []byte
}

func (r *recvStream) RecvMsg(m any) error {
	err := r.ServerStream.RecvMsg(m)
	if err == nil {
		b, _ := proto.Marshal(m.(proto.Message))
		r.msgs = append(r.msgs, b...)
	}
	return err
}

func (s *Server) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	rs := &recvStream{ServerStream: ss}
	err := h(srv, rs)
	s.record(ss.Context(), info.FullMethod, rs.msgs)
	return err
}

// Check answers SERVING, NOT_SERVING for Changed, and NOT_FOUND for the
// service "down".
func (s *Server) Check(ctx context.Context, req *grpc_health_v1.HealthCheckRequest) (*grpc_health_v1.HealthCheckResponse, error) {
	switch req.Service {
	case "down":
		return nil, status.Error(5, "unknown service down")
	case s.Changed:
		return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &grpc_health_v1.HealthCheckResponse{Status: grpc_health_v1.HealthCheckResponse_SERVING}, nil
}

// Watch streams SERVING, NOT_SERVING, SERVING.
func (s *Server) Watch(req *grpc_health_v1.HealthCheckRequest, st grpc_health_v1.Health_WatchServer) error {
	for _, v := range []grpc_health_v1.HealthCheckResponse_ServingStatus{1, 2, 1} {
		if err := st.Send(&grpc_health_v1.HealthCheckResponse{Status: v}); err != nil {
			return err
		}
	}
	return nil
}

// Load makes unary Check calls (service "svc-<i>", every tenth "down"),
// streams server-streaming Watch calls and as many bidirectional
// reflection calls (two requests, two answers each) over one connection to
// addr, each with the metadata x-seq (a unique, sortable number) and
// x-tenant.
func Load(ctx context.Context, addr string, unary, streams int) error {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer cc.Close()
	c := grpc_health_v1.NewHealthClient(cc)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range unary {
		svc := fmt.Sprintf("svc-%d", i)
		if i%10 == 9 {
			svc = "down"
		}
		mctx := metadata.AppendToOutgoingContext(ctx, "x-seq", fmt.Sprintf("u%05d", i), "x-tenant", "acme")
		if _, err := c.Check(mctx, &grpc_health_v1.HealthCheckRequest{Service: svc}); err != nil && status.Code(err) != 5 {
			return fmt.Errorf("check %d: %w", i, err)
		}
	}
	for i := range streams {
		mctx := metadata.AppendToOutgoingContext(ctx, "x-seq", fmt.Sprintf("w%05d", i), "x-tenant", "acme")
		st, err := c.Watch(mctx, &grpc_health_v1.HealthCheckRequest{Service: "watched"})
		if err != nil {
			return fmt.Errorf("watch %d: %w", i, err)
		}
		for {
			if _, err := st.Recv(); err == io.EOF {
				break
			} else if err != nil {
				return fmt.Errorf("watch %d: %w", i, err)
			}
		}
	}
	rc := grpc_reflection_v1.NewServerReflectionClient(cc)
	for i := range streams {
		mctx := metadata.AppendToOutgoingContext(ctx, "x-seq", fmt.Sprintf("r%05d", i), "x-tenant", "acme")
		st, err := rc.ServerReflectionInfo(mctx)
		if err != nil {
			return fmt.Errorf("reflection %d: %w", i, err)
		}
		for _, req := range []*grpc_reflection_v1.ServerReflectionRequest{
			{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_ListServices{}},
			{MessageRequest: &grpc_reflection_v1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "grpc.health.v1.Health"}},
		} {
			if err := st.Send(req); err != nil {
				return fmt.Errorf("reflection %d: %w", i, err)
			}
			if _, err := st.Recv(); err != nil {
				return fmt.Errorf("reflection %d: %w", i, err)
			}
		}
		if err := st.CloseSend(); err != nil {
			return fmt.Errorf("reflection %d: %w", i, err)
		}
		if _, err := st.Recv(); err != io.EOF {
			return fmt.Errorf("reflection %d: end: %v", i, err)
		}
	}
	return nil
}

// BySeq indexes calls by their x-seq metadata, sorted keys first.
func BySeq(calls []Call) ([]string, map[string]Call) {
	m := map[string]Call{}
	var keys []string
	for _, c := range calls {
		k := c.Metadata["x-seq"]
		if _, dup := m[k]; !dup {
			keys = append(keys, k)
		}
		m[k] = c
	}
	sort.Strings(keys)
	return keys, m
}
