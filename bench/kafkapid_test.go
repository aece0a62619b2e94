package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestKafkaPID reads the pid only of the broker kafka-up started for the
// address asked about.
func TestKafkaPID(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got := kafkaPID("127.0.0.1:19092"); got != 0 {
		t.Fatalf("no build/kafka: pid %d, want 0", got)
	}
	kdir := filepath.Join(dir, "build", "kafka")
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(kdir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("server.properties", "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093\nadvertised.listeners=PLAINTEXT://127.0.0.1:19092\n")
	write("kafka.pid", strconv.Itoa(4242)+"\n")
	for _, tc := range []struct {
		addr string
		want int
	}{
		{"127.0.0.1:19092", 4242},
		{"127.0.0.1:1909", 0},  // a prefix of the port is another broker
		{"127.0.0.1:29092", 0}, // another broker
	} {
		if got := kafkaPID(tc.addr); got != tc.want {
			t.Errorf("kafkaPID(%s) = %d, want %d", tc.addr, got, tc.want)
		}
	}
	write("kafka.pid", "not a pid\n")
	if got := kafkaPID("127.0.0.1:19092"); got != 0 {
		t.Errorf("bad pid file: %d, want 0", got)
	}
}
