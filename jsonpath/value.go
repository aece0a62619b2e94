package jsonpath

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// KV is one member of a JSON object.
type KV struct {
	Key   string
	Value any
}

// Object is a JSON object that keeps its members' order (and duplicates).
type Object []KV

// Get returns the value of the first member named key.
func (o Object) Get(key string) (any, bool) {
	for _, kv := range o {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// maxDepth bounds nesting, as encoding/json does.
const maxDepth = 10000

// Decode parses one JSON document into ordered values: Object, []any, string,
// json.Number (numbers keep their exact text), bool and nil. Anything after
// the document other than whitespace is an error.
func Decode(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("jsonpath: decode: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("jsonpath: decode: data after the document at offset %d", dec.InputOffset())
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxDepth {
		return nil, errors.New("nesting deeper than 10000")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := Object{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			obj = append(obj, KV{Key: key, Value: v})
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return obj, nil
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return arr, nil
	}
	return tok, nil
}

// Encode writes v as compact JSON. Object keeps member order; map[string]any
// is written with sorted keys; strings are not HTML-escaped. Other types go
// through encoding/json.
func Encode(v any) ([]byte, error) {
	var buf bytes.Buffer
	if err := encode(&buf, v, 0); err != nil {
		return nil, fmt.Errorf("jsonpath: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func encode(buf *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("nesting deeper than 10000")
	}
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		buf.WriteString(strconv.FormatBool(v))
	case string:
		encodeString(buf, v)
	case json.Number:
		if v == "" {
			buf.WriteByte('0')
		} else if !json.Valid([]byte(v)) {
			return fmt.Errorf("invalid number %q", string(v))
		} else {
			buf.WriteString(string(v))
		}
	case int:
		buf.WriteString(strconv.Itoa(v))
	case int64:
		buf.WriteString(strconv.FormatInt(v, 10))
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("unsupported number %v", v)
		}
		buf.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	case Object:
		buf.WriteByte('{')
		for i, kv := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			encodeString(buf, kv.Key)
			buf.WriteByte(':')
			if err := encode(buf, kv.Value, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := encode(buf, e, depth+1); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		return encode(buf, normalize(v), depth)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		buf.Write(b)
	}
	return nil
}

const hexDigits = "0123456789abcdef"

func encodeString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				buf.WriteByte('\\')
				buf.WriteByte(c)
			case c == '\n':
				buf.WriteString(`\n`)
			case c == '\r':
				buf.WriteString(`\r`)
			case c == '\t':
				buf.WriteString(`\t`)
			case c < 0x20:
				buf.WriteString(`\u00`)
				buf.WriteByte(hexDigits[c>>4])
				buf.WriteByte(hexDigits[c&0xf])
			default:
				buf.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf.WriteString(`\ufffd`)
		} else {
			buf.WriteString(s[i : i+size])
		}
		i += size
	}
	buf.WriteByte('"')
}

// normalize turns Go maps (from expressions) into Objects with sorted keys,
// recursively, so paths can walk them.
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		obj := make(Object, len(keys))
		for i, k := range keys {
			obj[i] = KV{Key: k, Value: normalize(v[k])}
		}
		return obj
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case Object:
		out := make(Object, len(v))
		for i, kv := range v {
			out[i] = KV{Key: kv.Key, Value: normalize(kv.Value)}
		}
		return out
	}
	return v
}
