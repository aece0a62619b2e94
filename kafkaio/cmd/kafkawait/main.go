// Command kafkawait waits until a Kafka broker answers a metadata request.
//
//	go run ./kafkaio/cmd/kafkawait [-timeout 90s] 127.0.0.1:19092
//
// It exits 0 when the broker answers, 1 when it did not within the timeout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/replayctl/replayctl/kafkaio"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	timeout := flag.Duration("timeout", 90*time.Second, "how long to wait")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: kafkawait [-timeout 90s] host:port...")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
		last = kafkaio.Ping(pctx, kgo.SeedBrokers(flag.Args()...))
		pcancel()
		if last == nil {
			fmt.Println("kafka is up at", flag.Args())
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Fprintf(os.Stderr, "kafkawait: no answer from %v within %v: %v\n", flag.Args(), *timeout, last)
	os.Exit(1)
}
