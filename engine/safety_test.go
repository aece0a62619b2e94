package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// sfSecretTraffic writes a .gor file whose requests and responses carry one
// secret of every kind redaction knows, and returns the secrets.
func sfSecretTraffic(t *testing.T, dir string) (string, []string) {
	t.Helper()
	secrets := []string{
		"Bearer s3cr3t-token-AAAA", // Authorization (default list)
		"session=cookie-BBBB",      // Cookie (default list)
		"set-cookie-CCCC",          // Set-Cookie (default list, response)
		"apikey-DDDD",              // X-Api-Key (default list)
		"xsession-EEEE",            // a header named in the scenario
		"querytoken-FFFF",          // a query parameter
		"formpass-GGGG",            // a form field
		"jsoncard-HHHH",            // a JSON path
		"4111111111111111",         // a card number, by pattern
	}
	form := "user=bob&password=formpass-GGGG"
	jsonBody := `{"card":{"number":"jsoncard-HHHH","exp":"12/30"},"note":"pay 4111111111111111 now"}`
	reqs := []string{
		"GET /account?token=querytoken-FFFF&page=2 HTTP/1.1\r\nHost: shop.local\r\nAuthorization: Bearer s3cr3t-token-AAAA\r\nCookie: session=cookie-BBBB\r\nX-Api-Key: apikey-DDDD\r\nX-Session: xsession-EEEE\r\n\r\n",
		"POST /login HTTP/1.1\r\nHost: shop.local\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: " + fmt.Sprint(len(form)) + "\r\n\r\n" + form,
		"POST /pay HTTP/1.1\r\nHost: shop.local\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(jsonBody)) + "\r\n\r\n" + jsonBody,
	}
	resp := "HTTP/1.1 200 OK\r\nSet-Cookie: id=set-cookie-CCCC; Path=/\r\nContent-Length: 2\r\n\r\nok"
	path := filepath.Join(dir, "secrets.gor")
	s, err := gorsink.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range reqs {
		id := fmt.Sprintf("id%d", i)
		t0 := int64(1_700_000_000_000_000_000 + i*1_000_000)
		for _, m := range []*message.Message{
			{Kind: message.Request, ID: id, Time: t0, Raw: []byte(r)},
			{Kind: message.Response, ID: id, Time: t0 + 500_000, Latency: 500_000, Raw: []byte(resp)},
		} {
			if err := s.Write(context.Background(), m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return path, secrets
}

func sfRun(t *testing.T, dir, yaml string, opts engine.Options) (string, error) {
	t.Helper()
	path := filepath.Join(dir, "scenario.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := scenario.Load(path, scenario.Options{})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var out bytes.Buffer
	opts.Out, opts.Err = &out, io.Discard
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if opts.DataDir == "" {
		opts.DataDir = filepath.Join(dir, "data")
	}
	plan, err := engine.Compile(s, opts)
	if err != nil {
		return out.String(), err
	}
	err = plan.Run(context.Background())
	return out.String(), err
}

// TestRecordedSecretsNeverReachKafka records traffic carrying every kind of
// secret, dumps the topic with kcat and finds none of them; hashed values
// are equal for equal inputs, and bodies keep valid lengths.
func TestRecordedSecretsNeverReachKafka(t *testing.T) {
	kcat := kafkatest.RequireTool(t, "kcat")
	for _, target := range kafkatest.Brokers(t) {
		t.Run(target.Name, func(t *testing.T) {
			dir := t.TempDir()
			gorPath, secrets := sfSecretTraffic(t, dir)
			topic := kafkatest.UniqueTopic(t)
			for _, mode := range []string{"mask", "hash"} {
				yaml := fmt.Sprintf(`version: 1
name: secrets
kafka: {brokers: [%s], catalog-topic: %s.windows}
topics:
  traffic: {name: %s-%s, partitions: 1, create: true}
jobs:
  record:
    source: {gor: {path: %s}}
    redact:
      headers: [X-Session]
      query: [token]
      form: [password]
      json: ["$.card.number"]
      patterns: ['\b\d{16}\b']
      mode: %s
      key: "k3y"
    sink: {kafka: {topic: traffic}}
    save-window: w-%s
`, strings.Join(target.Addrs, ","), topic, topic, mode, gorPath, mode, mode)
				if out, err := sfRun(t, dir, yaml, engine.Options{}); err != nil {
					t.Fatalf("%s: run: %v\n%s", mode, err, out)
				}
				dump, err := exec.Command(kcat, "-C", "-b", target.Addrs[0], "-t", topic+"-"+mode, "-o", "beginning", "-e", "-q", "-f", "%h|%s\n").CombinedOutput()
				if err != nil {
					t.Fatalf("kcat: %v\n%s", err, dump)
				}
				if n := bytes.Count(dump, []byte("HTTP/1.1")); n != 6 {
					t.Fatalf("%s: kcat read %d HTTP messages, want 6:\n%s", mode, n, dump)
				}
				for _, secret := range secrets {
					// The cookie's and the card's distinctive parts.
					needle := secret
					if i := strings.LastIndex(secret, "-"); i > 0 {
						needle = secret[i+1:]
					}
					if bytes.Contains(dump, []byte(needle)) {
						t.Errorf("%s: secret %q found in the topic:\n%s", mode, secret, dump)
					}
				}
				if mode == "hash" {
					// The same Set-Cookie value in three responses hashes to one digest.
					var digests = map[string]int{}
					for _, line := range strings.Split(string(dump), "\n") {
						if i := strings.Index(line, "Set-Cookie: id="); i >= 0 {
							v := line[i+len("Set-Cookie: id="):]
							v = v[:strings.IndexByte(v, ';')]
							digests[v]++
						}
					}
					if len(digests) != 1 {
						t.Errorf("Set-Cookie digests = %v, want one value three times", digests)
					}
					for d := range digests {
						if !strings.HasPrefix(d, "hmac:") {
							t.Errorf("Set-Cookie digest %q, want hmac:…", d)
						}
					}
				}
			}
		})
	}
}

// TestDeniedTargetSendsNothing: a replay to a target in safety.deny-targets
// fails compilation with the target's position, and the target sees nothing.
func TestDeniedTargetSendsNothing(t *testing.T) {
	dir := t.TempDir()
	gorPath, _ := sfSecretTraffic(t, dir)
	yaml := fmt.Sprintf(`version: 1
name: denied
targets:
  prod: {url: "http://127.0.0.1:1/"}
safety:
  deny-targets: [127.0.0.0/8]
jobs:
  replay:
    source: {gor: {path: %s}}
    speed: max
    sink: {http: {target: prod}}
`, gorPath)
	_, err := sfRun(t, dir, yaml, engine.Options{})
	var diags scenario.Diagnostics
	if !errors.As(err, &diags) || len(diags) != 1 || !strings.Contains(diags[0].Message, "deny-targets") || diags[0].Line != 4 {
		t.Fatalf("error = %v, want one diagnostic at line 4 naming deny-targets", err)
	}
}

// TestConnectionKeysNeedTheOpenModel: min-connections and max-connections
// on a speed-max replay (the closed model) would be ignored; each is an
// error at its line instead.
func TestConnectionKeysNeedTheOpenModel(t *testing.T) {
	tests := []struct{ key, want string }{
		{"min-connections", "min-connections opens the open model's connections ahead"},
		{"max-connections", "max-connections caps the open model"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			dir := t.TempDir()
			gorPath, _ := sfSecretTraffic(t, dir)
			yaml := fmt.Sprintf(`version: 1
name: model
jobs:
  replay:
    source: {gor: {path: %s}}
    speed: max
    sink: {http: {url: "http://127.0.0.1:9", %s: 100}}
`, gorPath, tt.key)
			_, err := sfRun(t, dir, yaml, engine.Options{})
			var diags scenario.Diagnostics
			if !errors.As(err, &diags) || len(diags) != 1 || !strings.Contains(diags[0].Message, tt.want) || diags[0].Line != 7 {
				t.Fatalf("error = %v, want one diagnostic at line 7: %s", err, tt.want)
			}
		})
	}
}
