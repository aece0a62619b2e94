package h2sink

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// misbehaving runs one GET per path, all at once on one connection (their
// HEADERS all reach the server before it acts), to a frameServer whose
// handle answers the HEADERS of every stream once the last one came
// (paths in stream order). It returns the results by path, the stats,
// and a wait for a frame the client sent: "GOAWAY <code>" or
// "RST_STREAM <path> <code>".
func misbehaving(t *testing.T, handle func(c *frameConn, streams map[string]uint32), paths ...string) (map[string]httpsink.Result, map[string]int64, func(frame string)) {
	t.Helper()
	res, st, wait, _ := misbehave(t, handle, paths...)
	return res, st, wait
}

// misbehave is misbehaving that also returns the frames the client sent
// so far (as wait names them).
func misbehave(t *testing.T, handle func(c *frameConn, streams map[string]uint32), paths ...string) (map[string]httpsink.Result, map[string]int64, func(frame string), func() []string) {
	t.Helper()
	var mu sync.Mutex
	var sent []string
	ids := map[uint32]string{}
	u, _ := frameServer(t, func(c *frameConn, f http2.Frame) bool {
		mu.Lock()
		defer mu.Unlock()
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			ids[f.StreamID] = f.PseudoValue("path")
			if len(ids) == len(paths) {
				streams := map[string]uint32{}
				for id, p := range ids {
					streams[p] = id
				}
				handle(c, streams)
			}
		case *http2.GoAwayFrame:
			sent = append(sent, "GOAWAY "+f.ErrCode.String())
		case *http2.RSTStreamFrame:
			sent = append(sent, fmt.Sprintf("RST_STREAM %s %v", ids[f.StreamID], f.ErrCode))
		}
		return true
	})
	var reqs []httpsink.Request
	for _, p := range paths {
		reqs = append(reqs, httpsink.Request{ID: p, Raw: render(t, fields(":method", "GET", ":path", p, ":authority", "x"), "", nil)})
	}
	res, st := run(t, Config{Config: httpsink.Config{Targets: []httpsink.Target{{URL: u}}, Workers: len(paths), Timeout: 2 * time.Second}}, reqs...)
	byPath := map[string]httpsink.Result{}
	for _, r := range res {
		byPath[r.ID] = r
	}
	if st["connections"] != 1 {
		t.Fatalf("stats %v: want one connection", st)
	}
	wait := func(frame string) {
		t.Helper()
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			ok := slices.Contains(sent, frame)
			mu.Unlock()
			if ok {
				return
			}
		}
		mu.Lock()
		defer mu.Unlock()
		t.Errorf("the client sent %q, want %q", sent, frame)
	}
	frames := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(sent)
	}
	return byPath, st, wait, frames
}

// lowerWindows sets the receive windows of the connections opened until
// the test ends.
func lowerWindows(t *testing.T, stream, conn int) {
	saved := recvWindows
	recvWindows.stream, recvWindows.conn = stream, conn
	t.Cleanup(func() { recvWindows = saved })
}

// TestSendWindowOverflow: a WINDOW_UPDATE that takes a send window past
// 2^31-1 is a FLOW_CONTROL_ERROR (RFC 9113 §6.9.1): on the connection's
// window, a GOAWAY FLOW_CONTROL_ERROR and every stream of the connection
// fails (reset, saying why); on a stream's, RST_STREAM FLOW_CONTROL_ERROR
// and only that stream fails (bad-response). A SETTINGS_INITIAL_WINDOW_SIZE
// that takes a stream's window past it is a connection error (§6.9.2).
// Before, the windows grew past it and the requests waited for answers
// that never came (timeouts).
func TestSendWindowOverflow(t *testing.T) {
	t.Run("connection", func(t *testing.T) {
		res, st, wait := misbehaving(t, func(c *frameConn, _ map[string]uint32) {
			_ = c.fr.WriteWindowUpdate(0, maxWindow) // the window is 65535 already
		}, "/a", "/b")
		if st["errors-"+stats.ClassReset] != 2 {
			t.Fatalf("stats %v", st)
		}
		for _, r := range res {
			if !strings.Contains(r.Err.Error(), "FLOW_CONTROL_ERROR") || !strings.Contains(r.Err.Error(), "send window") {
				t.Errorf("%s: %v, want the flow-control error", r.ID, r.Err)
			}
		}
		wait("GOAWAY FLOW_CONTROL_ERROR")
	})
	t.Run("stream", func(t *testing.T) {
		res, st, wait := misbehaving(t, func(c *frameConn, streams map[string]uint32) {
			_ = c.fr.WriteWindowUpdate(streams["/bad"], maxWindow)
			_ = c.headers(streams["/good"], true, ":status", "200")
		}, "/bad", "/good")
		if st["ok"] != 1 || st["errors-"+stats.ClassBadResponse] != 1 || st["errors"] != 1 {
			t.Fatalf("stats %v", st)
		}
		if err := res["/bad"].Err; err == nil || !strings.Contains(err.Error(), "flow-control error") {
			t.Errorf("/bad: %v, want the flow-control error", err)
		}
		wait("RST_STREAM /bad FLOW_CONTROL_ERROR")
	})
	t.Run("initial-window", func(t *testing.T) {
		res, st, wait := misbehaving(t, func(c *frameConn, streams map[string]uint32) {
			_ = c.fr.WriteWindowUpdate(streams["/a"], maxWindow-65535) // at the maximum
			_ = c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65536})
		}, "/a")
		if st["errors-"+stats.ClassReset] != 1 {
			t.Fatalf("stats %v", st)
		}
		if err := res["/a"].Err; !strings.Contains(err.Error(), "SETTINGS_INITIAL_WINDOW_SIZE") {
			t.Errorf("/a: %v, want the flow-control error", err)
		}
		wait("GOAWAY FLOW_CONTROL_ERROR")
	})
}

