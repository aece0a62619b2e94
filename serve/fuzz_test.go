package serve

import (
	"strings"
	"testing"

	"github.com/replayctl/replayctl/fleet"
	"github.com/replayctl/replayctl/gorimport"
	"github.com/replayctl/replayctl/scenario"
)

// FuzzGorConfig feeds gor/start's config (any token with scope replay
// posts it) through what the endpoint does with it before touching Kafka:
// split, convert, read the result back. Nothing may panic.
func FuzzGorConfig(f *testing.F) {
	for _, s := range []string{
		"--input-kafka-host k1:9092 --input-kafka-topic t --input-kafka-start-offset 0 --input-kafka-end-offset 10 --output-http http://u:p@127.0.0.1:8080 --exit-after 30s",
		`gor --input-raw :80 --output-http "http://a b" --output-http-header 'Authorization: Bearer x' \ "x`,
		"--input-kafka-start-offset -5 --input-kafka-end-offset 99999999999999999999 --output-http-url-regexp '('",
		"--output-http http://[::1 --http-set-header Cookie:\\ a --http-rewrite-url /a/:/b/",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, config string) {
		args, err := splitArgs(config)
		if err != nil {
			return
		}
		res, err := gorimport.Convert(args)
		if err != nil {
			return
		}
		if len(res.YAML) == 0 {
			t.Fatalf("Convert(%q): no scenario and no error", args)
		}
	})
}

// FuzzMaskSet checks the masking of --set values shown by the API: it
// never panics, and the value of a secret name never shows.
func FuzzMaskSet(f *testing.F) {
	for _, s := range []string{
		"vars.api_token=abc", "targets.t.url=http://u:p@h/x?token=y", "jobs.r.rewrite.0={set-header: {name: Authorization, value: '\"Bearer z\"'}}",
		"a=*x", "a=&x y", "a={b: [c, {password: d}]}", "a=", "=", "a=!!binary AAAA", "a=[[[[[[[[[[[[[", "a=Basic abc",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, st string) {
		got := maskSet(st)
		path, value, ok := strings.Cut(st, "=")
		if !ok {
			return
		}
		name := strings.TrimSpace(path)
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		if value != "" && scenario.SecretName(name) && got != path+"="+scenario.Mask {
			t.Fatalf("maskSet(%q) = %q: a secret name's value shows", st, got)
		}
		_ = commandLine(fleet.Spec{File: "f.yaml", Job: "j", Set: []string{st}})
	})
}

// FuzzJobCursor feeds GET /v1/jobs's before parameter (any read token
// sends it) to its parser: nothing may panic, and a cursor it reads writes
// back as one that reads the same.
func FuzzJobCursor(f *testing.F) {
	for _, s := range []string{
		jobCursor{pos: 42, id: "job-1"}.String(), jobCursor{pos: noSpec, id: "a b"}.String(),
		"", "!!", "bm90IGEgY3Vyc29y", "MS4wMDAwMDAwMDAg", "LTEuMDAwMDAwMDAwIHg", "LTIgeA", "MDcgeA",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseJobCursor(s)
		if err != nil {
			return
		}
		again, err := parseJobCursor(c.String())
		if err != nil || again.pos != c.pos || again.id != c.id {
			t.Fatalf("cursor %q read as %+v, written as %q, read back as %+v (%v)", s, c, c.String(), again, err)
		}
		if c.before(c) {
			t.Fatalf("%+v sorts before itself", c)
		}
	})
}
