package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/internal/gctune"
	"github.com/replayctl/replayctl/kafkaio"
)

// exitCodeError ends the process with a given code (jobs submit --wait
// exits like run).
type exitCodeError struct {
	code int
	msg  string
}

func (e exitCodeError) Error() string { return e.msg }

// kafkaFlags are the connection flags of the fleet commands.
type kafkaFlags struct {
	brokers                   []string
	tls                       bool
	caFile, certFile, keyFile string
	serverName                string
	saslMechanism, saslUser   string
	saslPasswordEnv           string
}

func (f *kafkaFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.brokers, "brokers", nil, "Kafka brokers (host:port); default $REPLAYCTL_BROKERS")
	fl.BoolVar(&f.tls, "tls", false, "connect with TLS")
	fl.StringVar(&f.caFile, "tls-ca", "", "CA certificate file (PEM) for TLS")
	fl.StringVar(&f.certFile, "tls-cert", "", "client certificate (PEM) for TLS")
	fl.StringVar(&f.keyFile, "tls-key", "", "client key (PEM) for TLS")
	fl.StringVar(&f.serverName, "tls-server-name", "", "server name to verify")
	fl.StringVar(&f.saslMechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fl.StringVar(&f.saslUser, "sasl-user", "", "SASL user name")
	fl.StringVar(&f.saslPasswordEnv, "sasl-password-env", "REPLAYCTL_SASL_PASSWORD", "environment variable holding the SASL password (never on the command line)")
}

func (f *kafkaFlags) config() (kafkaio.Config, error) {
	brokers := f.brokers
	if len(brokers) == 0 {
		if env := os.Getenv("REPLAYCTL_BROKERS"); env != "" {
			brokers = strings.Split(env, ",")
		}
	}
	if len(brokers) == 0 {
		return kafkaio.Config{}, usageError{errors.New("--brokers (or $REPLAYCTL_BROKERS) is required: the fleet talks through Kafka")}
	}
	cfg := kafkaio.Config{Brokers: brokers, ClientID: "replayctl-fleet"}
	if f.tls || f.caFile != "" || f.certFile != "" {
		cfg.TLS = &kafkaio.TLSConfig{CAFile: f.caFile, CertFile: f.certFile, KeyFile: f.keyFile, ServerName: f.serverName}
	}
	if f.saslMechanism != "" {
		pw, ok := os.LookupEnv(f.saslPasswordEnv)
		if !ok {
			return cfg, usageError{fmt.Errorf("--sasl-mechanism: $%s holds no password", f.saslPasswordEnv)}
		}
		cfg.SASL = &kafkaio.SASLConfig{Mechanism: f.saslMechanism, Username: f.saslUser, Password: pw}
	}
	return cfg, nil
}

func (f *kafkaFlags) connect(cmd *cobra.Command) (*fleet.Client, error) {
	cfg, err := f.config()
	if err != nil {
		return nil, err
	}
	return fleet.Connect(cmd.Context(), cfg, cmd.OutOrStdout(), newLogger(cmd.ErrOrStderr(), false))
}

// notSubmitted is a submission's error: its usage errors (exit 2) were
// found before anything was published, and say so.
func notSubmitted(err error) error {
	if !errors.Is(err, fleet.ErrUsage) {
		return err
	}
	var inv *fleet.InvalidScenarioError
	if errors.As(err, &inv) {
		n := fmt.Sprintf("%d problems", len(inv.Problems))
		if len(inv.Problems) == 1 {
			n = "1 problem"
		}
		return usageError{fmt.Errorf("invalid scenario %s (%s); nothing submitted:\n%s", inv.File, n, strings.Join(inv.Problems, "\n"))}
	}
	return usageError{fmt.Errorf("%w; nothing submitted", err)}
}

// fleetErr maps the fleet's usage errors to exit code 2.
func fleetErr(err error) error {
	if errors.Is(err, fleet.ErrUsage) {
		return usageError{err}
	}
	return err
}

func newKeysCmd() *cobra.Command {
	keys := group(&cobra.Command{Use: "keys", Short: "Signing keys for fleet job specs"})
	newCmd := &cobra.Command{
		Use:   "new PATH",
		Short: "Write a new Ed25519 key pair: PATH.key (private, mode 0600) and PATH.pub (give it to agents' --trust)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pub, err := fleet.NewKeyPair(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s.key (private, 0600) and %s.pub (%s)\n", args[0], args[0], fleet.Fingerprint(pub))
			return nil
		},
	}
	keys.AddCommand(newCmd)
	return keys
}

