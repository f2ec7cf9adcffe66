package telemetry_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cairn-dev/cairn/internal/telemetry"
)

// BenchmarkCall is the cost of recording one dependency call: with tracing off
// (metrics only, the default), and with spans recorded in memory.
func BenchmarkCall(b *testing.B) {
	for _, tc := range []struct {
		name string
		tel  *telemetry.Telemetry
	}{
		{"TracingOff", telemetry.New(prometheus.NewRegistry(), nil)},
		{"TracingOn", telemetry.New(prometheus.NewRegistry(), sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tracetest.NewSpanRecorder())))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				_, end := tc.tel.Call(ctx, telemetry.Redis, "evalsha")
				end(nil)
			}
		})
	}
}
