package engine

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/replayctl/replayctl/report"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/stats"
)

// reportData turns a replay job's results into the HTML report's data.
func reportData(s *scenario.Scenario, res *jobResult) report.Data {
	sum := res.summary
	d := report.Data{
		Job:         res.job.Name,
		Scenario:    s.Name,
		GeneratedAt: time.Now().UTC(),
		DurationS:   res.elapsed.Seconds(),
		Diff:        res.diff,
		// A signal stopped the job: the verdict says so first.
		Interrupted: res.interrupted,
		SourceGaps:  res.windowNotes,
		NotSent:     res.notSent,
		// As the run's exit code: requests not sent fail it unless
		// on-loss is warn.
		NotSentFails: len(res.notSent) > 0 && res.job.OnLoss != "warn",
	}
	d.SetFigures(sum)
	d.Breakdown = breakdownRows(res)
	if res.job.Sink.HTTP != nil {
		for _, t := range res.job.Sink.HTTP.Targets {
			if t.Builtin != "" {
				d.Targets = append(d.Targets, t.Name+" (builtin:"+t.Builtin+")")
			} else {
				d.Targets = append(d.Targets, t.Name+" "+t.Shown())
			}
		}
	}
	if w := res.window; w != nil {
		rw := &report.Window{Name: w.Name, Topic: w.Topic, Partitions: map[int32]report.Range{}}
		for p, r := range w.Partitions {
			rw.Partitions[p] = report.Range{Start: r.Start, End: r.End}
		}
		d.Window = rw
	}
	if sh := res.shard; sh != nil {
		// One shard of a run: its row says which part of the window it is.
		parts := make([]string, len(sh.Parts))
		for i, p := range sh.Parts {
			parts[i] = p.String()
		}
		d.RunID = sh.RunID
		d.Shards = []report.ShardRow{{Index: sh.Index, Host: sh.Host, Parts: strings.Join(parts, " "), Sent: sum.Sent, Errors: sum.Errors,
			Rate: sum.Achieved, P99: stats.MS(sum.Latency.P99), SkewMS: sh.SkewMS, State: "ok"}}
		if res.failed {
			d.Shards[0].State = "failed: " + res.errText
		} else if res.interrupted {
			d.Shards[0].State = "interrupted"
		}
	}
	d.Assertions = assertionResults(res)
	return d
}

// writeHTMLReport writes a replay job's self-contained HTML report (record
// jobs have no charts to show; their JSON report says what they did).
func writeHTMLReport(s *scenario.Scenario, res *jobResult, path scenario.Path) error {
	if !res.replay {
		return fmt.Errorf("report %s: html reports are for replay jobs (job %s records)", path.Raw, res.job.Name)
	}
	var buf bytes.Buffer
	if err := report.WriteHTML(&buf, reportData(s, res)); err != nil {
		return fmt.Errorf("report %s: %w", path.Raw, err)
	}
	return writeFile(path, buf.Bytes())
}
