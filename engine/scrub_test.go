package engine

import "testing"

func TestScrubRequestValues(t *testing.T) {
	raw := []byte("GET /x?access_token=QTOKEN0&q=caf%C3%A9+bar HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer PRODSECRET0\r\n\r\n")
	for _, c := range []struct{ in, want string }{
		{"invalid operation: int(Bearer PRODSECRET0) (1:1)", "invalid operation: int(xxxxx xxxxx) (1:1)"},
		{"cannot parse prodsecret0 as a date", "cannot parse xxxxx as a date"}, // lower() of it
		{`strconv.ParseInt: parsing "QTOKEN0": invalid syntax`, `strconv.ParseInt: parsing "xxxxx": invalid syntax`},
		{"int(café bar)", "int(xxxxx bar)"}, // %-decoded, as req.param gives it
		{"invalid operation: + (mismatched types)", "invalid operation: + (mismatched types)"},
	} {
		if got := scrubRequestValues(c.in, raw); got != c.want {
			t.Errorf("scrub(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// A header's name is no secret: the expression quoted in the error stays
// readable.
func TestScrubKeepsHeaderNames(t *testing.T) {
	raw := []byte("POST /x?user_id=k-12-ab-9z HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer PRODSECRET0\r\nX-User-Id: 555-123-4567\r\nContent-Type: application/json\r\n\r\n{\"Authorization\":1}")
	for _, c := range []struct{ in, want string }{
		{"invalid operation: int(Bearer PRODSECRET0) (1:1)\n | int(req.header(\"Authorization\")) > 0 && req.method == \"POST\"",
			"invalid operation: int(xxxxx xxxxx) (1:1)\n | int(req.header(\"Authorization\")) > 0 && req.method == \"POST\""},
		// Names with hyphens stay whole; values whose pieces are short go whole.
		{`cannot parse 555-123-4567 from req.header("X-User-Id") (Content-Type application/json)`,
			`cannot parse xxxxx from req.header("X-User-Id") (Content-Type xxxxx)`},
		{`int(k-12-ab-9z) of req.param("user_id")`, `int(xxxxx) of req.param("user_id")`},
	} {
		if got := scrubRequestValues(c.in, raw); got != c.want {
			t.Errorf("scrub(%q)\n = %q\nwant %q", c.in, got, c.want)
		}
	}
}
