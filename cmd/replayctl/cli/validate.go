package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
)

// Output formats of validate.
const (
	validateText   = "text"
	validateJSON   = "json"
	validateGitHub = "github"
)

func newValidateCmd() *cobra.Command {
	var (
		lf     loadFlags
		format string
	)
	cmd := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check scenario files: schema, references, expressions, values",
		Long: `Validate checks each scenario file without reading a packet or sending a byte: its shape
against the JSON Schema, every reference (topics, windows, targets, jobs), 'needs' cycles,
durations, rates, speeds, URLs and every expression, and that the paths the scenario writes stay
under its directory (see --output-dir, --allow-paths). It prints every problem as
FILE:LINE:COL: message and exits 2 when there is any. Input files (pcap, gor, TLS files) that do
not exist and capture interfaces this host does not have are printed as FILE:LINE:COL: warning: …
and do not change the exit code: they may exist only where and when the scenario runs. So are
the variables of --env-file that no ${VAR} or env("VAR") of the scenario reads (ENV-FILE:LINE:COL: warning: …,
naming the variable, never its value).

--format json prints one JSON document on stdout instead: {"ok": bool, "files": [{"file",
"ok"}], "problems": [{"file", "line", "column", "severity": "error" | "warning", "message"}]}.
--format github prints each problem as a GitHub Actions workflow command (::error file=…,line=…,
col=…::message), so that a CI run shows it on the line of the pull request. The exit code is the
same in every format.`,
		Example: `  replayctl validate examples/*.yaml
  TARGET=http://127.0.0.1:9000 replayctl validate scenario.yaml --set jobs.replay.speed=4
  replayctl validate --format github scenarios/*.yaml     # in a GitHub Actions step`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := lf.check(); err != nil {
				return err
			}
			switch format {
			case validateText, validateJSON, validateGitHub:
			default:
				return usageError{fmt.Errorf("--format %q: want text, json or github", format)}
			}
			var (
				all, warns scenario.Diagnostics
				other      []error
				otherFiles []string // the file of each error of other
				files      []validatedFile
			)
			for _, path := range args {
				s, err := lf.load(path)
				if err == nil {
					_, err = engine.Compile(s, engine.Options{})
				}
				var diags scenario.Diagnostics
				if s != nil && len(s.Warnings) > 0 {
					warns = append(warns, s.Warnings...)
					if format == validateText {
						fmt.Fprintln(cmd.ErrOrStderr(), s.Warnings.Error())
					}
				}
				files = append(files, validatedFile{File: path, OK: err == nil})
				switch {
				case err == nil:
					if format == validateText {
						fmt.Fprintf(cmd.OutOrStdout(), "%s: ok\n", path)
					}
				case errors.As(err, &diags):
					all = append(all, diags...)
				default:
					other = append(other, fmt.Errorf("%s: %w", path, err))
					otherFiles = append(otherFiles, path)
				}
			}
			if format != validateText {
				errs := slices.Clone(all)
				for i, err := range other {
					// A file that could not be validated (not a scenario
					// problem): the problem is the file's.
					errs = append(errs, scenario.Diagnostic{Pos: scenario.Pos{File: otherFiles[i]}, Message: err.Error()})
				}
				if err := writeProblems(cmd.OutOrStdout(), format, files, errs, warns); err != nil {
					return err
				}
				if len(errs) > 0 {
					return exitCodeError{code: ExitInvalid, msg: fmt.Sprintf("%d problem(s) in %d file(s)", len(errs), countBad(files))}
				}
				return nil
			}
			if len(other) > 0 {
				for _, err := range other {
					fmt.Fprintln(cmd.ErrOrStderr(), err)
				}
				if len(all) == 0 {
					return usageError{fmt.Errorf("%d file(s) could not be validated", len(other))}
				}
			}
			if len(all) > 0 {
				return all
			}
			return nil
		},
	}
	lf.register(cmd)
	cmd.Flags().StringVar(&format, "format", validateText, "output: text (FILE:LINE:COL: message), json (one document on stdout) or github (GitHub Actions annotations)")
	return cmd
}

// validatedFile is one file of validate's JSON output.
type validatedFile struct {
	File string `json:"file"`
	OK   bool   `json:"ok"`
}

// problem is one diagnostic of validate's JSON output.
type problem struct {
	File     string `json:"file"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

func countBad(files []validatedFile) int {
	n := 0
	for _, f := range files {
		if !f.OK {
			n++
		}
	}
	return n
}

// writeProblems prints validate's result as JSON or as GitHub Actions
// workflow commands.
func writeProblems(w io.Writer, format string, files []validatedFile, errs, warns scenario.Diagnostics) error {
	var ps []problem
	for _, d := range errs {
		ps = append(ps, problem{d.File, d.Line, d.Col, "error", d.Message})
	}
	for _, d := range warns {
		ps = append(ps, problem{d.File, d.Line, d.Col, "warning", strings.TrimPrefix(d.Message, "warning: ")})
	}
	if format == validateJSON {
		if files == nil {
			files = []validatedFile{}
		}
		if ps == nil {
			ps = []problem{}
		}
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(struct {
			OK       bool            `json:"ok"`
			Files    []validatedFile `json:"files"`
			Problems []problem       `json:"problems"`
		}{len(errs) == 0, files, ps})
	}
	for _, p := range ps {
		props := "file=" + ghProperty(p.File)
		if p.Line > 0 {
			props += fmt.Sprintf(",line=%d", p.Line)
		}
		if p.Column > 0 {
			props += fmt.Sprintf(",col=%d", p.Column)
		}
		if _, err := fmt.Fprintf(w, "::%s %s::%s\n", p.Severity, props, ghData(p.Message)); err != nil {
			return err
		}
	}
	return nil
}

// ghData escapes a workflow command's message, as @actions/core does.
func ghData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// ghProperty escapes a workflow command's property value.
func ghProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
