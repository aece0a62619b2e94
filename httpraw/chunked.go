package httpraw

import "bytes"

// dechunk walks a chunked body. It returns the decoded data (only when decode
// is set) and the trailer section (trailer fields plus the final empty line).
// The body must end exactly after the trailer section.
func dechunk(b []byte, decode bool) (data, trailers []byte, err error) {
	for {
		line, _, rest, ok := nextLine(b)
		if !ok {
			return nil, nil, malformed("chunked body truncated in a chunk-size line")
		}
		sizeText := line
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			sizeText = line[:i]
		}
		sizeText = bytes.TrimRight(sizeText, " \t")
		size, ok := ParseChunkSize(sizeText)
		if !ok {
			return nil, nil, malformed("invalid chunk size line (%d bytes)", len(line))
		}
		b = rest
		if size == 0 {
			break
		}
		if size > int64(len(b)) {
			return nil, nil, malformed("chunk of %d bytes truncated at %d", size, len(b))
		}
		if decode {
			data = append(data, b[:size]...)
		}
		b = b[size:]
		switch {
		case bytes.HasPrefix(b, []byte("\r\n")):
			b = b[2:]
		case bytes.HasPrefix(b, []byte("\n")):
			b = b[1:]
		default:
			return nil, nil, malformed("chunk data not followed by a line ending")
		}
	}
	start := b
	for first := true; ; first = false {
		line, _, rest, ok := nextLine(b)
		if !ok {
			return nil, nil, malformed("chunked body: trailer section not terminated")
		}
		b = rest
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if first {
				// As in the header block: nothing to continue.
				return nil, nil, malformed("continuation line before any trailer")
			}
			continue
		}
		if c := bytes.IndexByte(line, ':'); c <= 0 {
			return nil, nil, malformed("invalid trailer line (%d bytes): want name: value", len(line))
		}
	}
	if len(b) != 0 {
		return nil, nil, malformed("%d bytes after the last chunk", len(b))
	}
	if decode && data == nil {
		data = []byte{}
	}
	return data, start[: len(start)-len(b) : len(start)-len(b)], nil
}

// ParseChunkSize parses a chunk-size: 1 to 15 hex digits (so it fits an
// int64), as httpraw's chunked framing accepts it.
func ParseChunkSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}