func newAgentCmd() *cobra.Command {
	var (
		kf                     kafkaFlags
		name, labels, trust    string
		workDir, metricsListen string
		maxRun, maxSpecTTL     time.Duration
		maxConcurrent          int
		allow, vars, targets   []string
		verbose                bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a fleet agent: takes signed jobs from Kafka and runs them here; opens no port",
		Long: `An agent connects out to Kafka, heartbeats every 2 s into replayctl.agents, takes signed job
specs from replayctl.jobs and publishes states, progress and results to replayctl.status. It runs
scenarios only, restricted: ${VAR} comes from its own --var values, files stay under --work-dir,
replay targets must match --allow-targets. It listens on nothing (--metrics-listen serves
Prometheus metrics on a loopback address when asked).

A signed spec can be run by whoever re-publishes it until it expires: the agent refuses a spec
(or cancel) valid for longer than --max-spec-ttl (expires-at minus issued-at), or issued more
than 2m ahead of its clock, and publishes why.`,
		Example: `  replayctl agent --brokers k1:9092 --name web-1 --labels role=web,zone=a --allow record \
      --trust fleet.pub --var IFACE=eth0 --var PORT=8080 --work-dir /var/lib/replayctl`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			gctune.Apply()
			cfg, err := kf.config()
			if err != nil {
				return err
			}
			lbl, err := fleet.ParseLabels(labels)
			if err != nil {
				return usageError{err}
			}
			if trust == "" {
				return usageError{errors.New("--trust FILE is required: the public keys whose job specs this agent runs")}
			}
			keys, err := fleet.ReadTrusted(trust)
			if err != nil {
				return usageError{err}
			}
			if maxConcurrent < 1 {
				return usageError{fmt.Errorf("--max-concurrent %d: want 1 or more (how many jobs or shards run here at once)", maxConcurrent)}
			}
			if maxSpecTTL < fleet.CancelTTL || maxSpecTTL > fleet.MaxTTL {
				return usageError{fmt.Errorf("--max-spec-ttl %s: want %s to %s (jobs submit signs specs for at most %s, jobs cancel its cancels for %s)",
					maxSpecTTL, fleet.CancelTTL, fleet.MaxTTL, fleet.MaxTTL, fleet.CancelTTL)}
			}
			vm := map[string]string{}
			for _, v := range vars {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					return usageError{fmt.Errorf("--var %q: want NAME=VALUE", v)}
				}
				vm[k] = val
			}
			log := newLogger(cmd.ErrOrStderr(), true)
			if !verbose {
				log = newLogger(cmd.ErrOrStderr(), false)
			}
			metrics := fleet.NewMetrics()
			a, err := fleet.NewAgent(fleet.AgentConfig{
				Name: name, Labels: lbl, Allow: allow, Trust: keys, Vars: vm, WorkDir: workDir,
				AllowTargets: targets, Kafka: cfg, Version: Version, Logger: log, Metrics: metrics, MaxRun: maxRun, MaxConcurrent: maxConcurrent,
				MaxSpecTTL: maxSpecTTL,
			})
			if err != nil {
				return usageError{err}
			}
			if metricsListen != "" {
				addr, _, err := metrics.Serve(cmd.Context(), metricsListen)
				if berr, ok := bindError(err, "--metrics-listen", metricsListen); ok {
					return berr // exit 1, as broker's and serve's
				}
				if err != nil {
					return usageError{err}
				}
				log.Info("metrics", "url", "http://"+addr.String()+"/metrics")
			}
			return a.Run(cmd.Context())
		},
	}
	kf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "this agent's name (unique in the fleet)")
	fl.StringVar(&labels, "labels", "", "labels jobs select agents by: role=web,zone=a")
	fl.StringSliceVar(&allow, "allow", nil, "job kinds this agent runs: record, replay (or both)")
	fl.StringVar(&trust, "trust", "", "file of PEM public keys (replayctl keys new … .pub) whose specs this agent runs")
	fl.StringArrayVar(&vars, "var", nil, "NAME=VALUE for ${NAME} in job scenarios (repeatable); the only values jobs see")
	fl.StringVar(&workDir, "work-dir", "", "directory jobs may read and write under")
	fl.StringSliceVar(&targets, "allow-targets", nil, "replay targets allowed, host[:port] patterns (127.0.0.1:*, *.staging:8080)")
	fl.IntVar(&maxConcurrent, "max-concurrent", fleet.DefaultMaxConcurrent, "jobs or shards run here at once; more wait QUEUED, in the order taken, until one ends")
	fl.DurationVar(&maxRun, "max-run", 0, "stop a job or shard that runs longer than this here, as a cancel does (0: no limit)")
	fl.DurationVar(&maxSpecTTL, "max-spec-ttl", fleet.DefaultMaxSpecTTL,
		fmt.Sprintf("refuse a spec or cancel valid for longer than this (expires-at minus issued-at; %s to %s), or issued more than %s ahead of this host's clock", fleet.CancelTTL, fleet.MaxTTL, fleet.ClockSkew))
	fl.StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus /metrics on this loopback address (127.0.0.1:9464)")
	fl.BoolVarP(&verbose, "verbose", "v", true, "log jobs taken, refused and finished (on by default: --verbose=false logs warnings and errors only)")
	return cmd
}

