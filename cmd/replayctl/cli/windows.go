package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/scenario"
)

// catalogFlags say which Kafka holds the windows catalog.
type catalogFlags struct {
	lf      loadFlags
	file    string
	brokers []string
	dataDir string
	output  string
	verbose bool
}

func (f *catalogFlags) register(cmd *cobra.Command, output bool) {
	cmd.Flags().StringVarP(&f.file, "file", "f", "", "use the kafka settings of this scenario")
	cmd.Flags().StringSliceVar(&f.brokers, "brokers", nil, "Kafka brokers (default: the scenario's, else the embedded broker)")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "embedded broker's data directory (default: the -f scenario's kafka.data-dir, else .replayctl/data)")
	cmd.Flags().BoolVarP(&f.verbose, "verbose", "v", false, "log connection details")
	if output {
		cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table or json")
	}
	// How -f's scenario is read, as run reads it: only its kafka settings
	// are used, and nothing is written where it writes.
	fl := cmd.Flags()
	fl.StringArrayVar(&f.lf.set, "set", nil, "with -f: override a scalar of the scenario, path.to.key=value (repeatable), as run does")
	onceStringVar(fl, &f.lf.envFile, "env-file", "with -f: KEY=VALUE lines for the scenario's ${VAR} interpolation and env(\"VAR\"), as run reads them (and warns of a KEY no ${KEY} or env(\"KEY\") reads)")
	fl.BoolVar(&f.lf.restricted, "restricted", false, "with -f: read the scenario as run --restricted does (${VAR} only from vars:, --env-file and --env-allow; files only under its directory)")
	fl.StringArrayVar(&f.lf.envAllow, "env-allow", nil, "with -f --restricted: environment variables the scenario may read, by name or pattern (repeatable)")
	onceStringVar(fl, &f.lf.outputDir, "output-dir", "with -f: the --output-dir the scenario is run with: its relative kafka.data-dir is there")
	fl.StringArrayVar(&f.lf.allowPaths, "allow-paths", nil, "with -f: the --allow-paths the scenario is run with (repeatable): a scenario whose paths lie outside its directory does not load without them")
}

// scenarioFlags say how -f's scenario is read: without -f they mean nothing.
var scenarioFlags = []string{"set", "env-file", "restricted", "env-allow", "output-dir", "allow-paths"}

func (f *catalogFlags) open(cmd *cobra.Command) (*engine.Catalog, error) {
	if f.output != "" && f.output != "table" && f.output != "json" {
		return nil, usageError{fmt.Errorf("--output %q: want table or json", f.output)}
	}
	if f.file == "" {
		for _, name := range scenarioFlags {
			if cmd.Flags().Changed(name) {
				return nil, usageError{fmt.Errorf("--%s says how the scenario of -f is read: give -f FILE, or leave --%s out", name, name)}
			}
		}
	}
	var s *scenario.Scenario
	if f.file != "" {
		var err error
		if s, err = f.lf.load(f.file); err != nil {
			return nil, err
		}
		f.lf.envFileWarnings(cmd.ErrOrStderr(), s)
	}
	cat, err := engine.OpenCatalog(cmd.Context(), s, engine.Options{
		Brokers: f.brokers, DataDir: f.dataDir, Err: cmd.ErrOrStderr(), Logger: newLogger(cmd.ErrOrStderr(), f.verbose),
	})
	if env := os.Getenv("REPLAYCTL_BROKERS"); err != nil && env != "" && len(f.brokers) == 0 && f.file == "" && f.dataDir == "" {
		// The fleet commands read $REPLAYCTL_BROKERS; windows, as run,
		// reads the embedded broker's data dir unless told otherwise.
		err = fmt.Errorf("%w; the fleet's windows: --brokers %s", err, env)
	}
	return cat, err
}

func newWindowsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "windows",
		Aliases: []string{"window", "recordings"},
		Short:   "List, show and remove saved windows (recordings)",
		Long: `A window is a recording: exact Kafka offset ranges of a topic plus metadata, saved under a
name in the catalog topic (default replayctl.windows) by a record job's save-window. Any host
that reaches the cluster sees the same windows.`,
	}
	cmd.AddCommand(newWindowsListCmd(), newWindowsShowCmd(), newWindowsRmCmd())
	return group(cmd)
}

