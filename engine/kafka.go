package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/replayctl/replayctl/catalog"
	"github.com/replayctl/replayctl/kafkaio"
	"github.com/replayctl/replayctl/scenario"
)

// DefaultDataDir is the embedded broker's data directory when neither the
// scenario nor --data-dir names one (relative to the working directory).
const DefaultDataDir = ".replayctl/data"

// kafkaConn is the run's connection to Kafka, opened on first use: the
// embedded broker when the scenario says so, a client, an admin client and
// the windows catalog.
type kafkaConn struct {
	embedded *kafkaio.Embedded
	servedBy kafkaio.Holder // the `replayctl broker` connected to instead, if any
	dataDir  string         // the embedded broker's, when embedded or servedBy
	opts     []kgo.Opt      // connection options (brokers, TLS, SASL, client ID)
	cl       *kgo.Client
	adm      *kadm.Client
	catalog  *catalog.Catalog
	brokers  []string
}

// KafkaSettings say how to reach Kafka: from the scenario, overridden by the
// command line.
type KafkaSettings struct {
	Brokers      []string // ["embedded"] or host:port
	DataDir      string
	CatalogTopic string
	Config       kafkaio.Config
	// Command names the process in the data directory's lock file.
	Command string
	// Notice receives one line when the embedded broker's data directory
	// is served by a `replayctl broker` and the run connects to it.
	Notice io.Writer
}

// kafkaSettings resolves the scenario's kafka section and the overrides.
func kafkaSettings(k scenario.Kafka, opts Options) KafkaSettings {
	ks := KafkaSettings{Brokers: k.Brokers, CatalogTopic: k.CatalogTopic, Command: "replayctl run", Notice: opts.Err}
	if len(opts.Brokers) > 0 {
		ks.Brokers = opts.Brokers
	}
	switch {
	case opts.DataDir != "":
		ks.DataDir = opts.DataDir
	case k.DataDir.IsSet():
		ks.DataDir = k.DataDir.Abs
	default:
		ks.DataDir = DefaultDataDir
	}
	if ks.CatalogTopic == "" {
		ks.CatalogTopic = "replayctl.windows"
	}
	cfg := kafkaio.Config{ClientID: k.ClientID}
	if k.TLS != nil && k.TLS.Enabled {
		cfg.TLS = &kafkaio.TLSConfig{CAFile: k.TLS.CAFile.Abs, CertFile: k.TLS.CertFile.Abs, KeyFile: k.TLS.KeyFile.Abs,
			InsecureSkipVerify: k.TLS.InsecureSkipVerify, ServerName: k.TLS.ServerName}
	}
	if k.SASL != nil {
		cfg.SASL = &kafkaio.SASLConfig{Mechanism: k.SASL.Mechanism, Username: k.SASL.Username, Password: k.SASL.Password}
	}
	ks.Config = cfg
	if opts.Kafka != nil {
		ks.Config = *opts.Kafka
		ks.Config.ClientID = k.ClientID
		ks.Brokers = opts.Kafka.Brokers
	}
	return ks
}

// Embedded reports whether the settings name the in-process broker.
func (ks KafkaSettings) Embedded() bool {
	return len(ks.Brokers) == 0 || (len(ks.Brokers) == 1 && ks.Brokers[0] == "embedded")
}

// ConnectKafka starts the embedded broker when asked and connects to the
// brokers; it opens the windows catalog (creating its topic when missing).
func connectKafka(ctx context.Context, ks KafkaSettings, log *slog.Logger) (*kafkaConn, error) {
	kc := &kafkaConn{}
	cfg := ks.Config
	if ks.Embedded() {
		kc.dataDir = ks.DataDir
		e, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: ks.DataDir, Command: ks.Command})
		var busy *kafkaio.BusyError
		switch {
		case errors.As(err, &busy) && busy.Holder.Addr != "":
			// A `replayctl broker` serves this data directory: use it
			// rather than open the same files twice.
			cfg.Brokers = []string{busy.Holder.Addr}
			kc.servedBy = busy.Holder
			if ks.Notice != nil {
				fmt.Fprintf(ks.Notice, "replayctl: data dir %s is served by `replayctl broker` (pid %d) at %s: connecting to it\n",
					ks.DataDir, busy.Holder.PID, busy.Holder.Addr)
			}
			log.Info("connecting to the broker that serves the data dir", "addr", busy.Holder.Addr, "pid", busy.Holder.PID, "data-dir", ks.DataDir)
		case busy != nil:
			return nil, busy
		case err != nil:
			return nil, fmt.Errorf("embedded broker (data dir %s): %w", ks.DataDir, err)
		default:
			kc.embedded = e
			cfg.Brokers = e.Addrs()
			log.Info("embedded broker started", "addrs", e.Addrs(), "data-dir", ks.DataDir)
		}
	} else {
		cfg.Brokers = ks.Brokers
	}
	kc.brokers = cfg.Brokers
	opts, err := cfg.Opts()
	if err != nil {
		kc.close()
		return nil, fmt.Errorf("kafka: %w", err)
	}
	kc.opts = opts
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := kafkaio.Ping(pingCtx, opts...); err != nil {
		kc.close()
		if h := kc.servedBy; h.PID != 0 {
			return nil, fmt.Errorf("the `replayctl broker` (pid %d) that holds data dir %s does not answer at %s: %w", h.PID, ks.DataDir, h.Addr, err)
		}
		return nil, fmt.Errorf("kafka brokers %v do not answer: %w", cfg.Brokers, err)
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		kc.close()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	kc.cl = cl
	kc.adm = kadm.NewClient(cl)
	cat, err := catalog.Open(ctx, cl, kc.adm, ks.CatalogTopic)
	if err != nil {
		kc.close()
		return nil, fmt.Errorf("windows catalog %s: %w", ks.CatalogTopic, err)
	}
	kc.catalog = cat
	return kc, nil
}

