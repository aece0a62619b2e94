package fleet_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/kafkaio/kafkatest"
)

// TestFleetDocumentedACLs runs the fleet on a broker that authorizes
// every request, with the ACLs of docs/fleet.md ("Kafka ACLs per role")
// and no Create for anyone: the topics were created ahead of time by an
// admin, as the docs say to do then. An agent, a submitter and a reader,
// each with its own principal, record a window and replay it. Kafka
// refuses CreateTopics to a principal without Create even for a topic
// that exists: every process failed at its start.
func TestFleetDocumentedACLs(t *testing.T) {
	const data = "fleet-acl-http"
	r, w, d := kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe
	var agent, submitter, reader []kfake.ACL
	for _, g := range []struct {
		acls  *[]kfake.ACL
		topic string
		ops   []kmsg.ACLOperation
	}{
		{&agent, fleet.AgentsTopic, []kmsg.ACLOperation{d, r, w}},
		{&agent, fleet.StatusTopic, []kmsg.ACLOperation{d, r, w}},
		{&agent, fleet.JobsTopic, []kmsg.ACLOperation{d, r}},
		{&agent, data, []kmsg.ACLOperation{d, r, w}},
		{&agent, catalog.DefaultTopic, []kmsg.ACLOperation{d, r, w}},
		{&submitter, fleet.JobsTopic, []kmsg.ACLOperation{d, r, w}},
		{&submitter, fleet.StatusTopic, []kmsg.ACLOperation{d, r, w}},
		{&submitter, fleet.AgentsTopic, []kmsg.ACLOperation{d, r}},
		{&submitter, catalog.DefaultTopic, []kmsg.ACLOperation{d, r}},
		{&submitter, data, []kmsg.ACLOperation{d, r}},
		{&reader, fleet.AgentsTopic, []kmsg.ACLOperation{d, r}},
		{&reader, fleet.StatusTopic, []kmsg.ACLOperation{d, r}},
		{&reader, fleet.JobsTopic, []kmsg.ACLOperation{d, r}},
	} {
		*g.acls = append(*g.acls, kafkatest.TopicACL(g.topic, g.ops...)...)
	}
	at := kafkatest.ACLs(t, map[string][]kfake.ACL{"agent": agent, "submitter": submitter, "reader": reader})
	for _, u := range []string{"admin", "agent", "submitter", "reader"} {
		t.Setenv("PW_"+strings.ToUpper(u), at.Password(u))
	}
	e := setup(t, "none")
	e.brokers = at.Addrs[0]
	as := func(user string, args ...string) []string {
		return append(args, "--brokers", e.brokers, "--sasl-mechanism", "PLAIN", "--sasl-user", user, "--sasl-password-env", "PW_"+strings.ToUpper(user))
	}
	work := filepath.Join(e.dir, "work")
	pcap := stagePcap(t, work)
	file := e.write(t, "acl.yaml", pcapScenario("fleet-acl"))

	// Each principal without Create, before the topics exist: a clear
	// refusal, naming the topic and the fix.
	out, code := bin.Run(t, e.dir, as("reader", "agents", "ls")...)
	if code == 0 || !strings.Contains(out, "this principal may not create it (no Create ACL): create it ahead of time, or grant Create") {
		t.Fatalf("agents ls as reader, no topics yet: exit %d\n%s", code, out)
	}

	// The admin creates the topics ahead of time: the fleet's as any
	// fleet command does, the catalog and the data topic as
	// kafka-topics.sh --create would.
	if out, code := bin.Run(t, e.dir, as("admin", "agents", "ls")...); code != 0 {
		t.Fatalf("agents ls as admin: exit %d\n%s", code, out)
	}
	at.CreateTopic(t, catalog.DefaultTopic, 1, map[string]string{"cleanup.policy": "compact"})
	at.CreateTopic(t, data, 2, nil)

	bin.Start(t, e.dir, as("agent", "agent", "--name", "acl-"+e.suffix, "--labels", "role=acl-"+e.suffix, "--allow", "record,replay",
		"--trust", e.pub, "--work-dir", work, "--allow-targets", "127.0.0.1:*", "--var", "PCAP="+pcap)...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, _ := bin.Run(t, e.dir, as("reader", "agents", "ls")...)
		if regexp.MustCompile(`acl-` + e.suffix + `\s.*alive`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not alive with the documented ACLs:\n%s", out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	out, code = bin.Run(t, e.dir, as("submitter", "jobs", "submit", file, "--job", "record", "--on", "role=acl-"+e.suffix, "--key", e.key, "--wait")...)
	if code != 0 || !strings.Contains(out, "recorded: 200 requests, 200 responses") || !strings.Contains(out, `window "fleet-acl" saved`) {
		t.Fatalf("record with the documented ACLs: exit %d\n%s", code, out)
	}
	// Without DescribeConfigs on the data topic, the record job says what
	// it could not check.
	// (the job's log, as jobs logs shows it).
	recID := regexp.MustCompile(`submitted (\S+)`).FindStringSubmatch(out)
	if recID == nil {
		t.Fatalf("no job ID in:\n%s", out)
	}
	if log, code := bin.Run(t, e.dir, as("reader", "jobs", "logs", recID[1])...); code != 0 || !strings.Contains(log, "lacks the DescribeConfigs ACL") {
		t.Errorf("jobs logs %s (exit %d) does not say the data topic's configs could not be read:\n%s", recID[1], code, log)
	}
	out, code = bin.Run(t, e.dir, as("submitter", "jobs", "submit", file, "--job", "replay", "--on", "role=acl-"+e.suffix, "--key", e.key, "--wait")...)
	if code != 0 || !strings.Contains(out, "merged: sent 200, ok 200, errors 0") {
		t.Fatalf("replay with the documented ACLs: exit %d\n%s", code, out)
	}
	if out, code := bin.Run(t, e.dir, as("reader", "jobs", "ls")...); code != 0 || !strings.Contains(out, "SUCCEEDED") {
		t.Errorf("jobs ls as reader: exit %d\n%s", code, out)
	}
}
