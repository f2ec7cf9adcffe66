// Package telemetry is what a replica tells its operators about itself: Prometheus
// metrics, OpenTelemetry spans, and the last failure of each dependency, recorded
// once per outgoing call through Call so that the three never disagree.
package telemetry

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The dependencies a replica calls, as they are named in metrics, spans and
// /health/detailed.
const (
	Postgres = "postgres"
	Redis    = "redis"
	Pinecone = "pinecone"
	OpenAI   = "openai"
	SMTP     = "smtp"
	Stripe   = "stripe"
)

// Dependencies lists every dependency in the order /health/detailed shows them.
var Dependencies = []string{Postgres, Redis, Pinecone, OpenAI, SMTP, Stripe}

// Outcomes of a call, the "outcome" label of cairn_dependency_calls_total.
const (
	OutcomeOK    = "ok"
	OutcomeError = "error"
)

// Telemetry records one replica's metrics and spans. A nil *Telemetry records
// nothing, so services built without one (tests, admin commands) need no checks.
type Telemetry struct {
	registry    *prometheus.Registry
	tracer      trace.Tracer
	tracing     bool
	calls       *prometheus.CounterVec
	callSeconds *prometheus.HistogramVec

	mu   sync.Mutex
	last map[string]Failure
}

// Failure is the last error of real traffic to a dependency.
type Failure struct {
	Error string    `json:"error"`
	At    time.Time `json:"at"`
}

// New returns a Telemetry that registers its metrics in reg and starts spans from
// tp; a nil tp means no tracing (a no-op tracer, which costs nothing).
func New(reg *prometheus.Registry, tp trace.TracerProvider) *Telemetry {
	t := &Telemetry{registry: reg, last: map[string]Failure{}, tracing: tp != nil}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	t.tracer = tp.Tracer("github.com/cairn-dev/cairn")
	t.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_dependency_calls_total",
		Help: "Calls to dependencies (openai, pinecone, stripe, smtp, redis), by operation and outcome (ok, error).",
	}, []string{"dependency", "operation", "outcome"})
	t.callSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_dependency_call_duration_seconds",
		Help:    "Time of calls to dependencies, retries included, by operation.",
		Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"dependency", "operation"})
	reg.MustRegister(t.calls, t.callSeconds)
	return t
}

// Tracer returns the tracer spans start from (a no-op one when tracing is off).
func (t *Telemetry) Tracer() trace.Tracer {
	if t == nil {
		return noop.NewTracerProvider().Tracer("")
	}
	return t.tracer
}

// Tracing reports whether spans are exported.
func (t *Telemetry) Tracing() bool { return t != nil && t.tracing }

// Call starts a call to dependency dep: a client span named "dep op" and a timer.
// The returned end records its outcome (err nil or not) in the metrics, the span,
// and the dependency's last failure. err's text must carry no secret.
func (t *Telemetry) Call(ctx context.Context, dep, op string, attrs ...attribute.KeyValue) (context.Context, func(err error)) {
	if t == nil {
		return ctx, func(error) {}
	}
	start := time.Now()
	var span trace.Span
	if t.tracing {
		attrs = requestIDAttr(ctx, append(attrs, attribute.String("peer.service", dep)))
		ctx, span = t.tracer.Start(ctx, dep+" "+op, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	}
	return ctx, func(err error) {
		outcome := OutcomeOK
		if err != nil && !canceled(ctx, err) {
			outcome = OutcomeError
			t.Fail(dep, err)
		}
		t.calls.WithLabelValues(dep, op, outcome).Inc()
		t.callSeconds.WithLabelValues(dep, op).Observe(time.Since(start).Seconds())
		if span != nil {
			if outcome == OutcomeError {
				span.SetStatus(codes.Error, errorText(err))
			}
			span.End()
		}
	}
}

// canceled reports whether err only says that the caller went away, which tells
// nothing about the dependency.
func canceled(ctx context.Context, err error) bool {
	return errors.Is(err, context.Canceled) || ctx.Err() == context.Canceled
}

// Fail records err as dep's last failure, for calls that Call does not wrap.
func (t *Telemetry) Fail(dep string, err error) {
	if t == nil || err == nil {
		return
	}
	t.mu.Lock()
	t.last[dep] = Failure{Error: errorText(err), At: time.Now().UTC()}
	t.mu.Unlock()
}

// LastFailure returns dep's last recorded failure, if any.
func (t *Telemetry) LastFailure(dep string) (Failure, bool) {
	if t == nil {
		return Failure{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.last[dep]
	return f, ok
}

// errorText is err's message, bounded: some libraries quote whole response bodies.
func errorText(err error) string {
	s := strings.TrimSpace(err.Error())
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
