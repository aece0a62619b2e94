// Package cli wires replayctl's commands to the engine: flags, exit codes and
// output, no logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/replayctl/replayctl/capture"
	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/kafkasink"
	"github.com/replayctl/replayctl/spool"
)

// Version is set at build time with -ldflags.
var Version = "dev"

// Exit codes, as documented in DESIGN.md and the README.
const (
	ExitOK          = 0
	ExitRuntime     = 1
	ExitInvalid     = 2
	ExitAssertion   = 3
	ExitInterrupted = 130 // 128 + SIGINT, as shells report it
)

// usageError marks a bad command line (exit 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// Main runs replayctl with args and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	// A stdout or stderr closed by its reader (replayctl run … | head, a
	// log shipper gone) makes writes to it fail with EPIPE instead of
	// killing the process with SIGPIPE, as Go does by default for them:
	// that killed a run in its summary, before its reports were written
	// and its later jobs ran, with nothing said and exit 141. A record
	// job's stdout sink now fails with the error, and the run goes on.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	defer close(done) // runs before stop: the watcher then knows it was no signal
	go secondInterrupt(ctx, done, stderr)
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(stderr, errorText(err))
	code := exitCode(err)
	var loss *engine.LossError
	if code == ExitRuntime && ctx.Err() != nil && !errors.As(err, &loss) {
		// A failure after SIGINT or SIGTERM (a connection cut short, a
		// read cancelled) is the interrupt's doing; a recording that lost
		// messages is not (Ctrl-C is how a live capture ends).
		code = ExitInterrupted
	}
	return code
}

// secondInterrupt tells what the first Ctrl-C does and lets a second one
// quit at once, for when draining waits on something that does not answer.
func secondInterrupt(ctx context.Context, done <-chan struct{}, stderr io.Writer) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	select {
	case <-done:
		return // Main returned: not a signal
	default:
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	fmt.Fprintln(stderr, "replayctl: stopping cleanly (interrupt again to quit at once)")
	select {
	case <-done:
	case <-again:
		fmt.Fprintln(stderr, "replayctl: interrupted twice: quitting without draining")
		tellCaptures(stderr, capture.InProgress())
		leaveSpools(stderr)
		tellUnacknowledged(stderr)
		os.Exit(ExitInterrupted)
	}
}

// tellCaptures says, for a process quitting without draining, what each
// live capture (capture.InProgress) loses: the messages parsed and not yet
// handed to the sink, the packets read and not yet parsed, and what it lost
// before, by every cause a record job's summary counts (engine.SourceLost;
// no summary tells them now).
func tellCaptures(stderr io.Writer, captures []capture.Pending) {
	for _, p := range captures {
		lost := engine.SourceLost(p.Stats)
		if !p.Holds() && len(lost) == 0 {
			continue
		}
		fmt.Fprintf(stderr, "replayctl: the capture on %s loses %d requests and %d responses (%s) parsed but not yet handed to the sink, and %d packets read but not yet parsed (no count below includes them)",
			p.Interface, p.Requests, p.Responses, engine.ByteText(p.Bytes), p.Packets)
		if len(lost) > 0 {
			fmt.Fprintf(stderr, "; it had lost before: %s", catalog.LostText(lost))
		}
		fmt.Fprintln(stderr)
	}
}

// leaveSpools says, for a process quitting without draining, what each
// record job's spool leaves on disk and where. Nothing sends it later: a
// record job's spool is a directory of its own, and the next record job
// spooling beside it only warns that it is there.
func leaveSpools(stderr io.Writer) {
	for _, sp := range spool.Opened() {
		dir := sp.Dir()
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		type left struct {
			records, bytes int64
			err            error
		}
		done := make(chan left, 1)
		go func() {
			n, b, err := sp.Leave()
			done <- left{n, b, err}
		}()
		var l left
		select {
		case l = <-done:
		case <-time.After(5 * time.Second):
			fmt.Fprintf(stderr, "replayctl: the spool %s did not answer within 5s; what it holds stays there, not sent to Kafka\n", dir)
			continue
		}
		if l.err != nil {
			fmt.Fprintf(stderr, "replayctl: spool %s: %v\n", dir, l.err)
		}
		if l.records == 0 {
			continue
		}
		fmt.Fprintf(stderr, "replayctl: %d records (%s) stay in the spool %s, not sent to Kafka; no later run sends them (a record job spooling in %s warns that they are there): remove the directory when done with them\n",
			l.records, engine.ByteText(l.bytes), dir, filepath.Dir(dir))
	}
}

