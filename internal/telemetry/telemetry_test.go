package telemetry_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/cairn-dev/cairn/internal/telemetry"
)

func TestTransportRecordsTheCallAndSendsTheTrace(t *testing.T) {
	var (
		mu     sync.Mutex
		parent string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		parent = r.Header.Get("Traceparent")
		mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	spans := tracetest.NewSpanRecorder()
	reg := prometheus.NewRegistry()
	tel := telemetry.New(reg, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))

	ctx, span := tel.Tracer().Start(context.Background(), "request")
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/v1/customers/cus_N4x7/sources", nil)
	resp, err := (&http.Client{Transport: tel.Transport(telemetry.Stripe, nil)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	span.End()

	mu.Lock()
	defer mu.Unlock()
	if want := span.SpanContext().TraceID().String(); !strings.Contains(parent, want) {
		t.Errorf("traceparent sent %q, want trace %s", parent, want)
	}
	if got := errorCalls(t, reg, "GET /v1/customers/{id}/sources"); got != 1 {
		t.Errorf("error calls counted %v, want 1 under the id-free operation", got)
	}
	if f, ok := tel.LastFailure(telemetry.Stripe); !ok || !strings.Contains(f.Error, "503") {
		t.Errorf("last failure %+v %v, want the 503", f, ok)
	}
	var names []string
	for _, s := range spans.Ended() {
		names = append(names, s.Name())
	}
	if len(names) != 2 || names[0] != "stripe GET /v1/customers/{id}/sources" {
		t.Errorf("spans %v, want the call's inside the request's", names)
	}
}

// errorCalls returns cairn_dependency_calls_total{dependency=stripe, operation=op, outcome=error}.
func errorCalls(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "cairn_dependency_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["dependency"] == "stripe" && labels["operation"] == op && labels["outcome"] == "error" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestNilTelemetryRecordsNothing(t *testing.T) {
	var tel *telemetry.Telemetry
	ctx, end := tel.Call(context.Background(), telemetry.OpenAI, "embeddings")
	end(errors.New("boom"))
	if ctx == nil || tel.Tracing() {
		t.Fatal("a nil Telemetry must pass the context through and not trace")
	}
	if _, ok := tel.LastFailure(telemetry.OpenAI); ok {
		t.Fatal("a nil Telemetry kept a failure")
	}
}

func TestCanceledCallsAreNotFailures(t *testing.T) {
	tel := telemetry.New(prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	ctx, end := tel.Call(ctx, telemetry.Pinecone, "query")
	cancel()
	end(ctx.Err())
	if f, ok := tel.LastFailure(telemetry.Pinecone); ok {
		t.Fatalf("a caller going away was kept as Pinecone's failure: %+v", f)
	}
}

func TestOutgoingGRPCCarriesTheTrace(t *testing.T) {
	tel := telemetry.New(prometheus.NewRegistry(), sdktrace.NewTracerProvider())
	ctx, span := tel.Tracer().Start(context.Background(), "request")
	defer span.End()
	md, _ := metadata.FromOutgoingContext(telemetry.OutgoingGRPC(ctx))
	if got := md.Get("traceparent"); len(got) != 1 || !strings.Contains(got[0], span.SpanContext().TraceID().String()) {
		t.Fatalf("gRPC metadata traceparent %v, want trace %s", got, span.SpanContext().TraceID())
	}
	md, _ = metadata.FromOutgoingContext(telemetry.OutgoingGRPC(context.Background()))
	if len(md.Get("traceparent")) != 0 {
		t.Fatalf("a context without a span sent traceparent %v", md.Get("traceparent"))
	}
}
