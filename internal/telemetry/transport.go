package telemetry

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc/metadata"
)

// propagator carries W3C trace context (traceparent, tracestate) in HTTP headers.
var propagator = propagation.TraceContext{}

// Inject writes the trace context of ctx into h, so the service called continues
// the trace; nothing is written when ctx carries no sampled span.
func Inject(ctx context.Context, h http.Header) { propagator.Inject(ctx, propagation.HeaderCarrier(h)) }

// Extract reads a caller's trace context from h.
func Extract(ctx context.Context, h http.Header) context.Context {
	return propagator.Extract(ctx, propagation.HeaderCarrier(h))
}

// Transport wraps base (http.DefaultTransport when nil) so that every request is a
// call to dep: timed, counted, in a span, with the trace context sent along. The
// operation is the method and the path without ids ("POST /v1/customers/{id}");
// answers of 429 and 5xx count as failures, other 4xx as the caller's mistakes.
func (t *Telemetry) Transport(dep string, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return transport{t: t, dep: dep, base: base}
}

type transport struct {
	t    *Telemetry
	dep  string
	base http.RoundTripper
}

// RoundTrip sends req as one call.
func (tr transport) RoundTrip(req *http.Request) (*http.Response, error) {
	op := req.Method + " " + pathPattern(req.URL.Path)
	ctx, end := tr.t.Call(req.Context(), tr.dep, op, attribute.String("http.request.method", req.Method), attribute.String("server.address", req.URL.Host))
	req = req.Clone(ctx)
	Inject(ctx, req.Header)
	resp, err := tr.base.RoundTrip(req)
	switch {
	case err != nil:
		end(err)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		end(fmt.Errorf("%s %s: HTTP %d", req.Method, pathPattern(req.URL.Path), resp.StatusCode))
	default:
		end(nil)
	}
	return resp, err
}

// pathPattern replaces the segments of p after the first that hold a digit (ids
// such as cus_N4x7, 42) with {id}, so that the operation label stays one per
// endpoint.
func pathPattern(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if i > 1 && strings.ContainsAny(s, "0123456789") {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

// OutgoingGRPC adds the trace context of ctx to the gRPC metadata that calls made
// with the returned context send (Pinecone's data plane is gRPC).
func OutgoingGRPC(ctx context.Context) context.Context {
	h := http.Header{}
	Inject(ctx, h)
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := h.Get(k); v != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, k, v)
		}
	}
	return ctx
}
