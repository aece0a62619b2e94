// Command replayctl records production HTTP traffic into Kafka and replays
// any recording against any environment, driven by YAML scenario files.
package main

import (
	"os"

	"github.com/replayctl/replayctl/cmd/replayctl/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
