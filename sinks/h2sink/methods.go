package h2sink

import (
	"strconv"
	"strings"
	"sync"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/sinks/httpsink"
	"github.com/replayctl/replayctl/stats"
)

// maxMethods caps the gRPC methods tracked one by one; the others are
// added up under OtherMethods.
const maxMethods = 1000

// OtherMethods is the key of the gRPC methods beyond the first 1000.
const OtherMethods = "(other)"

// MethodStats are the results of one gRPC method.
type MethodStats struct {
	stats.Summary
	// GRPCStatus counts the answers by grpc-status (absent: not counted).
	GRPCStatus map[int]int64
	// State is the method's lossless stats: the methods' of the shards of
	// a run merge exactly.
	State stats.State
}

type methodRec struct {
	rec    *stats.Recorder
	status map[int]int64
}

type methods struct {
	mu sync.Mutex
	m  map[string]*methodRec
}

// isGRPC says whether a request is a gRPC call.
func isGRPC(pr *h2text.Request) bool {
	for _, f := range pr.Header {
		if f.Name == "content-type" {
			return strings.HasPrefix(f.Value, "application/grpc")
		}
	}
	return false
}

func (ms *methods) record(path, code string, r httpsink.Result) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	if ms.m == nil {
		ms.m = map[string]*methodRec{}
	}
	mr := ms.m[path]
	if mr == nil {
		if len(ms.m) >= maxMethods {
			path = OtherMethods
			mr = ms.m[path]
		}
		if mr == nil {
			mr = &methodRec{rec: stats.New(stats.Config{MaxSeries: 2}), status: map[int]int64{}}
			ms.m[path] = mr
		}
	}
	mr.rec.Record(r.Result)
	if n, err := strconv.Atoi(code); err == nil {
		mr.status[n]++
	}
}

// Methods returns the results by gRPC method (the request path,
// "/package.Service/Method"), for the requests sent as gRPC calls.
func (s *Sender) Methods() map[string]MethodStats {
	s.methods.mu.Lock()
	defer s.methods.mu.Unlock()
	out := make(map[string]MethodStats, len(s.methods.m))
	for k, mr := range s.methods.m {
		st := make(map[int]int64, len(mr.status))
		for c, n := range mr.status {
			st[c] = n
		}
		out[k] = MethodStats{Summary: mr.rec.Summary(), GRPCStatus: st, State: mr.rec.State()}
	}
	return out
}
