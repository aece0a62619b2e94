package compare

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/httpraw"
	"github.com/replayctl/replayctl/jsonpath"
)

// gRPC answers (Content-Type application/grpc…) are compared on their
// status: grpc-status and grpc-message, read from the trailers (or from the
// headers of a trailers-only answer), under Config.Status. Their bodies are
// compared as bytes, or, when Config.GRPCDescriptors names a protobuf
// descriptor set (protoc --descriptor_set_out, buf build -o) holding the
// called method, decoded message by message (gRPC 5-byte framing) into JSON
// with dynamic messages, and compared as JSON: one message is the body
// ($.field), several (streaming) are an array ($[1].field). Ignore paths,
// tolerance and noise then work as for JSON bodies. Compressed gRPC
// messages are compared as bytes.

// Paths of the gRPC status diffs.
const (
	grpcStatusPath  = "grpc-status"
	grpcMessagePath = "grpc-message"
)

// loadDescriptors reads a FileDescriptorSet.
func loadDescriptors(path string) (*protoregistry.Files, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("compare: grpc descriptors: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("compare: grpc descriptors %s: not a protobuf FileDescriptorSet: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("compare: grpc descriptors %s: %w", path, err)
	}
	return files, nil
}

// isGRPC says whether a response is a gRPC answer.
func isGRPC(r *httpraw.Response) bool {
	ct, _ := r.Header("Content-Type")
	return strings.HasPrefix(strings.ToLower(strings.TrimSpace(ct)), "application/grpc")
}

// grpcField reads a gRPC status field from the trailers, else the headers.
func grpcField(r *httpraw.Response, name string) string {
	if v, ok := r.Header(h2text.TrailerPrefix + name); ok {
		return v
	}
	if v, ok := r.Header(name); ok {
		return v
	}
	return absent
}

// GRPCStatus returns a response's grpc-status ("" when it has none).
func GRPCStatus(raw []byte) string {
	r, err := httpraw.ParseResponse(raw)
	if err != nil || !isGRPC(r) {
		return ""
	}
	if v := grpcField(r, "grpc-status"); v != absent {
		return v
	}
	return ""
}

func (c *Comparer) compareGRPCStatus(d *diffs, rec, rep *httpraw.Response) {
	if !isGRPC(rec) && !isGRPC(rep) {
		return
	}
	a, b := grpcField(rec, "grpc-status"), grpcField(rep, "grpc-status")
	if a != b {
		d.add(KindStatus, grpcStatusPath, a, b)
		return
	}
	if a, b := grpcField(rec, "grpc-message"), grpcField(rep, "grpc-message"); a != b {
		d.add(KindHeader, grpcMessagePath, clipString(a), clipString(b))
	}
}

// grpcOutput finds the response message type of the method a request path
// names ("/pkg.Service/Method").
func (c *Comparer) grpcOutput(path string) protoreflect.MessageDescriptor {
	if c.protos == nil {
		return nil
	}
	svc, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok {
		return nil
	}
	d, err := c.protos.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		return nil
	}
	return md.Output()
}

// grpcJSON decodes a gRPC body into a JSON value: the one message, or an
// array of them.
func grpcJSON(md protoreflect.MessageDescriptor, b []byte) (any, error) {
	var msgs [][]byte
	for len(b) > 0 {
		if len(b) < 5 {
			return nil, fmt.Errorf("gRPC body: %d bytes left, want a 5-byte message prefix", len(b))
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if b[0] != 0 {
			return nil, fmt.Errorf("gRPC message compressed (flag %d)", b[0])
		}
		if uint64(len(b)-5) < uint64(n) {
			return nil, fmt.Errorf("gRPC body: message of %d bytes, %d left", n, len(b)-5)
		}
		msgs = append(msgs, b[5:5+n])
		b = b[5+n:]
	}
	var out bytes.Buffer
	if len(msgs) != 1 {
		out.WriteByte('[')
	}
	opts := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}
	for i, m := range msgs {
		msg := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(m, msg); err != nil {
			return nil, fmt.Errorf("gRPC message %d as %s: %w", i, md.FullName(), err)
		}
		j, err := opts.Marshal(msg)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteByte(',')
		}
		out.Write(j)
	}
	if len(msgs) != 1 {
		out.WriteByte(']')
	}
	return jsonpath.Decode(out.Bytes())
}

// compareGRPCBody compares decoded gRPC bodies; false when they cannot be
// decoded (then they are compared as bytes).
func (c *Comparer) compareGRPCBody(d *diffs, path string, rec, rep *httpraw.Response, a, b []byte) bool {
	if !isGRPC(rec) || !isGRPC(rep) {
		return false
	}
	md := c.grpcOutput(path)
	if md == nil {
		return false
	}
	va, errA := grpcJSON(md, a)
	vb, errB := grpcJSON(md, b)
	if errA != nil || errB != nil {
		return false
	}
	c.walk(d, nil, va, vb)
	return true
}