func newWindowsListCmd() *cobra.Command {
	var f catalogFlags
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List saved windows",
		Example: `  replayctl windows list
  replayctl windows list -f examples/quickstart.yaml -o json
  replayctl windows list --brokers 127.0.0.1:9092`,
		Long: `List the saved windows, one a line: NAME, TOPIC, PARTITIONS, RECORDS (the offsets the window
spans), REQUESTS, CAPTURED (the first capture time; "+N bogus" when N messages have a capture
time that cannot be real, as a .gor file can have them, "unknown (bogus)" when none has a
real one, "unknown (untimed)" when no capture time was saved for its messages, and "empty"
for a window without records), SPAN (to the last capture time), SAVED, and LOST ("-", or what
a partial recording lost, by unit). -o json gives every field.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ws, err := c.List(cmd.Context())
			if err != nil {
				return err
			}
			if n := c.Invalid(); n > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %d record(s) in %s are not windows and were skipped\n", n, c.Topic())
			}
			if f.output == "json" {
				return writeJSON(cmd.OutOrStdout(), ws)
			}
			if len(ws) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no saved windows in %s on %v\n", c.Topic(), c.Brokers)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTOPIC\tPARTITIONS\tRECORDS\tREQUESTS\tCAPTURED\tSPAN\tSAVED\tLOST")
			var bogus []string
			for _, w := range ws {
				captured, sp := capturedColumns(w)
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", w.Name, w.Topic, len(w.Partitions), w.Records(), w.Requests,
					captured, sp, timeText(w.CreatedAt), lostColumn(w))
				if w.BogusTimes > 0 || w.TimesBogus() {
					bogus = append(bogus, w.Name)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(bogus) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s: messages with a bogus capture time (%s), as a .gor file can have them; they are in the window and replay, CAPTURED and SPAN leave them out (windows show NAME tells more)\n",
					strings.Join(bogus, ", "), message.BogusTimeRule)
			}
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newWindowsShowCmd() *cobra.Command {
	var f catalogFlags
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a saved window: offsets per partition and metadata",
		Long: `Show a saved window, one field a line: its offsets per partition, records, requests and
responses, captured (the first and last capture time and the span between them; "unknown" with
the reason when its times are bogus or none was saved for its messages, "none" for an empty
window), bogus times (how many messages have a capture time that cannot be real), the hosts,
recording, scenario and job it came from, when it was saved, and what a partial recording lost.
-o json gives every field.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			w, err := c.Get(cmd.Context(), args[0])
			if err != nil {
				return notFound(cmd, c, err)
			}
			if f.output == "json" {
				return writeJSON(cmd.OutOrStdout(), w)
			}
			showWindow(cmd.OutOrStdout(), w)
			return nil
		},
	}
	f.register(cmd, true)
	return cmd
}

