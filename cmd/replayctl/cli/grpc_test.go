package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/replayctl/replayctl/internal/grpctest"
)

// TestGRPCLiveRecordReplay records a bounded gRPC client loop (unary,
// server-streaming and bidirectional calls over one HTTP/2 connection) with a live capture on
// lo, with bidirectional streaming calls (grpc-go's reflection service),
// then replays the window to a second gRPC server: every call arrives
// with the same method, metadata and request bytes, the recorded and the
// replayed answers are compared with the health service's descriptor set,
// and the one field the second server answers differently is found by its
// JSON path.
func TestGRPCLiveRecordReplay(t *testing.T) {
	t.Parallel()
	a, err := grpctest.Start("")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	b, err := grpctest.Start("svc-7")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	port := a.Addr()[strings.LastIndexByte(a.Addr(), ':')+1:]
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	f := write(t, dir, "grpc.yaml", fmt.Sprintf(`version: 1
name: grpc
topics:
  traffic: {name: grpc-traffic, create: true}
jobs:
  record:
    source: {capture: {interface: lo, ports: [%s], responses: true}}
    filter: 'req.proto == "HTTP/2.0" && req.header("x-tenant") == "acme"'
    sink: {kafka: {topic: traffic}}
    stop: {after: 60s}
    save-window: grpc
  replay:
    source: {window: grpc}
    speed: max
    sink: {http: {url: "http://%s", workers: 4, max-streams: 8}}
    compare: {status: true, body: true, grpc: {descriptors: health.binpb}}
    report: {json: report.json, html: report.html}
    assert:
      - 'protocols["HTTP/2.0"].requests.sent == 46 && protocols["HTTP/2.0"].errors.count == 0'
      - 'grpc["/grpc.health.v1.Health/Check"].grpc_status[5] == 4 && grpc["/grpc.health.v1.Health/Watch"].requests.ok == 3'
      - 'grpc["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"].grpc_status[0] == 3'
`, port, b.Addr()))
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{protodesc.ToFileDescriptorProto(grpc_health_v1.File_grpc_health_v1_health_proto)}}
	desc, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	write(t, dir, "health.binpb", string(desc))
	p := startCapture(t, "", nil, 300*time.Millisecond, "run", f, "--job", "record", "-v", "--data-dir", data)
	cmd, stdout, stderr := p.cmd, &p.stdout, &p.stderr
	const unary, streams = 40, 3
	if err := grpctest.Load(context.Background(), a.Addr(), unary, streams); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 20*time.Second); code != 0 {
		t.Fatalf("record: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	const n = unary + 2*streams // Watch and bidirectional reflection calls
	w := readWindow(t, data, "grpc")
	if w["requests"] != float64(n) || w["messages"] != float64(2*n) {
		t.Fatalf("window %v, want %d requests and %d messages\nstdout:\n%s", w, n, 2*n, stdout.String())
	}

	r := mustRun(t, ExitOK, "run", f, "--job", "replay", "--data-dir", data)
	keysA, callsA := grpctest.BySeq(a.Calls())
	keysB, callsB := grpctest.BySeq(b.Calls())
	if len(keysA) != n || strings.Join(keysA, ",") != strings.Join(keysB, ",") {
		t.Fatalf("server A saw %d calls %v, server B %d %v\n%s", len(keysA), keysA, len(keysB), keysB, r.stdout)
	}
	for _, k := range keysA {
		ca, cb := callsA[k], callsB[k]
		if ca.Method != cb.Method || !bytes.Equal(ca.Request, cb.Request) || ca.Metadata["x-tenant"] != cb.Metadata["x-tenant"] ||
			ca.Metadata["content-type"] != cb.Metadata["content-type"] || ca.Metadata["user-agent"] != cb.Metadata["user-agent"] {
			t.Errorf("call %s: recorded %+v, replayed %+v", k, ca, cb)
		}
	}
	t.Log(r.stdout)
	rep := readJSON(t, filepath.Join(dir, "report.json"))
	diff := rep["diff"].(map[string]any)
	if diff["compared"] != float64(n) || diff["mismatches"] != float64(1) {
		t.Errorf("diff: compared %v, mismatches %v; want %d and 1\n%s", diff["compared"], diff["mismatches"], n, r.stdout)
	}
	if !strings.Contains(r.stdout, "$.status") {
		t.Errorf("the diff does not name the changed field $.status:\n%s", r.stdout)
	}
	check := rep["grpc"].(map[string]any)["/grpc.health.v1.Health/Check"].(map[string]any)
	if check["grpc_status"].(map[string]any)["0"] != float64(36) || check["requests"].(map[string]any)["sent"] != float64(unary) {
		t.Errorf("report grpc breakdown: %v", rep["grpc"])
	}
	if !strings.Contains(r.stdout, "grpc      /grpc.health.v1.Health/Check: sent 40  errors 0") {
		t.Errorf("summary without the gRPC method lines:\n%s", r.stdout)
	}
	if html, err := os.ReadFile(filepath.Join(dir, "report.html")); err != nil || !bytes.Contains(html, []byte("/grpc.health.v1.Health/Watch")) || !bytes.Contains(html, []byte("0: 36, 5: 4")) {
		t.Errorf("the HTML report has no gRPC method rows (%v)", err)
	}
	counters := rep["counters"].(map[string]any)
	if counters["sink.h2.grpc-status-5"] != float64(unary/10) || counters["sink.h2.ok"] != float64(n) {
		t.Errorf("counters: %v", counters)
	}
}
