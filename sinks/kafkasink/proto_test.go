package kafkasink_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/kafkasink"
)

// TestRecordProtoHeader: a message captured from HTTP/2 says so in a
// record header; an HTTP/1.x one has no such header.
func TestRecordProtoHeader(t *testing.T) {
	for _, tt := range []struct{ raw, want string }{
		{"POST /pkg.Svc/M HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/2.0"},
		{"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/2.0"},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", ""},
	} {
		r := kafkasink.Record("t", &message.Message{Kind: message.Request, ID: "x", Raw: []byte(tt.raw)}, "", "")
		got := ""
		for _, h := range r.Headers {
			if h.Key == kafkasink.HeaderProto {
				got = string(h.Value)
			}
		}
		if got != tt.want {
			t.Errorf("%q: %s = %q, want %q", tt.raw, kafkasink.HeaderProto, got, tt.want)
		}
	}
}

// TestKcatReadsH2: kcat reads an HTTP/2 message as the text of h2text's
// form, with its protocol header.
func TestKcatReadsH2(t *testing.T) {
	raw, err := h2text.AppendRequest(nil, []h2text.Field{{Name: ":method", Value: "POST"}, {Name: ":path", Value: "/grpc.health.v1.Health/Check"},
		{Name: ":authority", Value: "127.0.0.1:50051"}, {Name: "content-type", Value: "application/grpc"}, {Name: "grpc-timeout", Value: "1S"}},
		[]byte("\x00\x00\x00\x00\x07\n\x05svc-0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &message.Message{Kind: message.Request, ID: "0123456789abcdef01234567", ConnID: "10.0.0.1:40000-10.0.0.2:50051-1", Time: 1_700_000_000_000_000_000, Raw: raw}
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			kcat := kafkatest.RequireTool(t, "kcat")
			if kcat == "" {
				return
			}
			topic := kafkatest.CreateTopic(t, target, 1)
			s := kafkasink.New(newClient(t, target, "none", 10*time.Second), topic, kafkasink.Options{Logger: quiet})
			if err := s.Write(ctxT(t), m); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			out, err := exec.CommandContext(ctxT(t), kcat, "-C", "-b", target.Addrs[0], "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%h\n%s\n").CombinedOutput()
			if err != nil {
				t.Fatalf("kcat: %v\n%s", err, out)
			}
			for _, want := range []string{"replayctl-proto=HTTP/2.0", "\nPOST /grpc.health.v1.Health/Check HTTP/2.0\r\nHost: 127.0.0.1:50051\r\ncontent-type: application/grpc\r\ngrpc-timeout: 1S\r\n"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("kcat output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}