func newAgentsCmd() *cobra.Command {
	agents := group(&cobra.Command{Use: "agents", Short: "The fleet's agents"})
	var (
		kf  kafkaFlags
		all bool
	)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List agents: name, labels, allowed kinds, version, last heartbeat, running job, runs going and queued, --max-spec-ttl",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := kf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.Agents(cmd.Context(), all)
		},
	}
	kf.register(ls)
	ls.Flags().BoolVar(&all, "all", false, "also agents silent for more than an hour")
	agents.AddCommand(ls)
	return agents
}

func newJobsCmd() *cobra.Command {
	jobs := group(&cobra.Command{Use: "jobs", Short: "Fleet jobs: submit, list, show, cancel, logs"})
	jobs.AddCommand(newJobsSubmitCmd())
	for _, sub := range []struct {
		use, short string
		args       int
		run        func(cmd *cobra.Command, c *fleet.Client, args []string) error
	}{
		{"ls", "List jobs, newest first", 0, func(_ *cobra.Command, c *fleet.Client, _ []string) error { c.List(); return nil }},
		{"logs ID", "The output of every run of a job (vars' values masked)", 1, func(_ *cobra.Command, c *fleet.Client, a []string) error { return c.Logs(a[0]) }},
	} {
		var kf kafkaFlags
		run := sub.run
		cmd := &cobra.Command{
			Use: sub.use, Short: sub.short, Args: exactArgs(sub.args),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := kf.connect(cmd)
				if err != nil {
					return err
				}
				defer c.Close()
				return fleetErr(run(cmd, c, args))
			},
		}
		kf.register(cmd)
		jobs.AddCommand(cmd)
	}
	jobs.AddCommand(newJobsShowCmd())
	var (
		kf      kafkaFlags
		keyFile string
		cmdID   string
	)
	cancel := &cobra.Command{
		Use:   "cancel ID",
		Short: "Stop a job on every agent (signed; waits until every run stopped, up to 10 s)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readKey(keyFile)
			if err != nil {
				return err
			}
			c, err := kf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return fleetErr(c.CancelJob(cmd.Context(), args[0], cmdID, key))
		},
	}
	kf.register(cancel)
	cancel.Flags().StringVar(&keyFile, "key", "", "signing key (replayctl keys new); default $REPLAYCTL_KEY")
	cancel.Flags().StringVar(&cmdID, "command-id", "", "ID of this command (a retry with the same ID only reports the outcome)")
	jobs.AddCommand(cancel)
	return jobs
}

