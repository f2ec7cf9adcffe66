package telemetry

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cairn-dev/cairn/internal/config"
)

// NewTracerProvider returns a provider that batches spans and sends them over
// OTLP/HTTP (protobuf) to cfg.Endpoint, or nil when tracing is off. The exporter's
// other standard variables (OTEL_EXPORTER_OTLP_TIMEOUT, _COMPRESSION, _CERTIFICATE)
// and the sampler's (OTEL_TRACES_SAMPLER, default parent-based always-on) are read
// by the OpenTelemetry SDK itself. Shutdown flushes what is batched.
func NewTracerProvider(cfg config.Tracing) (*sdktrace.TracerProvider, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(cfg.Endpoint)}
	if len(cfg.Headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.Headers))
	}
	// New does not connect: an unreachable collector costs dropped spans, not a start.
	exp, err := otlptracehttp.New(context.Background(), opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(attribute.String("service.name", cfg.ServiceName)))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

type requestIDKey struct{}

// WithRequestID puts the request id in ctx, where every span started below it
// picks it up as the attribute request_id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// requestIDAttr is the request id of ctx as a span attribute, if it has one.
func requestIDAttr(ctx context.Context, attrs []attribute.KeyValue) []attribute.KeyValue {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		return append(attrs, attribute.String("request_id", id))
	}
	return attrs
}
