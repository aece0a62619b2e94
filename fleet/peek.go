package fleet

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/scenario"
)

// scenarioInfo is what a submitter needs from a scenario before any agent
// loads it: the names that tie the hosts' runs together. Agents validate the
// whole scenario with their own vars; these names must not depend on them.
type scenarioInfo struct {
	Kafka struct {
		CatalogTopic string `yaml:"catalog-topic"`
	} `yaml:"kafka"`
	Topics map[string]struct {
		Name string `yaml:"name"`
	} `yaml:"topics"`
	Windows map[string]struct {
		Recording string `yaml:"recording"`
	} `yaml:"windows"`
	Jobs map[string]struct {
		Source     map[string]yaml.Node `yaml:"source"`
		Sink       map[string]yaml.Node `yaml:"sink"`
		SaveWindow string               `yaml:"save-window"`
	} `yaml:"jobs"`
}

func peekScenario(text []byte) (*scenarioInfo, error) {
	var info scenarioInfo
	if err := yaml.Unmarshal(text, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// jobShape is what a submitter knows of the job it dispatches.
type jobShape struct {
	Kind   string
	Topic  string // record jobs with a kafka sink: the topic's name
	Window string // record: save-window; replay: the window source
}

// shapeOf reads a job's kind, topic and window from the scenario text.
func shapeOf(text []byte, job string, set []string) (jobShape, error) {
	// The window a job reads or saves may be chosen per submission (the
	// agents apply the same --set); everything else that names topics stays
	// in the text.
	window, saveWindow := "", ""
	// A windows: entry's recording may be chosen per submission too
	// (windows.NAME.recording=…): the submitter plans the shards on the
	// recording the agents will read. The rest of a windows: entry (its
	// topic, the entry as a whole) stays in the text.
	recordings := map[string]string{}
	// What the names come from may be set neither itself nor by replacing
	// a mapping that holds it (jobs.JOB={…}, jobs={…}, topics={…},
	// kafka={…}): the agents apply the same --set.
	fixed := []string{"topics", "kafka.catalog-topic", "jobs." + job + ".sink", "jobs." + job + ".source", "jobs." + job + ".save-window"}
	for _, s := range set {
		p, v, _ := strings.Cut(s, "=")
		// As scenario's --set reads it: trimmed, a quoted key
		// (jobs."record".sink) naming the same key as unquoted.
		keys := scenario.SetPathKeys(p)
		p = strings.Join(keys, ".")
		switch p {
		case "jobs." + job + ".source.window":
			window = v
			continue
		case "jobs." + job + ".save-window":
			saveWindow = v
			continue
		}
		if len(keys) >= 1 && keys[0] == "windows" {
			switch {
			case len(keys) == 3 && keys[2] == "recording":
				recordings[keys[1]] = v
				continue
			case len(keys) < 3 || keys[2] == "topic":
				// The entry as a whole, or the topic its plan reads.
				return jobShape{}, fmt.Errorf("--set %s: the fleet reads topics, sources, sinks and windows from the scenario text; edit the file instead", p)
			}
		}
		if slices.ContainsFunc(fixed, func(f string) bool { return strings.HasPrefix(p, f) || strings.HasPrefix(f, p+".") }) {
			return jobShape{}, fmt.Errorf("--set %s: the fleet reads topics, sources, sinks and windows from the scenario text; edit the file instead", p)
		}
	}
	info, err := peekScenario(text)
	if err != nil {
		return jobShape{}, fmt.Errorf("scenario: %w", err)
	}
	if c := info.Kafka.CatalogTopic; strings.Contains(c, "${") {
		// The submitter and the agent saving a recording's window open the
		// catalog by the name in the text: it must be the one every host
		// resolves.
		return jobShape{}, fmt.Errorf("kafka.catalog-topic %q depends on agent vars or the environment; the fleet needs one catalog for every host: write its name out", c)
	}
	j, ok := info.Jobs[job]
	if !ok {
		return jobShape{}, fmt.Errorf("scenario has no job %q", job)
	}
	var sh jobShape
	if _, ok := j.Sink["http"]; ok {
		sh.Kind = KindReplay
		w, ok := j.Source["window"]
		if window != "" && ok {
			w = yaml.Node{Kind: yaml.ScalarNode, Value: window}
		}
		if !ok || w.Kind != yaml.ScalarNode {
			return sh, fmt.Errorf("job %q: a fleet replay reads a saved window (source: {window: NAME})", job)
		}
		sh.Window = w.Value
		if decl, ok := info.Windows[w.Value]; ok {
			if decl.Recording == "" {
				return sh, fmt.Errorf("job %q: window %q: a fleet replay reads a saved recording (windows: {%s: {recording: NAME}})", job, w.Value, w.Value)
			}
			sh.Window = decl.Recording
			if r, ok := recordings[w.Value]; ok {
				sh.Window = r
			}
		}
		return sh, nil
	}
	sh.Kind = KindRecord
	sh.Window = j.SaveWindow
	if saveWindow != "" {
		sh.Window = saveWindow
	}
	if k, ok := j.Sink["kafka"]; ok {
		var ks struct {
			Topic string `yaml:"topic"`
		}
		if err := k.Decode(&ks); err != nil {
			return sh, fmt.Errorf("job %q: sink.kafka: %w", job, err)
		}
		t, ok := info.Topics[ks.Topic]
		if !ok || t.Name == "" {
			return sh, fmt.Errorf("job %q: sink topic %q is not in topics: with a name", job, ks.Topic)
		}
		sh.Topic = t.Name
	}
	if sh.Window != "" && sh.Topic == "" {
		return sh, fmt.Errorf("job %q: save-window needs a kafka sink", job)
	}
	for _, s := range []string{sh.Topic, sh.Window} {
		if strings.Contains(s, "${") {
			return sh, fmt.Errorf("job %q: %q depends on agent vars; the fleet needs one name for every host", job, s)
		}
	}
	return sh, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
