package kafkatest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// SASLMechanisms are the mechanisms a Secure broker accepts.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// SecureTarget is an in-process broker that requires TLS and SASL.
type SecureTarget struct {
	Addrs  []string
	CAFile string // PEM file trusting the broker's certificate (issued for 127.0.0.1)
}

// User and Password are the credentials of mechanism m's user.
func (SecureTarget) User(m string) string     { return "user-" + m }
func (SecureTarget) Password(m string) string { return "pw-" + m }

// Secure starts a broker on 127.0.0.1 that requires TLS (a fresh
// self-signed certificate) and SASL with a user per mechanism, with the
// given topics (one partition each); it is closed by t.Cleanup.
func Secure(tb testing.TB, topics ...string) SecureTarget {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "replayctl test broker"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	st := SecureTarget{CAFile: filepath.Join(tb.TempDir(), "ca.pem")}
	if err := os.WriteFile(st.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.EnableSASL(),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }),
		kfake.AllowAutoTopicCreation(),
		// Fixtures carry capture times of months ago: keep records for
		// ever, as the embedded broker and the test Kafka do.
		kfake.BrokerConfigs(map[string]string{"log.retention.ms": "-1"}),
	}
	for _, m := range SASLMechanisms {
		opts = append(opts, kfake.Superuser(m, st.User(m), st.Password(m)))
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(1, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	st.Addrs = c.ListenAddrs()
	return st
}
