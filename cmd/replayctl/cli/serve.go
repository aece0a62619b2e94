package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/serve"
)

// registerServe registers the Kafka connection flags of serve: the TLS
// ones are --kafka-tls-*, as --tls-cert/--tls-key are the listener's.
func (f *kafkaFlags) registerServe(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.brokers, "brokers", nil, "Kafka brokers (host:port); default $REPLAYCTL_BROKERS")
	fl.BoolVar(&f.tls, "kafka-tls", false, "connect to Kafka with TLS")
	fl.StringVar(&f.caFile, "kafka-tls-ca", "", "CA certificate file (PEM) for Kafka TLS")
	fl.StringVar(&f.certFile, "kafka-tls-cert", "", "client certificate (PEM) for Kafka TLS")
	fl.StringVar(&f.keyFile, "kafka-tls-key", "", "client key (PEM) for Kafka TLS")
	fl.StringVar(&f.serverName, "kafka-tls-server-name", "", "Kafka server name to verify")
	fl.StringVar(&f.saslMechanism, "sasl-mechanism", "", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	fl.StringVar(&f.saslUser, "sasl-user", "", "SASL user name")
	fl.StringVar(&f.saslPasswordEnv, "sasl-password-env", "REPLAYCTL_SASL_PASSWORD", "environment variable holding the SASL password (never on the command line)")
}

// checkListen refuses a non-loopback address without TLS unless told so.
func checkListen(addr string, tls, insecure bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip != nil && ip.IsLoopback() {
		return nil
	}
	if tls || insecure {
		return nil
	}
	return fmt.Errorf("--listen %q is not a loopback address: serve it with --tls-cert and --tls-key, or say --insecure-listen (tokens would cross the network in clear)", addr)
}

