package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	opts     []kgo.Opt // connection options (brokers, TLS, SASL, client ID)
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
}

// kafkaSettings resolves the scenario's kafka section and the overrides.
func kafkaSettings(k scenario.Kafka, opts Options) KafkaSettings {
	ks := KafkaSettings{Brokers: k.Brokers, CatalogTopic: k.CatalogTopic}
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
		e, err := kafkaio.StartEmbedded(ctx, kafkaio.EmbeddedOptions{DataDir: ks.DataDir})
		if err != nil {
			return nil, fmt.Errorf("embedded broker (data dir %s): %w", ks.DataDir, err)
		}
		kc.embedded = e
		cfg.Brokers = e.Addrs()
		log.Info("embedded broker started", "addrs", e.Addrs(), "data-dir", ks.DataDir)
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
// otherwise a missing topic is an error that says how to fix it.
func (kc *kafkaConn) ensureTopic(ctx context.Context, t *scenario.Topic) error {
	if t.Create {
		created, err := kafkaio.EnsureTopic(ctx, kc.adm, t.Name, t.Partitions, t.ReplicationFactor, t.Config)
		if err != nil {
			return fmt.Errorf("topic %s: %w", t.Name, err)
		}
		if created {
			slog.Default().Debug("topic created", "topic", t.Name)
		}
		return nil
	}
	details, err := kc.adm.ListTopics(ctx, t.Name)
	if err != nil {
		return fmt.Errorf("topic %s: %w", t.Name, err)
	}
	if d, ok := details[t.Name]; !ok || d.Err != nil {
		return fmt.Errorf("topic %s does not exist on %v (add create: true to topics.%s to create it)", t.Name, kc.brokers, t.Key)
	}
	return nil
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

// OpenCatalog connects as a run of s would (s may be nil: the embedded
// broker and defaults) with the command line's overrides, and opens the
// windows catalog.
func OpenCatalog(ctx context.Context, s *scenario.Scenario, opts Options) (*Catalog, error) {
	var k scenario.Kafka
	if s != nil {
		k = s.Kafka
	}
	opts = opts.withDefaults()
	kc, err := connectKafka(ctx, kafkaSettings(k, opts), opts.Logger)
	if err != nil {
		return nil, err
	}
	return &Catalog{Catalog: kc.catalog, kc: kc, Brokers: kc.brokers}, nil
}
