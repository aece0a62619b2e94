package compare

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/replayctl/replayctl/httpraw"
)

// resp builds a raw response with a Content-Length.
func resp(code int, ctype, body string, headers ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d X\r\n", code)
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(body), body)
	return []byte(b.String())
}

func mustNew(t *testing.T, cfg Config) *Comparer {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Tolerance: -1},
		{Ignore: []string{"items"}},
		{Ignore: []string{"$.a["}},
		{Headers: []string{" "}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): want an error", cfg)
		}
	}
}

func TestCompareJSON(t *testing.T) {
	all := Config{Status: true, Body: true, Headers: []string{"X-Version"}}
	for _, tc := range []struct {
		name     string
		cfg      Config
		rec, rep []byte
		want     []Diff
	}{
		{"equal reordered", all,
			resp(200, "application/json", `{"a":1,"b":[1,2]}`, "X-Version: 1"),
			resp(200, "application/json", `{"b":[1,2], "a":1.0}`, "x-version: 1"), nil},
		{"status and header", all,
			resp(200, "", `{}`, "X-Version: 1"),
			resp(503, "", `{}`),
			[]Diff{{KindStatus, "status", "200", "503"}, {KindHeader, "X-Version", "1", "<absent>"}}},
		{"fields", all,
			resp(200, "application/json", `{"id":7,"name":"a","gone":true,"items":[{"p":1},{"p":2}],"t":{"x":1}}`, "X-Version: 1"),
			resp(200, "application/json", `{"id":7,"name":"b","items":[{"p":1},{"p":3},{"p":4}],"t":[1],"new":null}`, "X-Version: 1"),
			[]Diff{
				{KindFieldChanged, "$.name", `"a"`, `"b"`},
				{KindFieldRemoved, "$.gone", "true", ""},
				{KindFieldChanged, "$.items[1].p", "2", "3"},
				{KindFieldAdded, "$.items[2]", "", `{"p":4}`},
				{KindTypeChanged, "$.t", `{"x":1}`, "[1]"},
				{KindFieldAdded, "$.new", "", "null"},
			}},
		{"odd key names", Config{Body: true},
			resp(200, "", `{"a b":{"it's":1}}`), resp(200, "", `{"a b":{"it's":2}}`),
			[]Diff{{KindFieldChanged, `$['a b']['it\'s']`, "1", "2"}}},
		{"big integers exact", Config{Body: true},
			resp(200, "", `[12345678901234567890]`), resp(200, "", `[12345678901234567891]`),
			[]Diff{{KindFieldChanged, "$[0]", "12345678901234567890", "12345678901234567891"}}},
		{"root scalar by content type", Config{Body: true},
			resp(200, "application/json", `"x"`), resp(200, "application/json", `"y"`),
			[]Diff{{KindFieldChanged, "$", `"x"`, `"y"`}}},
		{"zero config compares nothing", Config{},
			resp(200, "", `{"a":1}`), resp(500, "", `{"a":2}`), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mustNew(t, tc.cfg).Compare(tc.rec, tc.rep)
			if !reflect.DeepEqual(got.Diffs, tc.want) || got.Match != (len(tc.want) == 0) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestTolerance(t *testing.T) {
	for _, tc := range []struct {
		tol   float64
		a, b  string
		equal bool
	}{
		{0, "1", "1.0", true},
		{0, "1", "1.0000001", false},
		{0, "0", "-0", true},
		{0, "1e2", "100", true},
		{0.01, "100", "100.9", true},   // relative 0.9%
		{0.01, "100", "101.5", false},  // relative 1.5%
		{0.01, "0.001", "0.009", true}, // absolute 0.008
		{0.01, "0.001", "0.02", false}, // absolute 0.019, relative 95%
		{0.5, "-3", "3", false},
		{1, "1e400", "1e400", true}, // textually equal, out of range
		{1, "1e400", "2e400", false},
	} {
		c := mustNew(t, Config{Body: true, Tolerance: tc.tol})
		got := c.Compare(resp(200, "", "["+tc.a+"]"), resp(200, "", "["+tc.b+"]")).Match
		if got != tc.equal {
			t.Errorf("tol %v: %s vs %s: match %v, want %v", tc.tol, tc.a, tc.b, got, tc.equal)
		}
	}
}

func TestIgnore(t *testing.T) {
	rec := resp(200, "", `{"items":[{"id":1,"updatedAt":"a"},{"id":2,"updatedAt":"b"}],"meta":{"rid":"x","n":1},"gone":{"rid":1}}`)
	rep := resp(200, "", `{"items":[{"id":1,"updatedAt":"c"},{"id":2,"updatedAt":"d"},{"id":3,"updatedAt":"e"}],"meta":{"rid":"y","n":2}}`)
	for _, tc := range []struct {
		ignore []string
		want   []string
	}{
		{nil, []string{"$.items[0].updatedAt", "$.items[1].updatedAt", "$.items[2]", "$.meta.rid", "$.meta.n", "$.gone"}},
		{[]string{"$.items[*].updatedAt"}, []string{"$.items[2]", "$.meta.rid", "$.meta.n", "$.gone"}},
		{[]string{"$..updatedAt", "$..rid", "$.items[2]"}, []string{"$.meta.n", "$.gone"}},
		{[]string{"$.items", "$.meta.*", "$.gone"}, nil},
		{[]string{"$"}, nil},
	} {
		got := mustNew(t, Config{Body: true, Ignore: tc.ignore}).Compare(rec, rep)
		var paths []string
		for _, d := range got.Diffs {
			paths = append(paths, d.Path)
		}
		if !reflect.DeepEqual(paths, tc.want) {
			t.Errorf("ignore %q: diffs at %q, want %q", tc.ignore, paths, tc.want)
		}
	}
}

func TestTextDiff(t *testing.T) {
	c := mustNew(t, Config{Body: true})
	long := strings.Repeat("abcdefghij", 10)
	for _, tc := range []struct {
		name     string
		rec, rep []byte
		want     *Diff
	}{
		{"equal", resp(200, "text/plain", "hello"), resp(200, "text/plain", "hello"), nil},
		{"differ", resp(200, "text/plain", "hello world"), resp(200, "text/plain", "hello there"),
			&Diff{KindBodyBytes, "body", `@6/11 "hello world"`, `@6/11 "hello there"`}},
		{"prefix", resp(200, "", "abc"), resp(200, "", "abcd"),
			&Diff{KindBodyBytes, "body", `@3/3 "abc"`, `@3/4 "abcd"`}},
		{"context clipped", resp(200, "", long+"X"+long), resp(200, "", long+"Y"+long),
			&Diff{KindBodyBytes, "body", `@100/201 …"` + long[76:] + "X" + long[:39] + `"…`,
				`@100/201 …"` + long[76:] + "Y" + long[:39] + `"…`}},
		{"json vs html", resp(200, "application/json", `{"a":1}`), resp(502, "text/html", "<h1>bad</h1>"),
			&Diff{KindBodyBytes, "body", `@0/7 "{\"a\":1}"`, `@0/12 "<h1>bad</h1>"`}},
		{"invalid json content type", resp(200, "application/json", `{"a":`), resp(200, "application/json", `{"a":`), nil},
		{"binary", resp(200, "", "\x00\xff\x01"), resp(200, "", "\x00\xfe\x01"),
			&Diff{KindBodyBytes, "body", `@1/3 "\x00\xff\x01"`, `@1/3 "\x00\xfe\x01"`}},
	} {
		got := c.Compare(tc.rec, tc.rep)
		var want []Diff
		if tc.want != nil {
			want = []Diff{*tc.want}
		}
		if !reflect.DeepEqual(got.Diffs, want) {
			t.Errorf("%s: got %+v\nwant %+v", tc.name, got.Diffs, want)
		}
	}
}

func TestBodyEncodings(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"a":1,"b":2}`))
	zw.Close()
	rec := resp(200, "application/json", gz.String(), "Content-Encoding: gzip")
	chunked := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"7\r\n{\"a\":1,\r\n6\r\n\"b\":3}\r\n0\r\n\r\n"
	got := mustNew(t, Config{Body: true}).Compare(rec, []byte(chunked))
	want := []Diff{{KindFieldChanged, "$.b", "2", "3"}}
	if !reflect.DeepEqual(got.Diffs, want) {
		t.Fatalf("got %+v, want %+v", got.Diffs, want)
	}
}

func TestUnparsable(t *testing.T) {
	c := mustNew(t, DefaultConfig())
	got := c.Compare([]byte("garbage"), resp(200, "", "x"))
	if got.Match || len(got.Diffs) != 1 || got.Diffs[0].Kind != KindUnparsable || got.Diffs[0].Path != "recorded" {
		t.Fatalf("got %+v", got)
	}
	got = c.Compare(resp(200, "", "x"), nil)
	if got.Match || len(got.Diffs) != 1 || got.Diffs[0].Path != "replayed" {
		t.Fatalf("got %+v", got)
	}
}

func TestMaxDiffs(t *testing.T) {
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := range MaxDiffs + 50 {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		fmt.Fprintf(&a, "%d", i)
		fmt.Fprintf(&b, "%d", i+1)
	}
	a.WriteString("]")
	b.WriteString("]")
	got := mustNew(t, Config{Body: true}).Compare(resp(200, "", a.String()), resp(200, "", b.String()))
	if len(got.Diffs) != MaxDiffs || got.Omitted != 50 || got.Match {
		t.Fatalf("diffs %d omitted %d", len(got.Diffs), got.Omitted)
	}
}

func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		{"get", "/users/123/orders/9f8a7c6e-1b2c-4d3e-8f90-a1b2c3d4e5f6?x=1", "GET /users/{id}/orders/{uuid}"},
		{"POST", "/", "POST /"},
		{"GET", "", "GET /"},
		{"GET", "?q=1", "GET /"},
		{"GET", "/files/0123456789abcdef0123#frag", "GET /files/{hex}"},
		{"GET", "/files/0123456789abcde", "GET /files/{token}"}, // 15 hex: too short for {hex}
		{"GET", "/s/a1b2c3d4e5f6g7", "GET /s/{token}"},
		{"GET", "/s/user12345678", "GET /s/{token}"},
		{"GET", "/s/order-2024-summary", "GET /s/order-2024-summary"},
		{"GET", "/api/v1/items/", "GET /api/v1/items/"},
		{"GET", "/a/deadbeef", "GET /a/deadbeef"},
		{"GET", "/s/abc.123456789012", "GET /s/abc.123456789012"},
		{"GET", "http://shop.local:8080/p/42?x", "GET /p/{id}"},
		{"GET", "http://shop.local", "GET /"},
		{"", "/x", "- /x"},
	} {
		if got := Endpoint(tc.method, tc.path); got != tc.want {
			t.Errorf("Endpoint(%q, %q) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestFoldPath(t *testing.T) {
	for in, want := range map[string]string{
		"$":                   "$",
		"$.items[3].tags[10]": "$.items[*].tags[*]",
		"$['a[1]'][2]":        "$['a[1]'][*]",
		`$['it\'s[0]'].x[0]`:  `$['it\'s[0]'].x[*]`,
		"$[":                  "$[",
		"$['unterminated":     "$['unterminated",
		"$[12x]":              "$[12x]",
		"$.a[0][1][2]":        "$.a[*][*][*]",
	} {
		if got := FoldPath(in); got != want {
			t.Errorf("FoldPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCompare(f *testing.F) {
	f.Add(resp(200, "application/json", `{"a":[1,{"b":2}]}`), resp(201, "application/json", `{"a":[1,{"b":"x"}],"c":1}`))
	f.Add(resp(200, "text/plain", "hello"), []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"))
	f.Add([]byte("garbage"), []byte{})
	f.Add(resp(200, "", `[1e400, -0, 1.5]`), resp(200, "", `[2e400, 0, 1.50]`))
	c, err := New(Config{Status: true, Body: true, Headers: []string{"Content-Type"},
		Ignore: []string{"$..b", "$.a[1]"}, Tolerance: 0.1})
	if err != nil {
		f.Fatal(err)
	}
	nf := NewNoiseFilter()
	agg := NewAggregator()
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, pair := range [][2][]byte{{a, b}, {resp(200, "", string(a)), resp(200, "application/json", string(b))}} {
			r := c.Compare(pair[0], pair[1])
			if r.Match != (len(r.Diffs) == 0) {
				t.Fatalf("Match %v with %d diffs", r.Match, len(r.Diffs))
			}
			nf.Learn("e", r)
			regs, noise := nf.Classify("e", r)
			if len(regs)+len(noise) != len(r.Diffs) {
				t.Fatal("Classify lost diffs")
			}
			agg.Add("e", a, pair[0], pair[1], r, noise)
			// A response that parses matches itself.
			if _, err := httpraw.ParseResponse(pair[0]); err == nil {
				if r := c.Compare(pair[0], bytes.Clone(pair[0])); !r.Match {
					t.Fatalf("%q against itself: %+v", pair[0], r.Diffs)
				}
			}
		}
	})
}

// TestCompareCut: a recorded response whose body was cut when recorded is
// compared on its status and headers, never on its body (whole, it would
// be "unparsable:recorded"; cut at a JSON value, a body diff).
func TestCompareCut(t *testing.T) {
	c := mustNew(t, Config{Status: true, Body: true, Headers: []string{"X-Version"}})
	full := resp(200, "application/json", `{"items":[1,2,3],"total":3}`, "X-Version: 7")
	cut := full[:len(full)-10]
	if r := c.CompareRequest("/", cut, full); r.Match {
		t.Fatalf("CompareRequest of a cut body matched: %+v", r)
	}
	if r := c.CompareCut("/", cut, full); !r.Match {
		t.Errorf("CompareCut of the same answer: %+v", r.Diffs)
	}
	other := resp(500, "application/json", `{"error":"x"}`, "X-Version: 8")
	r := c.CompareCut("/", cut, other)
	kinds := map[string]bool{}
	for _, d := range r.Diffs {
		kinds[d.Kind] = true
	}
	if r.Match || !kinds[KindStatus] || !kinds[KindHeader] || len(r.Diffs) != 2 {
		t.Errorf("CompareCut of another status and header: %+v, want a status and a header diff only", r.Diffs)
	}
}
