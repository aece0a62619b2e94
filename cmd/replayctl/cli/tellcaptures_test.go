package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/capture"
)

// TestTellCapturesEveryLoss: a process quitting at once (a second Ctrl-C)
// says what each live capture lost before by every cause its record job's
// summary counts, in their units: it said only kernel-drops and
// queue-overflow, not the packets cut by the snaplen, the holes, the
// fragments that never came, the messages whose header block was too long.
// A capture that holds nothing and lost nothing is not mentioned.
func TestTellCapturesEveryLoss(t *testing.T) {
	var out bytes.Buffer
	tellCaptures(&out, []capture.Pending{
		{Interface: "eth0", Requests: 2, Packets: 5, Stats: capture.Stats{
			"kernel-drops": 3, "queue-overflow": 1, "snaplen-cut": 2, "holes": 4, "gaps": 6,
			"fragments-incomplete": 1, "header-too-long": 1, "streams-dropped": 7, "packets": 100,
		}},
		{Interface: "eth1", Stats: capture.Stats{"snaplen-cut": 1, "packets": 10}},
		{Interface: "eth2", Stats: capture.Stats{"packets": 10, "gaps": 1}},
	})
	got := out.String()
	for _, want := range []string{
		"the capture on eth0 loses 2 requests",
		"it had lost before: capture-gaps 4 holes, fragments-incomplete 1 packet, header-too-long 1 message, kernel-drops 3 packets, queue-overflow 1 packet, snaplen-cut 2 packets, streams-dropped 7 connections\n",
		"the capture on eth1 loses 0 requests and 0 responses (0 B) parsed but not yet handed to the sink, and 0 packets read but not yet parsed (no count below includes them); it had lost before: snaplen-cut 1 packet\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the message does not say %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "eth2") {
		t.Errorf("a capture that holds and lost nothing is mentioned:\n%s", got)
	}
}
