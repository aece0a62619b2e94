package main

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/replayctl/replayctl/message"
	"github.com/replayctl/replayctl/sinks/gorsink"
)

// gorSpec describes a generated recording.
type gorSpec struct {
	Requests int
	Step     time.Duration // capture-time spacing of consecutive requests
	Conns    int           // distinct recorded connections (ConnID, source port)
	// Lag, when set, writes the odd connections' messages (a second
	// capturing host) as if they reached the broker Lag after the even
	// ones captured at the same time: the file, and so each partition it is
	// recorded into, is in arrival order, not capture order.
	Lag time.Duration
}

// gorInfo is what was written.
type gorInfo struct {
	Path         string
	Requests     int
	Bytes        int64 // raw HTTP bytes
	First, Last  int64 // capture times, Unix ns
	RecordedRate float64
}

var paths = []string{"/api/v1/products/", "/api/v1/cart/", "/api/v1/users/", "/static/app.", "/search?q=shoes&page="}

// request returns realistic GET request bytes (about 450 bytes).
func request(i int, id string) []byte {
	b := make([]byte, 0, 512)
	b = append(b, "GET "...)
	p := paths[i%len(paths)]
	b = append(b, p...)
	b = strconv.AppendInt(b, int64(i%10007), 10)
	switch {
	case p == "/static/app.":
		b = append(b, ".js"...)
	case p[len(p)-1] != '=':
		b = append(b, "?sort=price&page="...)
		b = strconv.AppendInt(b, int64(i%7), 10)
	}
	b = append(b, " HTTP/1.1\r\n"...)
	b = append(b, "Host: shop.example.com\r\n"...)
	b = append(b, "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n"...)
	b = append(b, "Accept: application/json, text/plain, */*\r\n"...)
	b = append(b, "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"...)
	b = append(b, "Accept-Encoding: gzip, deflate, br\r\n"...)
	b = append(b, "Referer: https://shop.example.com/catalog?category=running\r\n"...)
	b = append(b, "X-Request-Id: "...)
	b = append(b, id...)
	b = append(b, "\r\nCookie: session=5f1c9a0e7b3d4c2a; theme=dark\r\n"...)
	b = append(b, "Connection: keep-alive\r\n\r\n"...)
	return b
}

// writeGor writes spec's requests to path with gorsink, capture times Step
// apart starting at start. Requests carry a ConnID and addresses of one of
// spec.Conns client connections; the .gor format itself keeps only the
// GoReplay payload (type, ID, time, latency, raw bytes).
func writeGor(path string, spec gorSpec, start time.Time) (gorInfo, error) {
	s, err := gorsink.Create(path)
	if err != nil {
		return gorInfo{}, err
	}
	info := gorInfo{Path: path, Requests: spec.Requests}
	ctx := context.Background()
	conns := max(spec.Conns, 1)
	dst := netip.MustParseAddrPort("10.20.0.10:8080")
	t0 := start.UnixNano()
	type arrival struct {
		at int64
		m  *message.Message
	}
	var lagged []arrival
	// write writes m, closing the file when it fails.
	write := func(m *message.Message) error {
		info.Bytes += int64(len(m.Raw))
		if err := s.Write(ctx, m); err != nil {
			_ = s.Close(ctx)
			return err
		}
		return nil
	}
	for i := range spec.Requests {
		c := i % conns
		id := message.NewID()
		m := &message.Message{
			Kind:   message.Request,
			ID:     id,
			ConnID: "10.30." + strconv.Itoa(c/250) + "." + strconv.Itoa(c%250+1) + ":" + strconv.Itoa(40000+c%20000),
			Time:   t0 + int64(i)*int64(spec.Step),
			Src:    netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 30, byte(c / 250), byte(c%250 + 1)}), uint16(40000+c%20000)),
			Dst:    dst,
			Raw:    request(i, id),
		}
		if i == 0 {
			info.First = m.Time
		}
		info.Last = m.Time
		if spec.Lag > 0 {
			at := m.Time
			if c%2 == 1 {
				at += int64(spec.Lag)
			}
			lagged = append(lagged, arrival{at, m})
			continue
		}
		if err := write(m); err != nil {
			return info, err
		}
	}
	slices.SortStableFunc(lagged, func(a, b arrival) int { return cmp.Compare(a.at, b.at) })
	for _, a := range lagged {
		if err := write(a.m); err != nil {
			return info, err
		}
	}
	if err := s.Close(ctx); err != nil {
		return info, fmt.Errorf("gor file %s: %w", path, err)
	}
	if spec.Requests > 1 && info.Last > info.First {
		info.RecordedRate = float64(spec.Requests-1) / (float64(info.Last-info.First) / 1e9)
	}
	return info, nil
}