// tellUnacknowledged says, for a process quitting without draining, how
// many records each Kafka sink had handed to the producer without an
// acknowledgement: no spool count includes them, and whether they reached the
// topic is unknown.
func tellUnacknowledged(stderr io.Writer) {
	for _, u := range kafkasink.Unacknowledged() {
		fmt.Fprintf(stderr, "replayctl: %d records (%s) handed to Kafka for the topic %s had no acknowledgement: some may be in the topic, the others are lost (no spool count above includes them)\n",
			u.Records, engine.ByteText(u.Bytes), u.Topic)
	}
}

func errorText(err error) string {
	var diags scenario.Diagnostics
	if errors.As(err, &diags) {
		return diags.Error()
	}
	return "replayctl: " + err.Error()
}

func exitCode(err error) int {
	var (
		diags  scenario.Diagnostics
		usage  usageError
		assert *engine.AssertionError
		code   exitCodeError
	)
	switch {
	case errors.Is(err, engine.ErrInterrupted):
		return ExitInterrupted
	case errors.As(err, &code):
		return code.code
	case errors.As(err, &assert):
		return ExitAssertion
	case errors.As(err, &diags), errors.As(err, &usage), errors.Is(err, engine.ErrInvalid):
		return ExitInvalid
	case errors.Is(err, catalog.ErrNotFound), errors.Is(err, catalog.ErrExists), errors.Is(err, catalog.ErrConflict):
		// A window that is not there, or a name that is taken: the command
		// line names the wrong window, as in `run`.
		return ExitInvalid
	case strings.HasPrefix(err.Error(), "unknown command "), strings.HasPrefix(err.Error(), "unknown flag"):
		return ExitInvalid
	}
	return ExitRuntime
}

// loadFlags are the flags every command that reads a scenario takes.
type loadFlags struct {
	set        []string
	envFile    string
	restricted bool
	envAllow   []string
	outputDir  string
	allowPaths []string
}

func (f *loadFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.set, "set", nil, "override a scalar: path.to.key=value (repeatable; the value is read as YAML)")
	onceStringVar(cmd.Flags(), &f.envFile, "env-file", "read KEY=VALUE lines from this file for ${VAR} interpolation and env(\"VAR\") in expressions (over the process environment); a KEY no ${KEY} or env(\"KEY\") reads is warned of")
	cmd.Flags().BoolVar(&f.restricted, "restricted", false, "${VAR} reads only vars:, --env-file and --env-allow variables; env(\"NAME\") only --env-file and --env-allow names")
	cmd.Flags().StringArrayVar(&f.envAllow, "env-allow", nil, "with --restricted: environment variables ${VAR} and env() may read, by name or pattern (APP_*; repeatable)")
	onceStringVar(cmd.Flags(), &f.outputDir, "output-dir", "resolve the paths the scenario writes (reports, gor sinks, data-dir) here instead of in the scenario's directory; they must stay under it")
	cmd.Flags().StringArrayVar(&f.allowPaths, "allow-paths", nil, "also let the scenario write under this directory (repeatable)")
}

// check refuses flags that would change nothing: --env-allow narrows only
// what a --restricted scenario reads (without it the whole environment is
// readable, whatever --env-allow says).
func (f *loadFlags) check() error {
	if len(f.envAllow) > 0 && !f.restricted {
		return usageError{errors.New("--env-allow applies only with --restricted (without it ${VAR} and env() read the whole environment): add --restricted, or leave --env-allow out")}
	}
	return nil
}

// envFileWarnings prints the warnings about --env-file (its variables the
// scenario does not read) of a scenario read only for its kafka settings:
// its other warnings are about jobs that these commands do not run.
func (f *loadFlags) envFileWarnings(w io.Writer, s *scenario.Scenario) {
	if f.envFile == "" || s == nil {
		return
	}
	for _, d := range s.Warnings {
		if d.File == f.envFile {
			fmt.Fprintln(w, d)
		}
	}
}

