package fleet

import (
	"testing"
	"time"
)

// TestJobRecordTime: the jobs topic is created LogAppendTime, as the
// agents topic is (a broker that honours it stamps when it appended a
// spec, whatever issue time the spec claims), and a job record read keeps
// its record's timestamp and says which clock set it.
func TestJobRecordTime(t *testing.T) {
	f := newIDFleet(t)
	rcs, err := f.bus.Admin().DescribeTopicConfigs(f.ctx, JobsTopic, AgentsTopic)
	if err != nil {
		t.Fatal(err)
	}
	for _, rc := range rcs {
		got := ""
		for _, c := range rc.Configs {
			if c.Key == "message.timestamp.type" && c.Value != nil {
				got = *c.Value
			}
		}
		if rc.Err != nil || got != "LogAppendTime" {
			t.Errorf("topic %s: message.timestamp.type %q (%v), want LogAppendTime", rc.Name, got, rc.Err)
		}
	}

	spec := replaySpec("timed-1", "load-1", "version: 1\n")
	spec.IssuedAt = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) // what a publisher may claim
	env, err := Seal("spec", spec, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.bus.Publish(f.ctx, JobsTopic, "spec/timed-1", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	jrs := f.bus.Jobs(rec.Offset)
	if len(jrs) == 0 || jrs[0].Offset != rec.Offset {
		t.Fatalf("the spec's record is not read back: %+v", jrs)
	}
	// The embedded broker keeps the producer's timestamp (CreateTime):
	// the one the record was produced with.
	if jr := jrs[0]; !jr.Timestamp.Equal(rec.Timestamp) || jr.LogAppendTime {
		t.Errorf("the record reads %s (LogAppendTime %v), produced at %s", jr.Timestamp, jr.LogAppendTime, rec.Timestamp)
	}
}
