package httpraw

import (
	"strings"
	"testing"
)

// checkCases are requests CheckRequest must judge as ParseRequest does.
var checkCases = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"NOT HTTP AT ALL\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\n",
	"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcdef",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
	"POST /p HTTP/1.1\r\nContent-Length: -0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxx",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: x\r\n\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chun\u212aed\r\n\r\n0\r\n\r\n", // a Kelvin sign: no K
	"POST /p HTTP/1.1\r\nTransfer-Encoding: CHUNKED\r\n\r\n0\r\n\r\n",
	"GET / HTTP/1.1\r\nX-A: 1\r\n folded\r\n\r\n",
	"GET / HTTP/1.1\r\n folded\r\n\r\n",
	"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n folded\r\nT: 1\r\n\r\n",
	"GET / HTTP/1.1\r\nContent-Length: 2\r\n\tfolded\r\n\r\nab",
	"GET  / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1 \r\n\r\n",
	"GET / HTTP/x.1\r\n\r\n",
	"G@T / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
	"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",
	"GET / HTTP/1.1\r\n\r\nbody",
	"GET / HTTP/2.0\r\n:authority: x\r\n\r\n",
	"",
}

func TestCheckRequestAgreesWithParse(t *testing.T) {
	for _, raw := range checkCases {
		agree(t, []byte(raw))
	}
}

// agree fails when CheckRequest and ParseRequest judge raw differently, or
// tell different errors.
func agree(t *testing.T, raw []byte) {
	t.Helper()
	checkErr := CheckRequest(raw)
	_, parseErr := ParseRequest(raw)
	switch {
	case (checkErr == nil) != (parseErr == nil):
		t.Errorf("%q: CheckRequest %v, ParseRequest %v", raw, checkErr, parseErr)
	case checkErr != nil && !strings.HasPrefix(parseErr.Error(), checkErr.Error()):
		t.Errorf("%q: CheckRequest says %q, ParseRequest %q", raw, checkErr, parseErr)
	}
}

// TestCheckRequestDoesNotAllocate: a replay checks every request with it.
func TestCheckRequestDoesNotAllocate(t *testing.T) {
	for _, raw := range [][]byte{
		[]byte("GET /api/v1/items?id=42 HTTP/1.1\r\nHost: shop\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"),
		[]byte("POST /p HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
		[]byte("POST /p HTTP/1.1\r\nHost: shop\r\nContent-Length: 3\r\n\r\nabc"),
	} {
		if n := testing.AllocsPerRun(100, func() { _ = CheckRequest(raw) }); n != 0 {
			t.Errorf("%q: %v allocations", raw, n)
		}
	}
}

func FuzzCheckRequest(f *testing.F) {
	for _, raw := range checkCases {
		f.Add([]byte(raw))
	}
	f.Fuzz(func(t *testing.T, raw []byte) { agree(t, raw) })
}
