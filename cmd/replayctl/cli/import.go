package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/gorimport"
	"github.com/replayctl/replayctl/internal/shquote"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert other tools' command lines into scenarios",
	}
	cmd.AddCommand(newImportGorCmd())
	return group(cmd)
}

const importGorHelp = `Convert a GoReplay (gor) command line into an equivalent scenario, printed as YAML.

Give gor's arguments after "--", exactly as your script passes them to gor (a leading
program name, gor, ./goreplay or sudo gor, is skipped: paste the whole line). Every flag that
cannot be mapped is listed as a warning, on stderr and as a comment at the top of the YAML;
none is dropped silently. A --set a warning suggests is quoted for a POSIX shell: paste it
after 'replayctl run FILE' as printed. The scenario passes 'replayctl validate' (with the
--allow-paths a warning names, for a file gor wrote outside the scenario's directory). See
docs/migration.md for the table of gor flags and scenario fields.

gor reads a relative --input-file (and writes a relative --output-file) from its working
directory; a scenario resolves its paths from its own directory. Run import gor where gor
ran, and say where the scenario goes, with -o FILE or by redirecting into FILE: the
scenario then names the same files from FILE's directory.

Usage:
  replayctl import gor [-o FILE] -- [gor flags]

Flags (before "--"):
  -o, --output FILE   write the scenario to FILE (replaced if it exists), not to stdout
                      (- is stdout)

Example:
  replayctl import gor -o scenarios/replay.yaml -- --input-kafka-host 'k1:9092' \
      --input-kafka-topic traffic --input-kafka-start-offset 1200 \
      --input-kafka-end-offset 9800 --output-http 'http://staging:8080' \
      --exit-after 300s --http-set-header 'X-Replay: 1'
`

func newImportGorCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gor [-o FILE] -- [gor flags]",
		Short: "Print the scenario equivalent to a GoReplay command line",
		Long:  importGorHelp,
		// gor's flags are not ours: everything after "gor" is passed
		// through, and ours (before "--") are read here.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
				fmt.Fprint(cmd.OutOrStdout(), importGorHelp)
				return nil
			}
			out, args, err := importGorFlags(args)
			if err != nil {
				return usageError{fmt.Errorf("import gor: %w", err)}
			}
			if len(args) == 0 {
				return usageError{fmt.Errorf("import gor: give gor's arguments after --, for example: replayctl import gor -- --input-raw :8080 --output-http http://127.0.0.1:9000")}
			}
			var opts gorimport.Options
			switch {
			case out != "":
				opts.Dir = filepath.Dir(out)
			default:
				opts.Dir = redirectedDir(cmd.OutOrStdout())
			}
			res, err := gorimport.ConvertWith(args, opts)
			if err != nil {
				return usageError{fmt.Errorf("import gor: %w", err)}
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(res.YAML)
				return err
			}
			if err := os.WriteFile(out, res.YAML, 0o644); err != nil {
				return fmt.Errorf("import gor: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s; check it with: replayctl validate %s\n", out, shquote.IfNeeded(out))
			return nil
		},
	}
}

// importGorFlags reads import gor's own flags, before "--", and answers
// the output file ("" for stdout) and gor's arguments. Without "--",
// every argument is gor's, unless the first is one of ours: then "--" is
// missing, and that is an error rather than a flag passed to gor.
func importGorFlags(args []string) (out string, gor []string, err error) {
	const usage = "replayctl import gor -o FILE -- [gor flags]"
	dash := slices.Index(args, "--")
	if dash < 0 {
		if len(args) > 0 {
			if name, _, _ := strings.Cut(args[0], "="); name == "-o" || name == "--output" {
				return "", nil, fmt.Errorf("%s is import gor's own flag: put -- between it and gor's flags (%s)", name, usage)
			}
		}
		return "", args, nil
	}
	own, seen := args[:dash], false
	for i := 0; i < len(own); i++ {
		name, value, hasValue := strings.Cut(own[i], "=")
		switch name {
		case "-o", "--output":
			if !hasValue {
				if i+1 == len(own) {
					return "", nil, fmt.Errorf("%s needs a file (%s)", name, usage)
				}
				i++
				value = own[i]
			}
			if value == "" {
				return "", nil, fmt.Errorf("%s needs a file (%s)", name, usage)
			}
			if seen {
				return "", nil, fmt.Errorf("%s given twice: the scenario goes to one file", name)
			}
			seen, out = true, value
			if out == "-" {
				out = "" // stdout
			}
		default:
			return "", nil, fmt.Errorf("unknown flag %q before \"--\" (import gor takes -o FILE; gor's flags go after \"--\")", own[i])
		}
	}
	if out != "" {
		if fi, err := os.Stat(out); err == nil && fi.IsDir() {
			return "", nil, fmt.Errorf("-o %s is a directory: name the scenario's file", out)
		}
		if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
			return "", nil, fmt.Errorf("-o %s: directory %s does not exist", out, filepath.Dir(out))
		}
	}
	return out, args[dash+1:], nil
}

// redirectedDir is the directory of the regular file w writes to (stdout
// redirected into FILE), or "" (a terminal, a pipe, or not known here).
func redirectedDir(w io.Writer) string {
	f, ok := w.(*os.File)
	if !ok {
		return ""
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	p, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil || !filepath.IsAbs(p) {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return "" // deleted since, or not a path
	}
	return filepath.Dir(p)
}
