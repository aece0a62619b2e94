package fleet_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// pcapScenario records the quickstart pcap into the topic named name+"-http"
// and saves window name, and replays that window to the builtin echo
// target, asserting 200 requests sent and no error.
func pcapScenario(name string) string {
	return strings.NewReplacer("NAME", name).Replace(`version: 1
name: NAME
kafka: {brokers: [embedded]}
topics:
  traffic: {name: NAME-http, partitions: 2, create: true}
targets:
  echo: {url: "builtin:echo", timeout: 2s}
jobs:
  record:
    source: {pcap: {path: "${PCAP}", ports: [8080], responses: true}}
    sink: {kafka: {topic: traffic}}
    save-window: NAME
  replay:
    source: {window: NAME}
    speed: max
    sink: {http: {target: echo, workers: 8}}
    assert: ['requests.sent == 200', 'errors.rate == 0']
`)
}

// stagePcap makes the agent's work directory work and copies the
// quickstart pcap into it; it returns the copy's path.
func stagePcap(t *testing.T, work string) string {
	t.Helper()
	if err := os.MkdirAll(work, 0o700); err != nil {
		t.Fatal(err)
	}
	pcap, err := os.ReadFile("../examples/quickstart.pcap")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(work, "quickstart.pcap")
	if err := os.WriteFile(path, pcap, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestFleetSecure runs an agent, a record job and a replay job against a
// broker that requires TLS and SASL (SCRAM-SHA-512): the bus and the jobs'
// data go over the agent's own secure connection.
func TestFleetSecure(t *testing.T) {
	const mech = "SCRAM-SHA-512"
	sec := kafkatest.Secure(t)
	t.Setenv("REPLAYCTL_SASL_PASSWORD", sec.Password(mech))
	e := setup(t, "none") // keys only: the broker is the secure one
	e.brokers = sec.Addrs[0]
	conn := []string{"--brokers", e.brokers, "--tls-ca", sec.CAFile, "--sasl-mechanism", mech, "--sasl-user", sec.User(mech)}
	work := filepath.Join(e.dir, "work", "both")
	pcap := stagePcap(t, work)
	bin.Start(t, e.dir, append([]string{"agent", "--name", "both-" + e.suffix, "--labels", "role=both-" + e.suffix, "--allow", "record,replay",
		"--trust", e.pub, "--work-dir", work, "--allow-targets", "127.0.0.1:*", "--var", "PCAP=" + pcap}, conn...)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := bin.Run(t, e.dir, append([]string{"agents", "ls"}, conn...)...)
		if regexp.MustCompile(`both-` + e.suffix + `\s.*alive`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not alive over TLS/SASL:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	file := e.write(t, "secure.yaml", pcapScenario("fleet-secure"))
	out, code := bin.Run(t, e.dir, append([]string{"jobs", "submit", file, "--job", "record", "--on", "role=both-" + e.suffix, "--key", e.key, "--wait"}, conn...)...)
	if code != 0 || !strings.Contains(out, "recorded: 200 requests, 200 responses") || !strings.Contains(out, `window "fleet-secure" saved`) {
		t.Fatalf("record over TLS/SASL: exit %d\n%s", code, out)
	}
	out, code = bin.Run(t, e.dir, append([]string{"jobs", "submit", file, "--job", "replay", "--on", "role=both-" + e.suffix, "--key", e.key, "--wait"}, conn...)...)
	if code != 0 || !strings.Contains(out, "merged: sent 200, ok 200, errors 0") {
		t.Fatalf("replay over TLS/SASL: exit %d\n%s", code, out)
	}
}
