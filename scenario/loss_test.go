package scenario

import (
	"path/filepath"
	"testing"
	"time"
)

// TestLossKeys decodes the keys of loss handling and their defaults.
func TestLossKeys(t *testing.T) {
	src := `version: 1
name: t
kafka: {delivery-timeout: 45s}
topics: {traffic: {name: x}}
jobs:
  a:
    source: {gor: {path: x.gor}}
    sink: {kafka: {topic: traffic, spool: {dir: spool, max-bytes: 2GiB}}}
    on-loss: warn
  b:
    source: {gor: {path: x.gor}}
    sink: {kafka: {topic: traffic}}
`
	s, err := LoadBytes("/srv/s.yaml", []byte(src), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kafka.DeliveryTimeout != 45*time.Second {
		t.Errorf("delivery-timeout = %v", s.Kafka.DeliveryTimeout)
	}
	a, b := s.Jobs["a"], s.Jobs["b"]
	if a.OnLoss != "warn" || b.OnLoss != "fail" {
		t.Errorf("on-loss = %q, %q", a.OnLoss, b.OnLoss)
	}
	if sp := a.Sink.Kafka.Spool; sp.MaxBytes != 2<<30 || sp.Dir.Abs != filepath.Join("/srv", "spool") {
		t.Errorf("spool a = %+v", sp)
	}
	if sp := b.Sink.Kafka.Spool; sp.MaxBytes != DefaultSpoolBytes || sp.Dir.IsSet() {
		t.Errorf("spool b = %+v", sp)
	}
	s, err = LoadBytes("/srv/s.yaml", []byte("version: 1\nname: t\njobs: {r: {source: {gor: {path: x}}, sink: {stdout: {}}}}\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Kafka.DeliveryTimeout != DefaultDeliveryTimeout {
		t.Errorf("default delivery-timeout = %v", s.Kafka.DeliveryTimeout)
	}
}