// where says where the connection leads, for messages: the embedded
// broker's data dir, the broker serving it, or the brokers.
func (kc *kafkaConn) where() string {
	switch {
	case kc.embedded != nil:
		return "the embedded broker's data dir " + kc.dataDir
	case kc.servedBy.PID != 0:
		return fmt.Sprintf("the broker at %s that serves data dir %s", kc.servedBy.Addr, kc.dataDir)
	}
	return "brokers " + strings.Join(kc.brokers, ",")
}

func (kc *kafkaConn) close() {
	if kc.cl != nil {
		kc.cl.Close()
	}
	if kc.embedded != nil {
		_ = kc.embedded.Close()
	}
}

// lazyKafka opens the connection once, on first use.
type lazyKafka struct {
	once sync.Once
	kc   *kafkaConn
	err  error
	ks   KafkaSettings
	log  *slog.Logger
}

func (l *lazyKafka) get(ctx context.Context) (*kafkaConn, error) {
	l.once.Do(func() { l.kc, l.err = connectKafka(ctx, l.ks, l.log) })
	return l.kc, l.err
}

func (l *lazyKafka) close() {
	if l.kc != nil {
		l.kc.close()
	}
}

// ensureTopic creates a scenario topic when it is missing and create: true;
// otherwise a missing topic is an error that says how to fix it. A topic it
// creates gets max.message.bytes of at least minMessageBytes (unless the
// scenario sets it). It returns whether it created the topic.
func (kc *kafkaConn) ensureTopic(ctx context.Context, t *scenario.Topic, minMessageBytes int64) (bool, error) {
	if t.Create {
		cfg := t.Config
		if _, set := cfg["max.message.bytes"]; !set && minMessageBytes > kafkaDefaultMaxMessageBytes {
			cfg = maps.Clone(cfg)
			if cfg == nil {
				cfg = map[string]string{}
			}
			cfg["max.message.bytes"] = strconv.FormatInt(minMessageBytes, 10)
		}
		created, err := kafkaio.EnsureTopic(ctx, kc.adm, t.Name, t.Partitions, t.ReplicationFactor, cfg)
		if err != nil {
			return false, fmt.Errorf("topic %s: %w", t.Name, err)
		}
		if created {
			slog.Default().Debug("topic created", "topic", t.Name)
		}
		return created, nil
	}
	details, err := kc.adm.ListTopics(ctx, t.Name)
	if err != nil {
		return false, fmt.Errorf("topic %s: %w", t.Name, err)
	}
	if d, ok := details[t.Name]; !ok || d.Err != nil {
		return false, fmt.Errorf("topic %s does not exist on %v (add create: true to topics.%s to create it)", t.Name, kc.brokers, t.Key)
	}
	return false, nil
}

// kafkaDefaultMaxMessageBytes is Kafka's default message.max.bytes.
const kafkaDefaultMaxMessageBytes = 1048588

// topicLimits are the configs of a topic that decide whether a recording
// fits in it and stays there.
type topicLimits struct {
	// maxMessageBytes is the largest record batch the topic takes.
	maxMessageBytes int64
	// retention is how long the topic keeps a record after its timestamp
	// (the capture time); 0 when it keeps records for ever.
	retention time.Duration
	// unread is why the topic's configs could not be read (a principal
	// without the DescribeConfigs ACL), nil when they were: Kafka's
	// default max.message.bytes is taken then, and no retention.
	unread error
}