func (f *loadFlags) load(path string) (*scenario.Scenario, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	return scenario.Load(path, scenario.Options{
		Set: f.set, EnvFile: f.envFile,
		Restricted: f.restricted, EnvAllow: f.envAllow,
		OutputDir: f.outputDir, AllowPaths: f.allowPaths,
	})
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "replayctl",
		Short: "Record production HTTP traffic into Kafka and replay any recording against any environment",
		Long: `replayctl records real HTTP traffic off a network interface or a pcap file, stores it in Kafka,
names slices of Kafka offsets as windows (recordings), and replays any window, at any time and as
often as wanted, against any HTTP target: faster or slower, filtered, rewritten, amplified.

Everything is declared in YAML scenario files:
  replayctl validate scenario.yaml        check a scenario (CI)
  replayctl run scenario.yaml             run its jobs in 'needs' order
  replayctl run scenario.yaml --dry-run   print the compiled plan, send nothing
  replayctl windows list                  list saved recordings

Exit codes:
  0    done (also a live capture ended by Ctrl-C)
  1    runtime failure: a record job lost messages, a replay did not send requests
       because a filter, sample key or rewrite failed on them (both unless on-loss:
       warn; before an assertion's 3), no request of a replay got a response (unless
       it has asserts), broker unreachable, data dir or port held by another process,
       I/O error
  2    invalid scenario or usage: bad flags, unknown window, window name taken or saved
       concurrently by another job
  3    an assertion failed
  130  interrupted by SIGINT or SIGTERM (the job drained and reported what it did)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{flagHint(c, err)} })
	root.AddCommand(
		newValidateCmd(),
		newRunCmd(),
		newSchemaCmd(),
		newVersionCmd(),
		newBrokerCmd(),
		newWindowsCmd(),
		newImportCmd(),
		newReportCmd(),
		newKeysCmd(),
		newAgentCmd(),
		newAgentsCmd(),
		newJobsCmd(),
		newServeCmd(),
		newTokensCmd(),
	)
	// cobra's completion command, made strict like ours: an unknown shell
	// is a usage error (exit 2), not its help with exit 0.
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			group(c)
		}
	}
	return root
}

var (
	unknownFlagRE      = regexp.MustCompile(`^unknown flag: --([^=\s]+)`)
	unknownShorthandRE = regexp.MustCompile(`^unknown shorthand flag: '(.)' in -(([^-=\s])[^=\s]+)`)
)

// flagHint adds to an unknown flag's error the flag of c it likely meant,
// as cobra suggests a command for a misspelled one: "--jbo" (did you mean
// --job?), and "-job" with one dash (did you mean --job?).
func flagHint(c *cobra.Command, err error) error {
	msg := err.Error()
	word := ""
	if m := unknownFlagRE.FindStringSubmatch(msg); m != nil {
		word = m[1]
	} else if m := unknownShorthandRE.FindStringSubmatch(msg); m != nil && m[1] == m[3] {
		// A long flag given one dash: pflag read its first letter as an
		// unknown shorthand (not so -vx, a known -v before an unknown x).
		word = m[2]
	} else {
		return err
	}
	var names []string
	c.Flags().VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Deprecated == "" {
			names = append(names, f.Name)
		}
	})
	near := word
	if !slices.Contains(names, word) {
		if near = scenario.Suggest(word, names); near == "" {
			return err
		}
	}
	return fmt.Errorf("%w (did you mean --%s?)", err, near)
}

// group makes cmd a command that only holds subcommands: without one it
// prints its help; an unknown one is a usage error (exit 2).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError{fmt.Errorf("unknown command %q for %q; see %s --help", args[0], c.CommandPath(), c.CommandPath())}
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

// exactArgs is cobra.ExactArgs with a usage error (exit 2) that names the
// command and its usage line.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return argsError(cmd, argCount(n), len(args))
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs with a usage error (exit 2).
func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return argsError(cmd, "at least "+argCount(n), len(args))
		}
		return nil
	}
}

// argsError says a command got the wrong number of arguments, naming the
// command and its usage line: "run takes 1 argument, got 0 (usage:
// replayctl run FILE [flags])". The arguments are not shown: one may be a
// secret put in the wrong place.
func argsError(cmd *cobra.Command, want string, got int) error {
	name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	return usageError{fmt.Errorf("%s takes %s, got %d (usage: %s)", name, want, got, cmd.UseLine())}
}

// argCount is "no arguments", "1 argument" or "N arguments".
func argCount(n int) string {
	switch n {
	case 0:
		return "no arguments"
	case 1:
		return "1 argument"
	}
	return fmt.Sprintf("%d arguments", n)
}

func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// onceString is a string flag that refuses to be given twice: a second
// --env-file would otherwise replace the first without a word, and the
// variables of the first would be lost.
type onceString struct {
	p    *string
	name string
	set  bool
}

func (o *onceString) String() string { return *o.p }
func (o *onceString) Type() string   { return "string" }

func (o *onceString) Set(v string) error {
	if o.set {
		return fmt.Errorf("--%s is given twice (%q, then %q): it takes one value", o.name, *o.p, v)
	}
	*o.p, o.set = v, true
	return nil
}

// onceStringVar defines a string flag that may be given only once.
func onceStringVar(fs *pflag.FlagSet, p *string, name, usage string) {
	fs.Var(&onceString{p: p, name: name}, name, usage)
}