// TestWindowUpdateZero: a WINDOW_UPDATE with an increment of 0 is a
// PROTOCOL_ERROR (RFC 9113 §6.9): on a stream, that stream fails
// (bad-response) and is reset; on the connection, GOAWAY PROTOCOL_ERROR
// and its streams fail (reset). x/net's Framer finds it.
func TestWindowUpdateZero(t *testing.T) {
	zero := func(c *frameConn, id uint32) {
		// WriteWindowUpdate refuses an increment of 0.
		_ = c.fr.WriteRawFrame(http2.FrameWindowUpdate, 0, id, []byte{0, 0, 0, 0})
	}
	t.Run("stream", func(t *testing.T) {
		_, st, wait := misbehaving(t, func(c *frameConn, streams map[string]uint32) {
			zero(c, streams["/bad"])
			_ = c.headers(streams["/good"], true, ":status", "200")
		}, "/bad", "/good")
		if st["ok"] != 1 || st["errors-"+stats.ClassBadResponse] != 1 || st["errors"] != 1 {
			t.Fatalf("stats %v", st)
		}
		wait("RST_STREAM /bad PROTOCOL_ERROR")
	})
	t.Run("connection", func(t *testing.T) {
		_, st, wait := misbehaving(t, func(c *frameConn, _ map[string]uint32) { zero(c, 0) }, "/a", "/b")
		if st["errors-"+stats.ClassReset] != 2 {
			t.Fatalf("stats %v", st)
		}
		wait("GOAWAY PROTOCOL_ERROR")
	})
}

// TestReceiveWindowOverrun: a server that sends more DATA than the window
// the client advertised, on a stream or on the connection, padding
// included, commits a FLOW_CONTROL_ERROR (RFC 9113 §6.9.1): the client
// sends GOAWAY FLOW_CONTROL_ERROR and the connection's streams fail
// (reset). An answer that fills a window exactly is taken. The windows are
// lowered for the test: the client's own (4 MiB, 1 GiB), given back once
// half is used, could be overrun only by a frame larger than it reads.
func TestReceiveWindowOverrun(t *testing.T) {
	answer := func(data, pad int) func(c *frameConn, streams map[string]uint32) {
		return func(c *frameConn, streams map[string]uint32) {
			id := streams["/a"]
			_ = c.headers(id, false, ":status", "200")
			_ = c.fr.WriteDataPadded(id, true, make([]byte, data), make([]byte, pad))
		}
	}
	t.Run("stream-padding", func(t *testing.T) {
		lowerWindows(t, 16384, connWindow)
		// 16300 bytes of data fit the stream's window; with the pad
		// length and 100 bytes of padding, the frame does not.
		res, st, wait := misbehaving(t, answer(16300, 100), "/a")
		if st["errors-"+stats.ClassReset] != 1 {
			t.Fatalf("stats %v", st)
		}
		if err := res["/a"].Err; !strings.Contains(err.Error(), "FLOW_CONTROL_ERROR") || !strings.Contains(err.Error(), "stream's receive window") {
			t.Errorf("/a: %v, want the flow-control error", err)
		}
		wait("GOAWAY FLOW_CONTROL_ERROR")
	})
	t.Run("connection", func(t *testing.T) {
		lowerWindows(t, 1<<20, 65535)
		res, st, wait := misbehaving(t, answer(65536, 0), "/a")
		if st["errors-"+stats.ClassReset] != 1 {
			t.Fatalf("stats %v", st)
		}
		if err := res["/a"].Err; !strings.Contains(err.Error(), "connection's receive window") {
			t.Errorf("/a: %v, want the flow-control error", err)
		}
		wait("GOAWAY FLOW_CONTROL_ERROR")
	})
	t.Run("exactly-the-window", func(t *testing.T) {
		lowerWindows(t, 16384, 65535)
		res, st, _ := misbehaving(t, answer(16283, 100), "/a") // 1+16283+100 = 16384
		if st["ok"] != 1 || len(res["/a"].Response) == 0 {
			t.Fatalf("stats %v, result %+v", st, res["/a"])
		}
	})
}