func newServeCmd() *cobra.Command {
	var (
		kf                       kafkaFlags
		dir, listen, tokens, key string
		trust                    string
		tlsCert, tlsKey          string
		insecure, verbose        bool
		maxBody                  int64
	)
	cmd := &cobra.Command{
		Use:   "serve --brokers B --scenarios DIR --tokens FILE --key KEY",
		Short: "REST API and web UI over the fleet (stateless: any number of instances agree)",
		Long: `serve answers a REST API under /v1 (OpenAPI at /v1/openapi.json) and a web UI at /, over the
fleet's Kafka topics: it keeps no state of its own, so any number of instances show the same jobs.
Jobs are scenarios from --scenarios DIR, validated before they are signed with --key and published.
Every API call needs a bearer token from --tokens FILE (replayctl tokens add), with scope read,
record, replay or admin. It binds to loopback unless given TLS (--tls-cert/--tls-key) or
--insecure-listen.`,
		Example: `  replayctl tokens add alice --scope replay --tokens /etc/replayctl/tokens.json
  replayctl serve --brokers k1:9092 --scenarios ./scenarios --tokens /etc/replayctl/tokens.json \
      --key fleet.key --listen 127.0.0.1:8080`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := kf.config()
			if err != nil {
				return err
			}
			if dir == "" {
				return usageError{errors.New("--scenarios DIR is required: the scenarios jobs are made from")}
			}
			if (tlsCert == "") != (tlsKey == "") {
				return usageError{errors.New("--tls-cert and --tls-key go together")}
			}
			if err := checkListen(listen, tlsCert != "", insecure); err != nil {
				return usageError{err}
			}
			if tokens == "" {
				tokens = os.Getenv("REPLAYCTL_TOKENS")
			}
			if tokens == "" {
				return usageError{errors.New("--tokens FILE (or $REPLAYCTL_TOKENS) is required: replayctl tokens add NAME --scope … --tokens FILE")}
			}
			k, err := readKey(key)
			if err != nil {
				return err
			}
			var trusted []ed25519.PublicKey
			if trust != "" {
				if trusted, err = fleet.ReadTrusted(trust); err != nil {
					return usageError{err}
				}
			}
			// Listen first: a port in use is said at once, whether Kafka
			// answers or not.
			ln, err := net.Listen("tcp", listen)
			if berr, ok := bindError(err, "--listen", listen); ok {
				return berr // exit 1, as broker's
			}
			if err != nil {
				return usageError{fmt.Errorf("--listen: %w", err)}
			}
			defer ln.Close()
			log := newLogger(cmd.ErrOrStderr(), verbose)
			srv, err := serve.New(cmd.Context(), serve.Config{
				Kafka: cfg, ScenarioDir: dir, TokensFile: tokens, Key: k, Trust: trusted, Logger: log, MaxBody: maxBody, Version: Version,
			})
			if err != nil {
				return err
			}
			defer srv.Close()
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
			scheme := "http"
			if tlsCert != "" {
				scheme = "https"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "replayctl serve: %s://%s/ (API under /v1, OpenAPI at /v1/openapi.json)\n", scheme, ln.Addr())
			errc := make(chan error, 1)
			go func() {
				if tlsCert != "" {
					errc <- hs.ServeTLS(ln, tlsCert, tlsKey)
				} else {
					errc <- hs.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = hs.Shutdown(sctx)
			return nil
		},
	}
	kf.registerServe(cmd)
	fl := cmd.Flags()
	fl.StringVar(&dir, "scenarios", "", "directory of the scenarios jobs are made from (nothing outside it is read)")
	fl.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (loopback unless --tls-cert/--tls-key or --insecure-listen)")
	fl.StringVar(&tokens, "tokens", "", "tokens file (replayctl tokens add); shared by every serve instance; default $REPLAYCTL_TOKENS")
	fl.StringVar(&key, "key", "", "signing key for job specs (replayctl keys new); default $REPLAYCTL_KEY")
	fl.StringVar(&trust, "trust", "", "file of PEM public keys (as an agent's --trust) whose job specs the API and UI show as verified, besides --key's")
	fl.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	fl.StringVar(&tlsKey, "tls-key", "", "serve HTTPS with this key (PEM)")
	fl.BoolVar(&insecure, "insecure-listen", false, "allow a non-loopback --listen without TLS")
	fl.Int64Var(&maxBody, "max-body", 1<<20, "largest request body accepted (bytes)")
	fl.BoolVarP(&verbose, "verbose", "v", false, "log submissions and cancels")
	return cmd
}

func newTokensCmd() *cobra.Command {
	tokens := group(&cobra.Command{Use: "tokens", Short: "API tokens of replayctl serve (only their sha256 is stored)"})
	var file string
	fileFlag := func(cmd *cobra.Command) {
		cmd.Flags().StringVar(&file, "tokens", "", "tokens file; default $REPLAYCTL_TOKENS")
	}
	path := func() (string, error) {
		if file == "" {
			file = os.Getenv("REPLAYCTL_TOKENS")
		}
		if file == "" {
			return "", usageError{errors.New("--tokens FILE (or $REPLAYCTL_TOKENS) is required")}
		}
		return file, nil
	}
	var scopes []string
	add := &cobra.Command{
		Use:   "add NAME --scope read|record|replay|admin",
		Short: "Create a token; prints it once (the file keeps only its sha256)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := path()
			if err != nil {
				return err
			}
			sc, err := serve.ParseScopes(scopes)
			if err != nil {
				return usageError{err}
			}
			secret, err := serve.AddToken(p, args[0], sc)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) added to %s; it is shown only now\n", args[0], strings.Join(sc, ","), p)
			return nil
		},
	}
	fileFlag(add)
	add.Flags().StringSliceVar(&scopes, "scope", nil, "scopes: read, record, replay, admin (repeatable or comma-separated)")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List tokens (names and scopes)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := path()
			if err != nil {
				return err
			}
			ts, err := serve.ReadTokens(p)
			if err != nil {
				return err
			}
			slices.SortFunc(ts, func(a, b serve.Token) int { return strings.Compare(a.Name, b.Name) })
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSCOPES\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, strings.Join(t.Scopes, ","), t.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
	fileFlag(ls)
	rm := &cobra.Command{
		Use:   "rm NAME",
		Short: "Revoke a token (every serve instance reading the file stops accepting it)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := path()
			if err != nil {
				return err
			}
			if err := serve.RemoveToken(p, args[0]); err != nil {
				return usageError{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s removed\n", args[0])
			return nil
		},
	}
	fileFlag(rm)
	tokens.AddCommand(add, ls, rm)
	return tokens
}
