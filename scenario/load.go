// Package scenario loads replayctl scenario files: it parses the YAML,
// applies --set overrides, interpolates ${VAR} references, validates against
// the embedded JSON Schema and semantically (references, needs cycles,
// durations, sizes, URLs, expressions), and decodes into a typed model.
// Every problem is reported, each as FILE:LINE:COL: message.
package scenario

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Options tune Load.
type Options struct {
	// Set holds --set path.to.key=value overrides, applied in order.
	Set []string
	// Env looks variables up; nil means os.LookupEnv.
	Env LookupFunc
	// EnvFile, when set, is a KEY=VALUE file overlaid on top of Env.
	EnvFile string
}

// Load reads, checks and decodes the scenario file at path. On any problem
// it returns Diagnostics (as the error), all of them, sorted by position.
func Load(path string, opts Options) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Diagnostics{{Pos{File: path}, fmt.Sprintf("read scenario: %v", err)}}
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes is Load for a scenario already in memory; name is the file name
// used in diagnostics and to resolve relative paths.
func LoadBytes(name string, data []byte, opts Options) (*Scenario, error) {
	dir, err := filepath.Abs(filepath.Dir(name))
	if err != nil {
		dir = filepath.Dir(name)
	}
	root, diag := parseYAML(name, data)
	if diag != nil {
		return nil, Diagnostics{*diag}
	}
	if root.Kind != yaml.MappingNode {
		return nil, Diagnostics{{Pos{name, root.Line, root.Column}, "scenario: must be a mapping of keys (version, name, jobs, …)"}}
	}
	ds := duplicateKeys(name, root)

	for _, set := range opts.Set {
		if err := applySet(root, set); err != nil {
			ds = append(ds, Diagnostic{Pos{File: name}, err.Error()})
		}
	}

	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	if opts.EnvFile != "" {
		vals, eds := readEnvFile(opts.EnvFile)
		ds = append(ds, eds...)
		base := env
		env = func(k string) (string, bool) {
			if v, ok := vals[k]; ok {
				return v, true
			}
			return base(k)
		}
	}
	failed := map[*yaml.Node]bool{}
	ds = append(ds, interpolateTree(name, root, env, map[*yaml.Node]bool{}, failed)...)

	sr := validateSchema(name, root)
	for n := range failed {
		// Its ${…} error is the one to read; the raw text's shape is not.
		sr.bad[n] = true
		pos := Pos{name, n.Line, n.Column}
		sr.diags = slices.DeleteFunc(sr.diags, func(d Diagnostic) bool { return d.Pos == pos })
	}
	ds = append(ds, sr.diags...)

	d := &decoder{
		file:  name,
		dir:   dir,
		lines: strings.Split(string(data), "\n"),
		sr:    sr,
		s:     &Scenario{File: name, Dir: dir},
	}
	if _, tooBig := toAny(root); tooBig == nil {
		d.decodeScenario(root)
	}
	ds = append(ds, d.diags...)
	if len(ds) > 0 {
		return nil, ds.sorted()
	}
	return d.s, nil
}
