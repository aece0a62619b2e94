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
