package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/shard"
)

// k8sObject is the part of a Kubernetes object the manifest test reads.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		CompletionMode string `yaml:"completionMode"`
		Completions    *int   `yaml:"completions"`
		Parallelism    *int   `yaml:"parallelism"`
		Template       struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Args []string `yaml:"args"`
	Env  []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			ConfigMapKeyRef *struct{ Name, Key string } `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// TestKubernetesManifest parses deploy/kubernetes/replay-job.yaml and checks
// its command lines with replayctl's own command tree and engine: the
// Indexed Job's shards compile as shards of a run, the merge Job's flags
// parse and name the same run, and the scenario from the ConfigMap loads.
func TestKubernetesManifest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(), "deploy", "kubernetes", "replay-job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	objs := map[string]k8sObject{}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	for {
		var o k8sObject
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("the manifest does not parse: %v", err)
		}
		objs[o.Kind+"/"+o.Metadata.Name] = o
	}
	scn, ok := objs["ConfigMap/replayctl-scenario"].Data["scenario.yaml"]
	runCM := objs["ConfigMap/replayctl-run"]
	if !ok || runCM.Data["run-id"] == "" {
		t.Fatalf("the manifest lacks the scenario or the run ID ConfigMap: %v", objs)
	}
	dir := t.TempDir()
	scnPath := write(t, dir, "scenario.yaml", scn)

	// env returns a container's environment, ConfigMap references resolved.
	env := func(c k8sContainer) map[string]string {
		m := map[string]string{}
		for _, e := range c.Env {
			m[e.Name] = e.Value
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				ref := e.ValueFrom.ConfigMapKeyRef
				v, ok := objs["ConfigMap/"+ref.Name].Data[ref.Key]
				if !ok {
					t.Fatalf("env %s refers to ConfigMap %s key %s, not in the manifest", e.Name, ref.Name, ref.Key)
				}
				m[e.Name] = v
			}
		}
		return m
	}
	// args expands $(VAR) as Kubernetes does and maps the scenario's mount
	// path to the test's copy, checking that the mount is the ConfigMap.
	args := func(o k8sObject, c k8sContainer, vars map[string]string) []string {
		mounts := map[string]string{}
		for _, v := range o.Spec.Template.Spec.Volumes {
			if v.ConfigMap != nil {
				mounts[v.Name] = v.ConfigMap.Name
			}
		}
		var out []string
		for _, a := range c.Args {
			a = regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(a, func(s string) string { return vars[s[2:len(s)-1]] })
			if strings.HasSuffix(a, "/scenario.yaml") {
				for _, m := range c.VolumeMounts {
					if filepath.Dir(a) == m.MountPath && mounts[m.Name] == "replayctl-scenario" {
						a = scnPath
					}
				}
				if a != scnPath {
					t.Fatalf("%s is not the scenario ConfigMap's mount", a)
				}
			}
			out = append(out, a)
		}
		return out
	}

	// The shards: an Indexed Job with completions = parallelism = REPLAYCTL_SHARDS.
	job := objs["Job/replayctl-replay"]
	if job.Spec.CompletionMode != "Indexed" || job.Spec.Completions == nil || job.Spec.Parallelism == nil || *job.Spec.Completions != *job.Spec.Parallelism {
		t.Fatalf("replayctl-replay is not an Indexed Job with completions = parallelism: %+v", job.Spec)
	}
	n := *job.Spec.Completions
	c := job.Spec.Template.Spec.Containers[0]
	vars := env(c)
	if vars[shard.EnvCount] != strconv.Itoa(n) {
		t.Fatalf("%s=%q, completions %d", shard.EnvCount, vars[shard.EnvCount], n)
	}
	root := newRoot(io.Discard, io.Discard)
	cmd, rest, err := root.Find(args(job, c, vars))
	if err != nil || cmd.Name() != "run" {
		t.Fatalf("shard command %v: %v", c.Args, err)
	}
	if err := cmd.ParseFlags(rest); err != nil {
		t.Fatalf("shard command %v: %v", c.Args, err)
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	for i := range n {
		t.Setenv(shard.EnvIndex, strconv.Itoa(i))
		s, err := parsedLoadFlags(cmd).load(cmd.Flags().Arg(0))
		if err != nil {
			t.Fatalf("the scenario of the ConfigMap: %v", err)
		}
		sf := shardFlags{}
		sf.shard, _ = cmd.Flags().GetString("shard")
		sf.runID, _ = cmd.Flags().GetString("run-id")
		sf.armTimeout, _ = cmd.Flags().GetDuration("arm-timeout")
		sf.startMargin, _ = cmd.Flags().GetDuration("start-margin")
		sf.runTopic, _ = cmd.Flags().GetString("run-topic")
		so, err := sf.options()
		if err != nil {
			t.Fatalf("shard %d: %v", i, err)
		}
		if so.Spec != (shard.Spec{Index: i, Count: n, RunID: runCM.Data["run-id"]}) {
			t.Fatalf("pod %d runs shard %+v", i, so.Spec)
		}
		jobs, _ := cmd.Flags().GetStringArray("job")
		if _, err := engine.Compile(s, engine.Options{Jobs: jobs, Shard: so, Out: io.Discard, Err: io.Discard}); err != nil {
			t.Fatalf("pod %d: the shard does not compile: %v", i, err)
		}
		if rep := s.Jobs["replay"].Report.JSON.Raw; rep != fmt.Sprintf("/reports/shard-%d.json", i) {
			t.Fatalf("pod %d writes its report to %s", i, rep)
		}
	}

	// The merge: report merge --run of the same run, from the same brokers.
	merge := objs["Job/replayctl-merge"]
	mc := merge.Spec.Template.Spec.Containers[0]
	mvars := env(mc)
	mcmd, rest, err := root.Find(args(merge, mc, mvars))
	if err != nil || mcmd.CommandPath() != "replayctl report merge" {
		t.Fatalf("merge command %v: %v", mc.Args, err)
	}
	if err := mcmd.ParseFlags(rest); err != nil {
		t.Fatalf("merge command %v: %v", mc.Args, err)
	}
	if run, _ := mcmd.Flags().GetString("run"); run != runCM.Data["run-id"] || shard.ValidateRunID(run) != nil {
		t.Fatalf("the merge reads run %q, the shards run %q", run, runCM.Data["run-id"])
	}
	if mvars["KAFKA_BROKERS"] != vars["KAFKA_BROKERS"] {
		t.Fatalf("the merge reads brokers %q, the shards use %q", mvars["KAFKA_BROKERS"], vars["KAFKA_BROKERS"])
	}
	if f, _ := mcmd.Flags().GetString("file"); f != scnPath {
		t.Fatalf("the merge reads the scenario at %q", f)
	}
	if _, err := parsedLoadFlags(mcmd).load(scnPath); err != nil {
		t.Fatalf("the merge cannot load the scenario: %v", err)
	}
}

// parsedLoadFlags are the scenario flags of a parsed command line, as the
// command loads its scenario with them.
func parsedLoadFlags(cmd *cobra.Command) *loadFlags {
	f := &loadFlags{}
	fs := cmd.Flags()
	f.set, _ = fs.GetStringArray("set")
	f.envFile, _ = fs.GetString("env-file")
	f.restricted, _ = fs.GetBool("restricted")
	f.envAllow, _ = fs.GetStringArray("env-allow")
	f.outputDir, _ = fs.GetString("output-dir")
	f.allowPaths, _ = fs.GetStringArray("allow-paths")
	return f
}
