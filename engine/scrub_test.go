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
	raw := []byte("POST /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer PRODSECRET0\r\n\r\n{\"Authorization\":1}")
	in := "invalid operation: int(Bearer PRODSECRET0) (1:1)\n | int(req.header(\"Authorization\")) > 0 && req.method == \"POST\""
	want := "invalid operation: int(xxxxx xxxxx) (1:1)\n | int(req.header(\"Authorization\")) > 0 && req.method == \"POST\""
	if got := scrubRequestValues(in, raw); got != want {
		t.Errorf("scrub = %q, want %q", got, want)
	}
}