func newJobsShowCmd() *cobra.Command {
	var (
		kf    kafkaFlags
		trust string
	)
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "A job: its state, every agent's or shard's state and reason, the result",
		Long: `A job: its spec, its state, every agent's or shard's state and reason, the result.

Anyone who may write to the jobs topic can publish a spec naming any submitter: the
submitter is shown as such only when the spec's signature verifies against a key of
--trust (the agents' trust file); otherwise it is a claim, marked UNVERIFIED or not
checked.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var keys []ed25519.PublicKey
			if trust != "" {
				var err error
				if keys, err = fleet.ReadTrusted(trust); err != nil {
					return usageError{err}
				}
			}
			c, err := kf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			c.Trust = keys
			return fleetErr(c.Show(args[0]))
		},
	}
	kf.register(cmd)
	cmd.Flags().StringVar(&trust, "trust", "", "file of PEM public keys (as an agent's --trust) to verify the spec's signature against")
	return cmd
}

func readKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		path = os.Getenv("REPLAYCTL_KEY")
	}
	if path == "" {
		return nil, usageError{errors.New("--key FILE (or $REPLAYCTL_KEY) is required: agents run only signed specs")}
	}
	k, err := fleet.ReadPrivateKey(path)
	if err != nil {
		return nil, usageError{err}
	}
	return k, nil
}

func newJobsSubmitCmd() *cobra.Command {
	var (
		kf                      kafkaFlags
		job, on, keyFile, jobID string
		set                     []string
		shards                  int
		forDur, ttl             time.Duration
		wait, unsigned          bool
	)
	cmd := &cobra.Command{
		Use:   "submit SCENARIO --job NAME --on LABELS",
		Short: "Sign a job and dispatch it to the matching agents",
		Long: `submit signs the scenario's job (text and sha256, job, --set overrides, selector, shards, expiry)
and publishes it to replayctl.jobs. A record job starts on every live agent matching --on at once,
into one topic under one recording ID; when the last agent has flushed, that agent saves ONE window
for every host's records (from the offsets taken here before any agent wrote). A replay job is cut
into --shards parts of the window, one per matching agent, all starting at one instant. An agent
that does not answer within 10 s is reported and the others go on.

Before it publishes anything, submit refuses (exit 2) what the agents would refuse every time:
the scenario loaded with the --set overrides as an agent loads it (a ${VAR} without a default is
the agents' --var) and compiled, each problem as FILE:LINE:COL: message; a --shards, --for or
--ttl out of range (at most 24h, and no more than the --max-spec-ttl of the agents chosen, which
their heartbeats state); a job that no live agent matching --on allows (it names the agents that
match and what they allow); an --id already submitted with another spec (the same spec again
does nothing). With --wait, submit follows the job, prints progress and the merged result, and
exits like run: 0 done, 1 failed, 2 invalid, 3 an assertion failed.`,
		Example: `  replayctl jobs submit capture.yaml --job record --on role=web --for 30m --key fleet.key
  replayctl jobs submit replay.yaml --job replay --on role=load --shards 4 --wait`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if job == "" || on == "" {
				return usageError{errors.New("--job NAME and --on LABELS are required")}
			}
			sel, err := fleet.ParseLabels(on)
			if err != nil {
				return usageError{err}
			}
			fl := cmd.Flags()
			switch {
			case len(sel) == 0:
				return usageError{fmt.Errorf("--on %q: want labels the agents have, key=value[,key=value]", on)}
			case shards < 1 || shards > fleet.MaxShards:
				return usageError{fmt.Errorf("--shards %d: want 1 to %d", shards, fleet.MaxShards)}
			case fl.Changed("for") && forDur <= 0:
				return usageError{fmt.Errorf("--for %s: want a positive duration such as 30s or 10m", forDur)}
			case ttl <= 0:
				return usageError{fmt.Errorf("--ttl %s: want a positive duration such as 5m (how long agents may take the spec)", ttl)}
			case ttl > fleet.MaxTTL:
				return usageError{fmt.Errorf("--ttl %s: more than the maximum %s (agents refuse a spec valid for longer than their --max-spec-ttl, %s by default)", ttl, fleet.MaxTTL, fleet.DefaultMaxSpecTTL)}
			}
			text, err := os.ReadFile(args[0])
			if err != nil {
				return usageError{err}
			}
			req := fleet.SubmitRequest{
				File: args[0], Text: text, Job: job, Selector: sel, Set: set, Shards: shards, For: forDur,
				JobID: jobID, TTL: ttl,
			}
			// What the agents would refuse whatever their --var values, and
			// what the API answers 400 to: refused here, before anything is
			// published (the fleet's checks follow once connected).
			if _, err := fleet.CheckSubmit(req); err != nil {
				return notSubmitted(err)
			}
			if !unsigned {
				if req.Key, err = readKey(keyFile); err != nil {
					return err
				}
			}
			c, err := kf.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			sub, err := c.SubmitJob(cmd.Context(), req)
			if err != nil {
				return notSubmitted(err)
			}
			id := sub.ID
			if !sub.Existing {
				fmt.Fprintf(cmd.OutOrStdout(), "submitted %s\n", id)
			}
			if !wait {
				return nil
			}
			js, err := c.Wait(cmd.Context(), id)
			if err != nil {
				if errors.Is(err, context.Canceled) {
					return fmt.Errorf("stopped waiting; the job goes on (replayctl jobs cancel %s to stop it)", id)
				}
				return fleetErr(err)
			}
			if code := fleet.ExitCode(js); code != 0 {
				return exitCodeError{code: code, msg: fmt.Sprintf("job %s %s: %s", id, js.State, js.Reason)}
			}
			return nil
		},
	}
	kf.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&job, "job", "", "the scenario's job to run")
	fl.StringVar(&on, "on", "", "agents to run it on, by labels: role=web,zone=a")
	fl.StringArrayVar(&set, "set", nil, "override a scalar: path.to.key=value (repeatable)")
	fl.IntVar(&shards, "shards", 1, "replay jobs: cut the window into this many shards, one per agent")
	fl.DurationVar(&forDur, "for", 0, "record jobs: stop after this long (sets stop.after)")
	fl.StringVar(&keyFile, "key", "", "signing key (replayctl keys new); default $REPLAYCTL_KEY")
	fl.StringVar(&jobID, "id", "", "job ID (default: a new one); the same spec again under an ID does nothing, another spec is refused")
	fl.DurationVar(&ttl, "ttl", fleet.DefaultTTL, fmt.Sprintf("how long agents may take the spec before it expires (at most %s; an agent refuses a spec valid for longer than its --max-spec-ttl)", fleet.MaxTTL))
	fl.BoolVar(&wait, "wait", false, "follow the job to its end and exit like run (0/1/2/3)")
	fl.BoolVar(&unsigned, "unsigned", false, "publish the spec unsigned (agents refuse it; to check that they do)")
	_ = fl.MarkHidden("unsigned")
	return cmd
}
