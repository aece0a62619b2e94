package scenario

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses a Go duration that must not be negative.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 5s, 1m30s, 250ms)", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", s)
	}
	return d, nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$`)

var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1 << 10, "kb": 1e3, "kib": 1 << 10,
	"m": 1 << 20, "mb": 1e6, "mib": 1 << 20,
	"g": 1 << 30, "gb": 1e9, "gib": 1 << 30,
	"tb": 1e12, "tib": 1 << 40,
}

// ParseSize parses a size in bytes: 64MiB, 1MB, 512KiB, 1.5GiB or a plain
// number of bytes. K, M and G alone are binary (KiB, MiB, GiB).
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want e.g. 64MiB, 1MB, 512KiB or bytes)", s)
	}
	unit, ok := sizeUnits[strings.ToLower(m[2])]
	if !ok {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, KiB, MB, MiB, GB, GiB, TB, TiB)", s, m[2])
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	v := n * unit
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// rateRE takes what the schema's rate pattern takes: .5/s as 0.5/s.
var rateRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*/\s*(s|m)\s*$`)

// ParseRate parses N/s or N/m into requests per second; N must be > 0.
func ParseRate(s string) (Rate, error) {
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return Rate{}, fmt.Errorf("invalid rate %q (want e.g. 500/s or 1000/m)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 || math.IsInf(n, 0) {
		return Rate{}, fmt.Errorf("rate %q must be greater than 0", s)
	}
	if m[2] == "m" {
		n /= 60
	}
	return Rate{PerSecond: n}, nil
}

// ParseTime parses an RFC 3339 time or a time relative to now: "now",
// "-15m", "+1h", "now-2h".
func ParseTime(s string) (*TimeSpec, error) {
	raw := strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, raw); err == nil {
		return &TimeSpec{Raw: s, Absolute: true, Time: t}, nil
	}
	rel := strings.TrimPrefix(raw, "now")
	if rel == "" {
		return &TimeSpec{Raw: s}, nil
	}
	if rel[0] == '-' || rel[0] == '+' {
		if d, err := time.ParseDuration(rel); err == nil {
			return &TimeSpec{Raw: s, Offset: d}, nil
		}
	}
	return nil, fmt.Errorf("invalid time %q (want RFC 3339 such as 2026-11-26T10:00:00Z, or relative: now, -15m, now-2h)", s)
}

// hostPortRE matches a host name, IPv4 or bracketed IPv6 address and a port,
// without a scheme.
var hostPortRE = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):[0-9]{1,5}$`)

// ParseTargetURL parses a target URL: http or https with a host, or
// builtin:echo. It returns the builtin's name for builtin URLs. Its errors
// show the URL as MaskURL masks it, parsed or not, and never wrap net/url's
// error (which holds the URL as written).
func ParseTargetURL(s string) (*url.URL, string, error) {
	if t := strings.TrimSpace(s); hostPortRE.MatchString(t) {
		// host:port, as gor's --output-http takes it: net/url reads a
		// scheme "staging", or fails on "127.0.0.1:8080".
		return nil, "", fmt.Errorf("URL %q has no scheme: write http://%s (or https://)", t, t)
	}
	u, err := url.Parse(strings.TrimSpace(s))
	s = MaskURL(s) // messages never show a password or a token
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return nil, "", fmt.Errorf("invalid URL %q: %s", s, maskDetail(err.Error(), s))
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" || u.Hostname() == "" {
			return nil, "", fmt.Errorf("URL %q has no host", s)
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				return nil, "", fmt.Errorf("URL %q has an invalid port", s)
			}
		}
		return u, "", nil
	case "builtin":
		if u.Opaque == "echo" {
			return u, "echo", nil
		}
		return nil, "", fmt.Errorf("unknown builtin target %q (want builtin:echo)", s)
	case "":
		return nil, "", fmt.Errorf("URL %q has no scheme (want http://, https:// or builtin:echo)", s)
	}
	return nil, "", fmt.Errorf("URL %q: scheme %q is not supported (want http, https or builtin:echo)", s, u.Scheme)
}
