package kafkaio

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedOptions configures the in-process broker.
type EmbeddedOptions struct {
	// Listen is the address to listen on; "127.0.0.1:0" (a free loopback
	// port) when empty.
	Listen string
	// DataDir keeps the broker's topics, offsets and records; they survive a
	// restart on the same directory. Empty keeps everything in memory.
	DataDir string
	// Partitions is the default partition count of auto-created topics (1 when 0).
	Partitions int32
	// Command says who runs the broker, for the data directory's lock file
	// ("replayctl run"); "replayctl" when empty.
	Command string
	// Serve writes the broker's address in the data directory's lock file,
	// so that other processes on the same directory connect to it
	// (`replayctl broker`) instead of failing with a *BusyError.
	Serve bool
}

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) that
// kcat, GoReplay and other replayctl processes can reach.
type Embedded struct {
	c       *kfake.Cluster
	addrs   []string
	lock    *DataDirLock
	stamper *logAppendStamper
}

// StartEmbedded starts one broker. ctx bounds the start only. With a data
// directory it first takes the directory's lock: when another process (or
// another broker of this one) holds it, it returns a *BusyError naming the
// holder and, for a `replayctl broker`, its address.
func StartEmbedded(ctx context.Context, o EmbeddedOptions) (*Embedded, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	listen := o.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: listen address %q: %w", listen, err)
	}
	parts := o.Partitions
	if parts < 1 {
		parts = 1
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(int(parts)),
		kfake.ClusterID("replayctl-embedded"),
		// The embedded broker is the tool's own store of recordings: it
		// keeps them until their windows are deleted, whatever their capture
		// time (a pcap from last month must not vanish at the next
		// retention check). A topic's own retention.ms still applies.
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, listen)
			if err != nil {
				return nil, err
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				// Advertise a reachable address, not 0.0.0.0.
				return advertised{ln}, nil
			}
			return ln, nil
		}),
	}
	var lock *DataDirLock
	if o.DataDir != "" {
		h := Holder{Command: cmp.Or(o.Command, "replayctl"), Serving: o.Serve}
		if lock, err = LockDataDir(ctx, o.DataDir, h); err != nil {
			return nil, err
		}
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("embedded broker: %w", err), lock.Release())
	}
	e := &Embedded{c: c, addrs: c.ListenAddrs(), lock: lock, stamper: stampLogAppendTime(c)}
	if lock != nil && o.Serve && len(e.addrs) > 0 {
		h := lock.holder
		h.Addr = e.addrs[0]
		if err := lock.Update(h); err != nil {
			c.Close()
			return nil, errors.Join(fmt.Errorf("embedded broker: %w", err), lock.Release())
		}
	}
	return e, nil
}

// Addrs returns the broker addresses (host:port) clients should use.
func (e *Embedded) Addrs() []string { return append([]string(nil), e.addrs...) }

// Close stops the broker and, with a data directory, saves its state and
// releases the directory's lock.
func (e *Embedded) Close() error {
	e.c.Close()
	return e.lock.Release()
}

// advertised reports a loopback address for a listener bound to all
// interfaces, so that the broker's metadata names a dialable address.
type advertised struct{ net.Listener }

func (a advertised) Addr() net.Addr {
	ta, ok := a.Listener.Addr().(*net.TCPAddr)
	if !ok {
		return a.Listener.Addr()
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ta.Port}
}
