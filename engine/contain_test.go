package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replayctl/replayctl/engine"
	"github.com/replayctl/replayctl/scenario"
)

// TestRestrictedReadsThroughRoot: a restricted scenario's input files are
// opened through an os.Root on its directory. An input (or the directory a
// glob goes through) replaced, between Load and Run, by a symbolic link to
// something outside is refused by Run with an error that says so, and
// nothing outside is read.
func TestRestrictedReadsThroughRoot(t *testing.T) {
	pcap, err := os.ReadFile(filepath.Join("..", "examples", "quickstart.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		source string // the job's source; its files are r/in.gor, d1/in.gor and r/in.pcap
		swap   string // replaced by a link to the same name outside; "" for none
		want   string
	}{
		{"gor file", `gor: {path: r/in.gor}`, "r/in.gor", "path escapes"},
		{"gor glob", `gor: {path: "r/*.gor"}`, "r/in.gor", "path escapes"},
		{"gor glob through a directory", `gor: {path: "d?/in.gor"}`, "d1", "no file matches"},
		{"pcap file", `pcap: {path: r/in.pcap, ports: [8080]}`, "r/in.pcap", "path escapes"},
		{"gor glob, no link", `gor: {path: "r/*.gor"}`, "", ""},
		{"pcap file, no link", `pcap: {path: r/in.pcap, ports: [8080]}`, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			for _, d := range []string{dir, outside} {
				for _, sub := range []string{"r", "d1"} {
					if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(d, "r", "in.pcap"), pcap, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			writeGor(t, filepath.Join(dir, "r"), "in.gor", evenly(3, time.Millisecond))
			writeGor(t, filepath.Join(dir, "d1"), "in.gor", evenly(3, time.Millisecond))
			secret := []req{{raw: get("/SECRET")}}
			writeGor(t, filepath.Join(outside, "r"), "in.gor", secret)
			writeGor(t, filepath.Join(outside, "d1"), "in.gor", secret)

			yaml := fmt.Sprintf("version: 1\nname: restricted\njobs:\n  copy:\n    source: {%s}\n    sink: {gor: {path: out/copy.gor}}\n", tc.source)
			s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: noEnv, Restricted: true})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var out syncBuffer
			plan, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data"), Out: &out, Err: &testWriter{t: t}})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if tc.swap != "" {
				if err := os.RemoveAll(filepath.Join(dir, tc.swap)); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(outside, tc.swap), filepath.Join(dir, tc.swap)); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = plan.Run(ctx)
			copied, _ := os.ReadFile(filepath.Join(dir, "out", "copy.gor"))
			if tc.want == "" {
				if err != nil || len(copied) == 0 {
					t.Fatalf("run = %v, copied %d bytes\n%s", err, len(copied), out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "a restricted scenario reads only under "+dir) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run = %v, want an error saying it reads only under %s (%q)", err, dir, tc.want)
			}
			t.Logf("refused: %v", err)
			if len(copied) != 0 || strings.Contains(out.String(), "SECRET") {
				t.Fatalf("read outside: copied %d bytes\n%s", len(copied), out.String())
			}
		})
	}
}