func newWindowsRmCmd() *cobra.Command {
	var f catalogFlags
	cmd := &cobra.Command{
		Use:     "rm NAME...",
		Aliases: []string{"remove", "delete"},
		Short:   "Remove saved windows (the records stay in their topic until retention)",
		Long: `Remove saved windows from the catalog: all of them or, when one of the names is not saved,
none (exit 2, naming each unknown one). The records stay in their topic until retention.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.open(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			// All or none: an unknown name removes nothing.
			if err := c.Remove(cmd.Context(), args...); err != nil {
				return notFound(cmd, c, err)
			}
			said := map[string]bool{}
			for _, name := range args {
				if !said[name] {
					said[name] = true
					fmt.Fprintf(cmd.OutOrStdout(), "removed window %s\n", name)
				}
			}
			return nil
		},
	}
	f.register(cmd, false)
	return cmd
}

// notFound adds to an unknown window's error where it was looked for and
// which windows are there (exit 2, as for a run that names it).
func notFound(cmd *cobra.Command, c *engine.Catalog, err error) error {
	if !errors.Is(err, catalog.ErrNotFound) {
		return err
	}
	ws, lerr := c.List(cmd.Context())
	if lerr != nil {
		return err
	}
	names := make([]string, 0, len(ws))
	for _, w := range ws {
		names = append(names, w.Name)
	}
	there := "it has no saved windows"
	if len(names) > 0 {
		there = "saved windows there: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%w (looked in %s; %s)", err, c.Where(), there)
}

func showWindow(out io.Writer, w catalog.Window) {
	tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	row("name", w.Name)
	row("topic", w.Topic)
	var parts []string
	for _, p := range w.SortedPartitions() {
		r := w.Partitions[p]
		parts = append(parts, fmt.Sprintf("%d:[%d,%d)", p, r.Start, r.End))
	}
	row("offsets", strings.Join(parts, " "))
	row("records", fmt.Sprint(w.Records()))
	row("requests", fmt.Sprint(w.Requests))
	row("responses", fmt.Sprint(w.Responses))
	switch {
	case w.TimesBogus():
		row("captured", fmt.Sprintf("unknown: the times saved (%s → %s) are bogus (%s), as a .gor file's can be; the window was saved before replayctl told them apart",
			timeText(w.StartedAt), timeText(w.EndedAt), message.BogusTimeRule))
	case w.StartedAt.IsZero() && w.BogusTimes > 0:
		row("captured", fmt.Sprintf("unknown: every message's capture time is bogus (%s)", message.BogusTimeRule))
	case w.StartedAt.IsZero() && untimed(w) == "":
		row("captured", "none: the window is empty")
	case w.StartedAt.IsZero():
		row("captured", "unknown: no capture time was saved for its "+untimed(w))
	default:
		row("captured", timeText(w.StartedAt)+" → "+timeText(w.EndedAt)+" ("+spanText(w.StartedAt, w.EndedAt)+")")
	}
	if w.BogusTimes > 0 {
		row("bogus times", fmt.Sprintf("%d message(s) with a bogus capture time (%s): in the window and replayed, not in captured; a paced replay sends each right after the request before it",
			w.BogusTimes, message.BogusTimeRule))
	}
	hosts := strings.Join(w.Hosts, ", ")
	if len(w.HostRequests) > 0 {
		var hs []string
		for _, h := range slices.Sorted(maps.Keys(w.HostRequests)) {
			hs = append(hs, fmt.Sprintf("%s (%d requests)", h, w.HostRequests[h]))
		}
		hosts = strings.Join(hs, ", ")
	}
	row("hosts", hosts)
	row("destinations", strings.Join(w.Destinations, ", "))
	row("recording", w.RecordingID)
	row("scenario", w.Scenario)
	row("job", w.Job)
	row("saved", timeText(w.CreatedAt))
	if w.Partial {
		row("partial", "yes: "+lostDetail(w.Lost))
	}
}

// capturedColumns are the CAPTURED and SPAN columns of windows list: the
// first capture time and the span, "+N bogus" after a time that leaves out
// N messages' bogus times, "unknown (bogus)" for a window without a real one,
// "empty" for a window without records and "unknown (untimed)" for one
// whose messages have no capture time saved.
func capturedColumns(w catalog.Window) (captured, span string) {
	switch {
	case w.TimesBogus(), w.StartedAt.IsZero() && w.BogusTimes > 0:
		return "unknown (bogus)", "-"
	case w.StartedAt.IsZero() && untimed(w) == "":
		return "empty", "-"
	case w.StartedAt.IsZero():
		return "unknown (untimed)", "-"
	case w.BogusTimes > 0:
		return fmt.Sprintf("%s +%d bogus", timeText(w.StartedAt), w.BogusTimes), spanText(w.StartedAt, w.EndedAt)
	}
	return timeText(w.StartedAt), spanText(w.StartedAt, w.EndedAt)
}

// untimed says what a window without capture times holds ("6 message(s)",
// "12 record(s)" when it counted no messages), "" when it holds nothing. Such
// a window has no bogus times counted either: it is empty, or its saver
// kept no times (a window saved by the fleet's agents counts no bogus
// times).
func untimed(w catalog.Window) string {
	if n := max(w.Messages, w.Requests+w.Responses); n > 0 {
		return fmt.Sprintf("%d message(s)", n)
	}
	if n := w.Records(); n > 0 {
		return fmt.Sprintf("%d record(s)", n)
	}
	return ""
}

// lostColumn is the LOST column of windows list: "-" for a complete
// recording, "12 messages, 3 packets (partial)" otherwise.
func lostColumn(w catalog.Window) string {
	if !w.Partial {
		return "-"
	}
	if by := catalog.LostByUnit(w.Lost); by != "" {
		return by + " (partial)"
	}
	return "partial"
}

// lostDetail renders a partial window's losses by cause, with their
// units: "lost kernel-drops 3 packets, spool-full 10 messages".
func lostDetail(lost map[string]int64) string {
	if text := catalog.LostText(lost); text != "" {
		return "lost " + text
	}
	return "lost (causes not recorded)"
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func spanText(a, b time.Time) string {
	if a.IsZero() || b.IsZero() {
		return "-"
	}
	return b.Sub(a).Round(time.Millisecond).String()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
