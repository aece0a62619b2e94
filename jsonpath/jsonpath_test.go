package jsonpath

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const doc = `{"z":1,"items":[{"id":"a","updatedAt":"t1","n":1.50},{"id":"b","updatedAt":"t2","meta":{"updatedAt":"t3"}}],"user":{"token":"s3cr3t","name":"Ann <x>"},"big":12345678901234567890}`

func mustDecode(t *testing.T, s string) any {
	t.Helper()
	v, err := Decode([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func enc(t *testing.T, v any) string {
	t.Helper()
	b, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoundTripKeepsOrderAndNumbers(t *testing.T) {
	if got := enc(t, mustDecode(t, doc)); got != doc {
		t.Fatalf("round trip\n%s\nwant\n%s", got, doc)
	}
	in := `{ "b" : [ 1e3 , -0.0, "\u00e9\n\"", true, null ] , "a" : {} }`
	if got := enc(t, mustDecode(t, in)); got != `{"b":[1e3,-0.0,"é\n\"",true,null],"a":{}}` {
		t.Fatalf("got %s", got)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":1}x`, `[1,]`, `nope`, strings.Repeat("[", 10002)} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%.20q): no error", in)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{"a.b", `must start with "$" at position 0`},
		{"$.", "expected a member name or * at position 2"},
		{"$..", "at position 3"},
		{"$[x]", "expected an index, a quoted name or * at position 2"},
		{"$['a", "unterminated name at position 2"},
		{"$[0", `expected "]" at position 3`},
		{"$x", `unexpected 'x' at position 1`},
	} {
		_, err := Compile(tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%q) = %v, want %q", tc.p, err, tc.want)
		}
	}
}

func TestGet(t *testing.T) {
	d := mustDecode(t, doc)
	for _, tc := range []struct {
		path string
		want []any
	}{
		{"$.z", []any{json.Number("1")}},
		{"$['user']['token']", []any{"s3cr3t"}},
		{`$["user"].name`, []any{"Ann <x>"}},
		{"$.items[1].id", []any{"b"}},
		{"$.items[-1].id", []any{"b"}},
		{"$.items[5].id", nil},
		{"$.items[*].id", []any{"a", "b"}},
		{"$.items.*.id", []any{"a", "b"}},
		{"$..updatedAt", []any{"t1", "t2", "t3"}},
		{"$..meta.updatedAt", []any{"t3"}},
		{"$.user.*", []any{"s3cr3t", "Ann <x>"}},
		{"$..[0].id", []any{"a"}},
		{"$.nope.deeper", nil},
	} {
		p, err := Compile(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Get(d); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v want %#v", tc.path, got, tc.want)
		}
	}
	if got := MustCompile("$").Get(d); len(got) != 1 {
		t.Fatalf("$ matched %d", len(got))
	}
}

func TestEdits(t *testing.T) {
	for _, tc := range []struct {
		name, in, path, op string
		value              any
		want               string
		n                  int
	}{
		{"set existing", `{"a":1,"b":2}`, "$.a", "set", "x", `{"a":"x","b":2}`, 1},
		{"set creates", `{"a":1}`, "$.b.c", "set", true, `{"a":1,"b":{"c":true}}`, 1},
		{"set creates inside existing", `{"b":{"x":0},"z":1}`, "$.b.c", "set", 2, `{"b":{"x":0,"c":2},"z":1}`, 1},
		{"set map sorted", `{}`, "$.m", "set", map[string]any{"y": 1, "x": []any{"s"}}, `{"m":{"x":["s"],"y":1}}`, 1},
		{"set wildcard", `{"l":[{"t":1},{"t":2},{}]}`, "$.l[*].t", "set", 0, `{"l":[{"t":0},{"t":0},{}]}`, 2},
		{"set no match no create", `{"l":[]}`, "$.l[0]", "set", 1, `{"l":[]}`, 0},
		{"set root", `{"a":1}`, "$", "set", "r", `"r"`, 1},
		{"remove member", `{"a":1,"b":2,"c":3}`, "$.b", "remove", nil, `{"a":1,"c":3}`, 1},
		{"remove element", `[1,2,3]`, "$[-1]", "remove", nil, `[1,2]`, 1},
		{"remove all elements", `{"l":[1,2]}`, "$.l[*]", "remove", nil, `{"l":[]}`, 2},
		{"remove recursive", `{"t":1,"a":{"t":2,"b":[{"t":3}]}}`, "$..t", "remove", nil, `{"a":{"b":[{}]}}`, 3},
		{"remove root", `{"a":1}`, "$", "remove", nil, `{"a":1}`, 0},
		{"map recursive nested same name", `{"a":{"a":"x"}}`, "$..a", "map", nil, `{"a":"M"}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := MustCompile(tc.path)
			d := mustDecode(t, tc.in)
			var out any
			var n int
			switch tc.op {
			case "set":
				var err error
				out, n, err = p.Set(d, tc.value)
				if err != nil {
					t.Fatal(err)
				}
			case "remove":
				out, n = p.Remove(d)
			case "map":
				out, n = p.Map(d, func(any) any { return "M" })
			}
			if got := enc(t, out); got != tc.want || n != tc.n {
				t.Fatalf("got %s n=%d, want %s n=%d", got, n, tc.want, tc.n)
			}
		})
	}
}

func TestSetCreateError(t *testing.T) {
	_, n, err := MustCompile("$.a.b").Set(mustDecode(t, `{"a":[1]}`), 1)
	if err == nil || n != 0 || !strings.Contains(err.Error(), `cannot create member "b" in a value of type array`) {
		t.Fatalf("err = %v n = %d", err, n)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, concrete string
		want              bool
	}{
		{"$.items[*].updatedAt", "$.items[3].updatedAt", true},
		{"$.items[*].updatedAt", "$.items[3].createdAt", false},
		{"$.items[2].updatedAt", "$.items[3].updatedAt", false},
		{"$..updatedAt", "$.a.b[0].updatedAt", true},
		{"$..updatedAt", "$.updatedAt", true},
		{"$..updatedAt", "$.updatedAt.x", false},
		{"$..meta..id", "$.x.meta.y[1].id", true},
		{"$.*", "$.a", true},
		{"$.*", "$.a.b", false},
		{"$", "$", true},
	} {
		elems, err := Split(tc.concrete)
		if err != nil {
			t.Fatal(err)
		}
		if got := MustCompile(tc.pattern).Match(elems); got != tc.want {
			t.Errorf("%s matches %s = %v", tc.pattern, tc.concrete, got)
		}
	}
	if _, err := Split("$.a[*]"); err == nil {
		t.Fatal("Split accepted a wildcard")
	}
}

func FuzzCompile(f *testing.F) {
	for _, s := range []string{"$", "$.a", "$..b[*]", "$['x\\'y'][-1]", "$..[0]", "$.*"} {
		f.Add(s)
	}
	d, _ := Decode([]byte(doc))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Compile(s)
		if err != nil {
			return
		}
		_ = p.Get(d)
		_ = p.Match([]string{"items", "0", "id"})
	})
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{doc, `[]`, `"\ud800"`, `{"a":{"a":[1,2,{"b":null}]}}`, `1e999`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b)
		if err != nil {
			return
		}
		once, err := Encode(v)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		v2, err := Decode(once)
		if err != nil {
			t.Fatalf("re-decode %q: %v", once, err)
		}
		twice, _ := Encode(v2)
		if string(once) != string(twice) {
			t.Fatalf("not stable: %q then %q", once, twice)
		}
		if !json.Valid(once) {
			t.Fatalf("invalid JSON %q", once)
		}
	})
}
