package fleet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
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

	// A spec published with a timestamp an hour old reads the broker's
	// time of its append (the embedded broker stamps it as Apache Kafka
	// does), and says so; on a jobs topic created CreateTime, the
	// timestamp its producer set.
	f.publishOld(t, "timed-1", func(jr JobRecord, produced time.Time) {
		if !jr.LogAppendTime || time.Since(jr.Timestamp) > time.Minute {
			t.Errorf("the record reads %s (LogAppendTime %v), produced at %s: want the broker's time", jr.Timestamp, jr.LogAppendTime, produced)
		}
	})
	newProducerTimeFleet(t).publishOld(t, "timed-2", func(jr JobRecord, produced time.Time) {
		if !jr.Timestamp.Equal(produced) || jr.LogAppendTime {
			t.Errorf("CreateTime jobs topic: the record reads %s (LogAppendTime %v), produced at %s", jr.Timestamp, jr.LogAppendTime, produced)
		}
	})
}

// publishOld publishes a spec whose record timestamp is an hour old and
// checks the job record read back.
func (f *idFleet) publishOld(t *testing.T, id string, check func(JobRecord, time.Time)) {
	t.Helper()
	spec := replaySpec(id, "load-1", "version: 1\n")
	spec.IssuedAt = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) // what a publisher may claim
	env, err := Seal("spec", spec, f.priv)
	if err != nil {
		t.Fatal(err)
	}
	v, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	produced := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	rec := &kgo.Record{Topic: JobsTopic, Key: []byte("spec/" + id), Value: v, Timestamp: produced}
	if err := f.bus.cl.ProduceSync(f.ctx, rec).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := f.bus.Sync(f.ctx); err != nil {
		t.Fatal(err)
	}
	jrs := f.bus.Jobs(rec.Offset)
	if len(jrs) == 0 || jrs[0].Offset != rec.Offset {
		t.Fatalf("the spec's record is not read back: %+v", jrs)
	}
	check(jrs[0], produced)
}
