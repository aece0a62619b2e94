package compare

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/replayctl/replayctl/h2text"
)

// healthDescriptors writes the descriptor set of grpc.health.v1.
func healthDescriptors(t *testing.T) string {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(grpc_health_v1.File_grpc_health_v1_health_proto)}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "health.binpb")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// grpcAnswer renders a gRPC answer carrying the statuses as messages.
func grpcAnswer(t *testing.T, code string, statuses ...grpc_health_v1.HealthCheckResponse_ServingStatus) []byte {
	t.Helper()
	var body []byte
	for _, s := range statuses {
		m, _ := proto.Marshal(&grpc_health_v1.HealthCheckResponse{Status: s})
		body = append(body, 0, 0, 0, 0, byte(len(m)))
		body = append(body, m...)
	}
	raw, err := h2text.AppendResponse(nil, []h2text.Field{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "application/grpc"}},
		body, []h2text.Field{{Name: "grpc-status", Value: code}, {Name: "grpc-message", Value: ""}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestGRPC(t *testing.T) {
	desc := healthDescriptors(t)
	const check, watch = "/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"
	serving, notServing := grpc_health_v1.HealthCheckResponse_SERVING, grpc_health_v1.HealthCheckResponse_NOT_SERVING
	tests := []struct {
		name     string
		cfg      Config
		path     string
		rec, rep []byte
		want     []Diff
	}{
		{"same", Config{Status: true, Body: true, GRPCDescriptors: desc}, check, grpcAnswer(t, "0", serving), grpcAnswer(t, "0", serving), nil},
		{"field changed", Config{Status: true, Body: true, GRPCDescriptors: desc}, check, grpcAnswer(t, "0", serving), grpcAnswer(t, "0", notServing),
			[]Diff{{Kind: KindFieldChanged, Path: "$.status", Recorded: `"SERVING"`, Replayed: `"NOT_SERVING"`}}},
		{"field ignored", Config{Status: true, Body: true, GRPCDescriptors: desc, Ignore: []string{"$.status"}}, check, grpcAnswer(t, "0", serving), grpcAnswer(t, "0", notServing), nil},
		{"stream", Config{Status: true, Body: true, GRPCDescriptors: desc}, watch, grpcAnswer(t, "0", serving, serving), grpcAnswer(t, "0", serving, notServing),
			[]Diff{{Kind: KindFieldChanged, Path: "$[1].status", Recorded: `"SERVING"`, Replayed: `"NOT_SERVING"`}}},
		{"grpc status", Config{Status: true, Body: false}, check, grpcAnswer(t, "0", serving), grpcAnswer(t, "14"),
			[]Diff{{Kind: KindStatus, Path: "grpc-status", Recorded: "0", Replayed: "14"}}},
		{"no descriptors: bytes", Config{Body: true}, check, grpcAnswer(t, "0", serving), grpcAnswer(t, "0", notServing),
			[]Diff{{Kind: KindBodyBytes, Path: "body"}}},
		{"unknown method: bytes", Config{Body: true, GRPCDescriptors: desc}, "/x.Y/Z", grpcAnswer(t, "0", serving), grpcAnswer(t, "0", notServing),
			[]Diff{{Kind: KindBodyBytes, Path: "body"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := c.CompareRequest(tt.path, tt.rec, tt.rep)
			if len(res.Diffs) != len(tt.want) {
				t.Fatalf("diffs %+v, want %+v", res.Diffs, tt.want)
			}
			for i, w := range tt.want {
				g := res.Diffs[i]
				if g.Kind != w.Kind || g.Path != w.Path || w.Kind != KindBodyBytes && (g.Recorded != w.Recorded || g.Replayed != w.Replayed) {
					t.Errorf("diff %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
	if _, err := New(Config{GRPCDescriptors: filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Error("a missing descriptor file is accepted")
	}
	bad := filepath.Join(t.TempDir(), "bad")
	_ = os.WriteFile(bad, []byte("not a descriptor set"), 0o644)
	if _, err := New(Config{GRPCDescriptors: bad}); err == nil {
		t.Error("a bad descriptor file is accepted")
	}
}