// topicLimits reads topic's max.message.bytes (else the broker's
// message.max.bytes, else Kafka's default) and its retention.ms (the
// topic's value or the broker default it reports; 0, no limit known, when
// the broker reports none: a topic just created by another process, or a
// user not allowed to describe it).
func (kc *kafkaConn) topicLimits(ctx context.Context, topic string) (topicLimits, error) {
	var lim topicLimits
	rcs, err := kc.adm.DescribeTopicConfigs(ctx, topic)
	if errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.ClusterAuthorizationFailed) {
		return topicLimits{maxMessageBytes: kafkaDefaultMaxMessageBytes, unread: err}, nil
	}
	if err != nil {
		return lim, fmt.Errorf("topic %s: describe configs: %w", topic, err)
	}
	if rc, err := rcs.On(topic, nil); err == nil && rc.Err == nil {
		retentionRank := 100
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			n, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil {
				continue
			}
			switch c.Key {
			case "max.message.bytes":
				if n > 0 {
					lim.maxMessageBytes = n
				}
			case "retention.ms", "log.retention.ms":
				// Kafka reports the effective retention.ms; the embedded
				// broker reports the default, the broker's log.retention.ms
				// and the topic's own: the most specific source wins.
				if r := configRank(c.Source); r < retentionRank {
					retentionRank = r
					switch {
					case n < 0:
						lim.retention = 0 // for ever
					case n == 0:
						lim.retention = time.Millisecond // deleted at once
					default:
						lim.retention = time.Duration(n) * time.Millisecond
					}
				}
			}
		}
	}
	if lim.maxMessageBytes > 0 {
		return lim, nil
	}
	lim.maxMessageBytes = kafkaDefaultMaxMessageBytes
	if bcs, err := kc.adm.DescribeBrokerConfigs(ctx); err == nil {
		for _, rc := range bcs {
			for _, c := range rc.Configs {
				if c.Key == "message.max.bytes" && c.Value != nil {
					if n, err := strconv.ParseInt(*c.Value, 10, 64); err == nil && n > 0 {
						lim.maxMessageBytes = n
						return lim, nil
					}
				}
			}
		}
	}
	return lim, nil
}

// configRank orders config sources from the most specific (a topic's own
// setting) to the least (Kafka's default).
func configRank(src kmsg.ConfigSource) int {
	switch src {
	case kmsg.ConfigSourceDynamicTopicConfig:
		return 1
	case kmsg.ConfigSourceDynamicBrokerConfig:
		return 2
	case kmsg.ConfigSourceDynamicDefaultBrokerConfig:
		return 3
	case kmsg.ConfigSourceStaticBrokerConfig:
		return 4
	case kmsg.ConfigSourceDefaultConfig:
		return 5
	}
	return 6
}

// Catalog is an open windows catalog and the connection behind it.
type Catalog struct {
	*catalog.Catalog
	kc *kafkaConn
	// Brokers are the addresses connected to.
	Brokers []string
}

// Close closes the connection (and stops the embedded broker, if started).
func (c *Catalog) Close() { c.kc.close() }

// Where says where the catalog is, for messages ("the embedded broker's
// data dir .replayctl/data", "brokers k1:9092").
func (c *Catalog) Where() string { return c.kc.where() }

// OpenCatalog connects as a run of s would (s may be nil: the embedded
// broker and defaults) with the command line's overrides, and opens the
// windows catalog.
func OpenCatalog(ctx context.Context, s *scenario.Scenario, opts Options) (*Catalog, error) {
	var k scenario.Kafka
	if s != nil {
		k = s.Kafka
	}
	opts = opts.withDefaults()
	ks := kafkaSettings(k, opts)
	ks.Command = "replayctl windows"
	if ks.Embedded() {
		// Reading the catalog of a data dir that is not there would create
		// an empty one, and say "no saved windows" of a mistyped path.
		if _, err := os.Stat(ks.DataDir); errors.Is(err, fs.ErrNotExist) {
			return nil, invalidf("no data dir %s: nothing was recorded there with the embedded broker (check --data-dir, or give --brokers)", ks.DataDir)
		}
	}
	kc, err := connectKafka(ctx, ks, opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Catalog{Catalog: kc.catalog, kc: kc, Brokers: kc.brokers}, nil
}

// ClientOpts returns the options of the connection (brokers, TLS, SASL),
// for other clients of the same cluster (the run topic).
func (c *Catalog) ClientOpts() []kgo.Opt { return c.kc.opts }