// TestSpoolDirContained records a .gor file into the embedded broker through
// a kafka sink whose spool.dir is under the scenario's directory: it is
// created there, through an os.Root on that directory. A spool.dir replaced
// by a link to a directory outside between Load and Run is refused, and
// nothing is created outside. The default spool (under kafka.data-dir, or
// --data-dir) is accepted.
func TestSpoolDirContained(t *testing.T) {
	for _, tc := range []struct {
		name, kafka, spool string
		link               bool
		want               string
	}{
		{"inside", "", ", spool: {dir: spool}", false, ""},
		{"default under kafka.data-dir", "kafka: {data-dir: data}\n", "", false, ""},
		{"linked after load", "", ", spool: {dir: spool}", true, "is a symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			writeGor(t, dir, "rec.gor", evenly(5, time.Millisecond))
			yaml := fmt.Sprintf(`version: 1
name: spool
%stopics:
  traffic: {name: %s, create: true}
jobs:
  record:
    source: {gor: {path: rec.gor}}
    sink: {kafka: {topic: traffic%s}}
`, tc.kafka, unique(t, "spool"), tc.spool)
			s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: noEnv})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			opts := engine.Options{Out: &syncBuffer{}, Err: &testWriter{t: t}}
			if tc.kafka == "" {
				opts.DataDir = filepath.Join(dir, "data")
			}
			plan, err := engine.Compile(s, opts)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if tc.link {
				if err := os.Symlink(outside, filepath.Join(dir, "spool")); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			err = plan.Run(ctx)
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Fatalf("%d entries created outside", len(ents))
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				spoolDir := filepath.Join(dir, "spool")
				if tc.spool == "" {
					spoolDir = filepath.Join(dir, "data", "spool")
				}
				if fi, err := os.Lstat(spoolDir); err != nil || !fi.IsDir() {
					t.Fatalf("spool directory %s: %v", spoolDir, err)
				}
				return
			}
			if want := filepath.Join(dir, "spool") + " " + tc.want; err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("run = %v, want %q", err, want)
			}
		})
	}
}

// TestRestrictedRecheckReads: a restricted scenario's CA file swapped for a
// link leading out of its directory between Load and Run is refused before
// anything runs (the TLS library reads it by path).
func TestRestrictedRecheckReads(t *testing.T) {
	for _, swap := range []bool{false, true} {
		t.Run(fmt.Sprintf("swapped=%t", swap), func(t *testing.T) {
			dir, outside := t.TempDir(), t.TempDir()
			for _, d := range []string{dir, outside} {
				if err := os.WriteFile(filepath.Join(d, "ca.pem"), []byte("not a certificate"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			writeGor(t, dir, "in.gor", evenly(1, time.Millisecond))
			yaml := "version: 1\nname: restricted\ntargets:\n  t: {url: \"https://127.0.0.1:9\", ca-file: ca.pem}\njobs:\n  replay:\n    source: {gor: {path: in.gor}}\n    sink: {http: {target: t}}\n"
			s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: noEnv, Restricted: true})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var out syncBuffer
			plan, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data"), Out: &out, Err: &testWriter{t: t}})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			if swap {
				if err := os.Remove(filepath.Join(dir, "ca.pem")); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(filepath.Join(outside, "ca.pem"), filepath.Join(dir, "ca.pem")); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = plan.Run(ctx)
			refused := err != nil && strings.Contains(err.Error(), "ca.pem not read: a restricted scenario reads only under its directory")
			if refused != swap {
				t.Fatalf("run = %v; want refused=%t", err, swap)
			}
		})
	}
}

// TestRestrictedMissingInputSaysMissing: a restricted scenario's input file
// that is under its directory but not there (removed after validate, or an
// agent's file not yet copied) is said to be missing, as an unrestricted
// run says it, not refused as if it lay outside what the scenario may read.
func TestRestrictedMissingInputSaysMissing(t *testing.T) {
	for _, tc := range []struct{ name, source, file string }{
		{"pcap file", `pcap: {path: in.pcap, ports: [8080]}`, "in.pcap"},
		{"gor file", `gor: {path: in.gor}`, "in.gor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			yaml := fmt.Sprintf("version: 1\nname: restricted\njobs:\n  copy:\n    source: {%s}\n    sink: {gor: {path: out/copy.gor}}\n", tc.source)
			s, err := scenario.LoadBytes(filepath.Join(dir, "scenario.yaml"), []byte(yaml), scenario.Options{Env: noEnv, Restricted: true})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var out syncBuffer
			plan, err := engine.Compile(s, engine.Options{DataDir: filepath.Join(dir, "data"), Out: &out, Err: &testWriter{t: t}})
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = plan.Run(ctx)
			want := filepath.Join(dir, tc.file) + ": no such file or directory"
			if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "reads only under") {
				t.Fatalf("run = %v, want an error saying %q, without a containment refusal", err, want)
			}
		})
	}
}
