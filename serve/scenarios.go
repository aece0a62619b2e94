package serve

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/replayctl/replayctl/scenario"
)

// scenarioDir is the directory of scenarios serve offers. Every read goes
// through an os.Root: no "..", no absolute path, no symlink out of it.
type scenarioDir struct {
	root *os.Root
	path string
}

func openScenarioDir(dir string) (*scenarioDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("--scenarios: %w", err)
	}
	return &scenarioDir{root: r, path: abs}, nil
}

var errNoScenario = errors.New("no such scenario")

// read returns a scenario's text; name is a slash-separated path inside the
// directory.
func (d *scenarioDir) read(name string) ([]byte, error) {
	if name == "" || !filepath.IsLocal(filepath.FromSlash(name)) || !isScenarioName(name) || inHiddenDir(name) {
		return nil, fmt.Errorf("%w %q: a .yaml or .yml file inside the scenarios directory", errNoScenario, name)
	}
	data, err := d.root.ReadFile(filepath.FromSlash(name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w %q in the scenarios directory%s", errNoScenario, name, d.otherExt(name))
		}
		return nil, fmt.Errorf("%w %q: %v", errNoScenario, name, err)
	}
	return data, nil
}

// otherExt names the file of the same name with the other extension (.yml
// for .yaml, and the other way round) when it exists: "; did you mean
// \"NAME.yml\"?", else where the scenarios are listed.
func (d *scenarioDir) otherExt(name string) string {
	other := strings.TrimSuffix(name, ".yaml") + ".yml"
	if path.Ext(name) == ".yml" {
		other = strings.TrimSuffix(name, ".yml") + ".yaml"
	}
	if fi, err := d.root.Stat(filepath.FromSlash(other)); err == nil && fi.Mode().IsRegular() {
		return fmt.Sprintf("; did you mean %q?", other)
	}
	return " (GET /v1/scenarios lists them)"
}

// inHiddenDir reports whether a slash-separated name is in a hidden
// directory (.git, .github/workflows): list skips them, so read does too.
func inHiddenDir(name string) bool {
	dir := path.Dir(path.Clean(name))
	return dir != "." && slices.ContainsFunc(strings.Split(dir, "/"), func(s string) bool { return strings.HasPrefix(s, ".") })
}

func isScenarioName(name string) bool {
	ext := path.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

// list returns the scenario files, slash-separated, sorted. Symlinks are
// followed only where they stay inside the directory.
func (d *scenarioDir) list() ([]string, error) {
	var out []string
	err := fs.WalkDir(d.root.FS(), ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			return nil // unreadable or escaping entries are skipped
		}
		if e.IsDir() {
			if p != "." && strings.HasPrefix(e.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if !isScenarioName(p) {
			return nil
		}
		if _, err := d.root.Stat(filepath.FromSlash(p)); err != nil {
			return nil // a symlink that leaves the directory
		}
		out = append(out, p)
		return nil
	})
	slices.Sort(out)
	return out, err
}

// ScenarioInfo describes one scenario file for the UI and the API.
type ScenarioInfo struct {
	File      string    `json:"file"`
	Name      string    `json:"name,omitempty"`
	Valid     bool      `json:"valid"`
	Problems  []string  `json:"problems,omitempty"`
	AgentVars []string  `json:"agent_vars,omitempty"` // ${VAR}s without a default: each agent supplies them (--var)
	Vars      []VarInfo `json:"vars"`
	Jobs      []JobInfo `json:"jobs"`
}

// VarInfo is one entry of a scenario's vars.
type VarInfo struct {
	Name    string `json:"name"`
	Value   string `json:"value"`   // as written
	Default string `json:"default"` // the value without any environment
}

// JobInfo is one job of a scenario.
type JobInfo struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`             // record or replay
	Window string            `json:"window,omitempty"` // replay: the window read; record: save-window
	Target string            `json:"target,omitempty"` // replay: the sink's target or url
	Pacing map[string]string `json:"pacing"`           // speed, rate, amplify, loop, max-gap as written
	Stop   map[string]string `json:"stop,omitempty"`
}

// PacingKeys are the job keys the New replay form offers.
var PacingKeys = []string{"speed", "rate", "amplify", "loop", "max-gap"}

var defaultRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:-(.*)\}$`)

