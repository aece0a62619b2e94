package engine

import (
	"context"
	"errors"
	"log/slog"

	"github.com/replayctl/replayctl/h2text"
	"github.com/replayctl/replayctl/scenario"
	"github.com/replayctl/replayctl/sinks/h2sink"
	"github.com/replayctl/replayctl/sinks/httpsink"
)

// replaySender is what a replay sends through.
type replaySender interface {
	Send(ctx context.Context, req httpsink.Request) error
	Close(ctx context.Context) error
	Stats() map[string]int64
	// Stop stops taking requests (Ctrl-C): what is queued is dropped.
	Stop()
}

// protoRouter sends each request by the sink's protocol: "h2" all over
// HTTP/2, "http1" all over HTTP/1.x (those captured from HTTP/2 converted
// to HTTP/1.1 by prepare), "auto" the requests captured from HTTP/2
// (h2text's form) over HTTP/2 and the others over HTTP/1.x.
type protoRouter struct {
	h1 *httpsink.Sender
	h2 *h2sink.Sender
}

// newReplaySender starts the senders the protocol needs; ps, when not nil,
// gets every result with the protocol it went over; log gets the senders'
// warnings.
func newReplaySender(hs *scenario.HTTPSink, cfg httpsink.Config, ps *protocolStats, log *slog.Logger) (*protoRouter, error) {
	p := &protoRouter{}
	var err error
	tag := func(proto string, cfg httpsink.Config) httpsink.Config {
		if ps != nil {
			next := cfg.OnResult
			cfg.OnResult = func(r httpsink.Result) {
				if !r.Dropped() {
					ps.record(proto, r)
				}
				if next != nil {
					next(r)
				}
			}
		}
		return cfg
	}
	if hs.Protocol != scenario.ProtocolH2 {
		if p.h1, err = httpsink.New(tag(protoHTTP1, cfg)); err != nil {
			return nil, err
		}
	}
	if hs.Protocol != scenario.ProtocolHTTP1 {
		if p.h2, err = h2sink.New(h2sink.Config{Config: tag(protoHTTP2, cfg), MaxStreams: hs.MaxStreams, Logger: log}); err != nil {
			if p.h1 != nil {
				_ = p.h1.Close(context.Background())
			}
			return nil, err
		}
	}
	return p, nil
}

// Not-sent counters of prepare's refusals.
const (
	notSentGRPC  = "not-sent-grpc-over-http1"
	notSentH2Bad = "not-sent-h2-unconvertible"
)

// prepare returns what to give Send for raw, once per request (amplify and
// mirror targets share it): a request captured from HTTP/2 that goes to
// the HTTP/1.x sender (protocol http1) becomes an HTTP/1.1 request
// (h2text.AppendHTTP1); the others are raw itself. A request that cannot
// go is not to be sent: notSent names its counter (notSentGRPC for gRPC,
// which has no HTTP/1.x form) and err says why.
func (p *protoRouter) prepare(raw []byte) (out []byte, notSent string, err error) {
	if p.h2 != nil || !h2text.IsH2(raw) {
		return raw, "", nil
	}
	out, err = h2text.AppendHTTP1(make([]byte, 0, len(raw)+64), raw)
	switch {
	case errors.Is(err, h2text.ErrGRPC):
		return nil, notSentGRPC, err
	case err != nil:
		return nil, notSentH2Bad, err
	}
	return out, "", nil
}

// Send sends req by its protocol; a request from HTTP/2 for the HTTP/1.x
// sender has been through prepare.
func (p *protoRouter) Send(ctx context.Context, req httpsink.Request) error {
	if p.h2 != nil && (p.h1 == nil || h2text.IsH2(req.Raw)) {
		return p.h2.Send(ctx, req)
	}
	return p.h1.Send(ctx, req)
}

// Preconnect opens the HTTP/1.x sender's connections ahead
// (min-connections); the HTTP/2 sender opens its own as streams need them.
func (p *protoRouter) Preconnect(ctx context.Context) (open, asked int, err error) {
	if p.h1 == nil {
		return 0, 0, nil
	}
	return p.h1.Preconnect(ctx)
}

// Stop stops taking requests: the HTTP/1.x sender drops what is queued
// (counted); the HTTP/2 sender's queue is bounded by its streams and ends
// with the job's context.
func (p *protoRouter) Stop() {
	if p.h1 != nil {
		p.h1.Stop()
	}
}

func (p *protoRouter) Close(ctx context.Context) error {
	var errs []error
	if p.h1 != nil {
		errs = append(errs, p.h1.Close(ctx))
	}
	if p.h2 != nil {
		errs = append(errs, p.h2.Close(ctx))
	}
	return errors.Join(errs...)
}

// Methods returns the HTTP/2 sender's results by gRPC method.
func (p *protoRouter) Methods() map[string]h2sink.MethodStats {
	if p.h2 == nil {
		return nil
	}
	return p.h2.Methods()
}

// Stats are the HTTP/1.x sender's counters, and the HTTP/2 sender's with
// an "h2." prefix (with protocol h2 alone, unprefixed).
func (p *protoRouter) Stats() map[string]int64 {
	if p.h1 == nil {
		return p.h2.Stats()
	}
	m := p.h1.Stats()
	if p.h2 != nil {
		for k, v := range p.h2.Stats() {
			if v != 0 {
				m["h2."+k] = v
			}
		}
	}
	return m
}
