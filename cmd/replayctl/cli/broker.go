package cli

import (
	"errors"
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/kafkaio"
)

func newBrokerCmd() *cobra.Command {
	var listen, dataDir string
	var partitions int32
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run the embedded Kafka-protocol broker as a standalone server",
		Long: `Broker runs replayctl's embedded Kafka-protocol broker (franz-go's kfake) until SIGINT or
SIGTERM, keeping its data in --data-dir so that recordings survive restarts. Other replayctl
processes (kafka.brokers: [127.0.0.1:9092]), kcat and GoReplay can reach it.

The data dir is locked while the broker runs, and its lock file (replayctl.lock) holds the
broker's address: replayctl run and replayctl windows on the same data dir (with the embedded
broker) connect to it by themselves. A data dir held by another process is refused (exit 1).`,
		Example: `  replayctl broker --listen 127.0.0.1:9092 --data-dir .replayctl/data
  kcat -L -b 127.0.0.1:9092`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usageError{fmt.Errorf("--listen %q: want host:port: %w", listen, err)}
			}
			ctx := cmd.Context()
			b, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{Listen: listen, DataDir: dataDir, Partitions: partitions, Command: "replayctl broker", Serve: true})
			var busy *kafkaio.BusyError
			if errors.As(err, &busy) && busy.Holder.Addr != "" {
				return fmt.Errorf("%w: one broker per data dir; use that one (--brokers %s)", err, busy.Holder.Addr)
			}
			if berr, ok := bindError(err, "--listen", listen); ok {
				return berr
			}
			if err != nil {
				return err
			}
			defer b.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "replayctl broker listening on %v (data dir %s); Ctrl-C stops it\n", b.Addrs(), dataDir)
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "replayctl broker: stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to listen on")
	cmd.Flags().StringVar(&dataDir, "data-dir", engine.DefaultDataDir, "directory that keeps topics and records across restarts")
	cmd.Flags().Int32Var(&partitions, "partitions", 1, "default partition count of auto-created topics")
	return cmd
}
