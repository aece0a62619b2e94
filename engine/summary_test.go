package engine

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/scenario"
)

// TestSummarySaysWhyRequestsWaited: a replay whose requests waited for a
// connection says so, and why, in its summary, not only in a counter.
func TestSummarySaysWhyRequestsWaited(t *testing.T) {
	tests := []struct {
		name     string
		counters map[string]int64
		want     []string
		not      []string
	}{
		{"none waited", map[string]int64{"sink.sent": 10}, nil, []string{"pool-exhausted", "connections-bounded", "no request sent"}},
		{"none sent, by the scenario's choice", map[string]int64{"filtered": 3, "sampled-out": 2},
			[]string{"no request sent: the filter dropped 3, the sample left out 2"}, nil},
		{"at max-connections", map[string]int64{"sink.pool-exhausted": 7, "sink.max-connections": 100},
			[]string{"pool-exhausted 7: requests that waited for a connection (all 100 busy)"}, []string{"connections-bounded 0"}},
		{"bounded by the schedule's need", map[string]int64{"sink.connections-bounded": 42},
			[]string{"connections-bounded 42: requests that waited for a busy connection", "lateness"}, []string{"pool-exhausted"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printSummary(&b, &jobResult{job: &scenario.Job{Name: "replay"}, replay: true, counters: tt.counters})
			out := b.String()
			body, _, _ := strings.Cut(out, "counters")
			for _, w := range tt.want {
				if !strings.Contains(body, w) {
					t.Errorf("summary lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(body, w) {
					t.Errorf("summary says %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestSummarySpooledNotAllDelivered: a record job whose spooled records
// were still waiting at the delivery timeout (taken out of the spool and
// counted undeliverable) does not say they were all delivered.
func TestSummarySpooledNotAllDelivered(t *testing.T) {
	for _, tt := range []struct {
		name     string
		counters map[string]int64
		want     string
	}{
		{"delivered", map[string]int64{"sink.spooled": 50}, "all were delivered"},
		{"damaged", map[string]int64{"sink.spooled": 50, "sink.spool-records": 7, "sink.failed": 7}, "7 could not be read back from it (damaged: see the log) and were not sent (undeliverable)"},
		{"undeliverable", map[string]int64{"sink.spooled": 50, "sink.failed": 30}, "not all reached Kafka: 30 record(s) undeliverable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			printSummary(&b, &jobResult{job: &scenario.Job{Name: "record"}, counters: tt.counters, lost: lostCounts(tt.counters)})
			out := b.String()
			line := out[strings.Index(out, "spooled"):]
			line, _, _ = strings.Cut(line, "\n")
			if !strings.Contains(line, tt.want) {
				t.Fatalf("spooled line %q, want %q\n%s", line, tt.want, out)
			}
		})
	}
}
