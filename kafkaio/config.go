// Package kafkaio connects replayctl to Kafka: client configuration (TLS,
// SASL), the in-process embedded broker, topic administration and an exact
// offset-range reader shared by the catalog and the window source.
package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Config says how to reach a Kafka cluster.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID is sent to the brokers; "replayctl" when empty.
	ClientID string
	// TLS, when set, makes every connection TLS.
	TLS *TLSConfig
	// SASL, when set, authenticates every connection.
	SASL *SASLConfig
}

// TLSConfig configures TLS connections. Empty file names use the system defaults.
type TLSConfig struct {
	CAFile, CertFile, KeyFile string
	InsecureSkipVerify        bool
	ServerName                string
}

// SASLConfig configures SASL authentication. Mechanism is PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512 (case-insensitive).
type SASLConfig struct {
	Mechanism, Username, Password string
}

// Opts returns the franz-go options for c: seed brokers, client ID, TLS
// dialer and SASL mechanism. It reads the TLS files.
func (c Config) Opts() ([]kgo.Opt, error) {
	if len(c.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("kafka: broker %q: want host:port: %w", b, err)
		}
	}
	id := c.ClientID
	if id == "" {
		id = "replayctl"
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(id)}
	if c.TLS != nil {
		tc, err := c.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.Dialer((&tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: tc}).DialContext))
	}
	if c.SASL != nil {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, m)
	}
	return opts, nil
}

func (t *TLSConfig) config() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify, ServerName: t.ServerName} //nolint:gosec // opt-in by the user
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: CA file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("kafka tls: cert-file and key-file must be given together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s *SASLConfig) mechanism() (kgo.Opt, error) {
	if s.Username == "" {
		return nil, errors.New("kafka sasl: username is empty")
	}
	switch strings.ToUpper(strings.ReplaceAll(s.Mechanism, "_", "-")) {
	case "PLAIN", "":
		return kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()), nil
	case "SCRAM-SHA-256":
		return kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()), nil
	case "SCRAM-SHA-512":
		return kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()), nil
	}
	return nil, fmt.Errorf("kafka sasl: unknown mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
}

// Ping checks that a broker at addrs answers a metadata request within ctx.
func Ping(ctx context.Context, opts ...kgo.Opt) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	if err := cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka ping: %w", err)
	}
	return nil
}