// describeScenario describes the scenario file (a slash-separated name in
// dir, the scenarios directory) whose text is text.
func describeScenario(dir, file string, text []byte) ScenarioInfo {
	info := ScenarioInfo{File: file, Vars: []VarInfo{}, Jobs: []JobInfo{}}
	_, problems, agentVars := validate(dir, file, text, nil)
	info.Valid, info.Problems, info.AgentVars = len(problems) == 0, problems, agentVars
	var doc struct {
		Name string               `yaml:"name"`
		Vars yaml.Node            `yaml:"vars"`
		Jobs map[string]yaml.Node `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return info
	}
	info.Name = doc.Name
	if doc.Vars.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc.Vars.Content); i += 2 {
			k, v := doc.Vars.Content[i], doc.Vars.Content[i+1]
			vi := VarInfo{Name: k.Value, Value: v.Value, Default: v.Value}
			if m := defaultRef.FindStringSubmatch(v.Value); m != nil {
				vi.Default = m[1]
			} else if strings.Contains(v.Value, "${") {
				vi.Default = ""
			}
			// Shown on the page and in the API: never a credential.
			vi.Value, vi.Default = scenario.MaskURL(vi.Value), scenario.MaskURL(vi.Default)
			if (scenario.SecretName(vi.Name) || credentialText(vi.Default)) && vi.Default != "" {
				vi.Default = scenario.Mask
				if m := defaultRef.FindStringSubmatchIndex(vi.Value); m != nil {
					vi.Value = vi.Value[:m[2]] + scenario.Mask + vi.Value[m[3]:]
				} else {
					vi.Value = scenario.Mask
				}
			}
			info.Vars = append(info.Vars, vi)
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range doc.Jobs {
			if !yield(k) {
				return
			}
		}
	}) {
		n := doc.Jobs[name]
		ji := JobInfo{Name: name, Kind: "record", Pacing: map[string]string{}}
		var j struct {
			Source     map[string]yaml.Node `yaml:"source"`
			Sink       map[string]yaml.Node `yaml:"sink"`
			SaveWindow string               `yaml:"save-window"`
			Stop       map[string]string    `yaml:"stop"`
		}
		_ = n.Decode(&j)
		if h, ok := j.Sink["http"]; ok {
			ji.Kind = "replay"
			var hs struct {
				Target string `yaml:"target"`
				URL    string `yaml:"url"`
			}
			_ = h.Decode(&hs)
			ji.Target = hs.Target
			if ji.Target == "" {
				ji.Target = scenario.MaskURL(hs.URL)
			}
			if w, ok := j.Source["window"]; ok && w.Kind == yaml.ScalarNode {
				ji.Window = w.Value
			}
		} else {
			ji.Window = j.SaveWindow
		}
		ji.Stop = j.Stop
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if slices.Contains(PacingKeys, n.Content[i].Value) && n.Content[i+1].Kind == yaml.ScalarNode {
					ji.Pacing[n.Content[i].Value] = n.Content[i+1].Value
				}
			}
		}
		info.Jobs = append(info.Jobs, ji)
	}
	return info
}

// validate loads a scenario as serve sees it: with no environment at all
// (serve's own environment is not the agents'), so a ${VAR} without a
// default is a value each agent supplies (its --var) rather than a problem.
// file is the scenario's slash-separated name in dir, the scenarios
// directory (absolute): relative paths in it resolve against the file's own
// directory there, as they do for `replayctl run`, never against serve's
// working directory. It returns every other problem as FILE:LINE:COL:
// message, FILE being file and every path under dir shown relative to dir
// (shownPaths).
func validate(dir, file string, text []byte, set []string) (*scenario.Scenario, []string, []string) {
	none := func(string) (string, bool) { return "", false }
	unset := map[scenario.Pos]string{} // the agents' --var supply these
	local := filepath.FromSlash(file)
	if !filepath.IsLocal(local) {
		local = filepath.Base(local) // a rerun's spec may name a file from elsewhere
	}
	name := filepath.Join(dir, local)
	s, err := scenario.LoadBytes(name, text, scenario.Options{Set: set, Env: none, Remote: true, OnUnset: func(pos scenario.Pos, name string) { unset[pos] = name }})
	if err == nil {
		return s, nil, nil
	}
	var ds scenario.Diagnostics
	if !errors.As(err, &ds) {
		return nil, []string{file + ": " + shownPaths(err.Error(), dir)}, nil
	}
	var problems, vars []string
	for _, d := range ds {
		if v, ok := unset[d.Pos]; ok {
			if !slices.Contains(vars, v) {
				vars = append(vars, v)
			}
			continue
		}
		if d.File == name {
			d.File = file
		} else {
			d.File = shownPaths(d.File, dir)
		}
		d.Message = shownPaths(d.Message, dir)
		problems = append(problems, d.String())
	}
	return nil, problems, vars
}

// shownPaths rewrites the paths under dir (the scenarios directory,
// absolute) in msg as relative to it, and dir itself as ".": what serve
// answers never says where its files are.
func shownPaths(msg, dir string) string {
	dir = filepath.Clean(dir)
	if dir == string(filepath.Separator) {
		return msg
	}
	pathByte := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-~+@", c) >= 0 || c >= 0x80
	}
	var b strings.Builder
	for {
		i := strings.Index(msg, dir)
		if i < 0 {
			b.WriteString(msg)
			return b.String()
		}
		j := i + len(dir)
		if i > 0 && (pathByte(msg[i-1]) || msg[i-1] == filepath.Separator) || j < len(msg) && pathByte(msg[j]) {
			// Part of another name (/x/scenarios2, /a/x/scenarios).
			b.WriteString(msg[:j])
			msg = msg[j:]
			continue
		}
		b.WriteString(msg[:i])
		msg = msg[j:]
		if len(msg) > 1 && msg[0] == filepath.Separator && pathByte(msg[1]) {
			msg = msg[1:] // dir/a/b is a/b
		} else {
			b.WriteByte('.')
		}
	}
}
