package server_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/redistest"
	"github.com/cairn-dev/cairn/internal/retrieval/openai/openaitest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// otlpReceiver is an OTLP/HTTP trace collector: it decodes what exporters POST
// to /v1/traces (protobuf) and keeps the spans.
type otlpReceiver struct {
	*httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces in protobuf", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range export.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				r.spans = append(r.spans, ss.GetSpans()...)
			}
		}
		r.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(r.Close)
	return r
}

// trace returns the spans received with trace id id.
func (r *otlpReceiver) trace(id string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if hex.EncodeToString(s.GetTraceId()) == id {
			out = append(out, s)
		}
	}
	return out
}

func attr(s *tracepb.Span, key string) string {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

func TestTracesOverOTLP(t *testing.T) {
	recv := startOTLPReceiver(t)
	oa := openaitest.Start(t, "sk-server")
	rd := redistest.Start(t)
	inst := servertest.Start(t, map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": recv.URL, "OPENAI_API_KEY": "sk-server", "OPENAI_BASE_URL": oa.BaseURL(), "REDIS_URL": rd.URL,
	})
	acct := inst.NewAccount(t, plan.Pro)
	if resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[{"id":"kites","text":"Kites fly best on windy beaches in spring."}]}`); resp.StatusCode != 200 {
		t.Fatalf("POST /v1/documents = %d %s", resp.StatusCode, servertest.ReadBody(t, resp))
	}

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", inst.URL+"/v1/search", strings.NewReader(`{"query":"windy beaches","mode":"hybrid"}`))
	req.Header.Set("Authorization", "Bearer "+acct.Key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
	req.Header.Set("X-Request-ID", "trace-me-42")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if body := servertest.ReadBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("search: %d %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Traceparent"); !strings.Contains(got, traceID) {
		t.Errorf("response traceparent %q, want the caller's trace %s", got, traceID)
	}

	// OpenAI was called inside the trace, and told so.
	var toOpenAI string
	for _, r := range oa.Requests() {
		if strings.Contains(r.Traceparent, traceID) {
			toOpenAI = r.Traceparent
		}
	}
	if toOpenAI == "" {
		t.Errorf("no request to OpenAI carried the trace %s: %+v", traceID, oa.Requests())
	}

	inst.Stop() // sends what is batched
	var spans []*tracepb.Span
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if spans = recv.trace(traceID); len(spans) > 0 {
			break
		}
	}
	var server *tracepb.Span
	kinds := map[string]int{}
	for _, s := range spans {
		switch {
		case s.GetKind() == tracepb.Span_SPAN_KIND_SERVER:
			server = s
		case strings.HasPrefix(s.GetName(), "postgres "):
			kinds["postgres"]++
		case strings.HasPrefix(s.GetName(), "redis "):
			kinds["redis"]++
		case strings.HasPrefix(s.GetName(), "openai "):
			kinds["openai"]++
		}
		for _, kv := range s.GetAttributes() {
			if v := kv.GetValue().GetStringValue(); strings.Contains(v, acct.Key) || strings.Contains(v, "sk-server") || strings.Contains(v, "windy beaches") {
				t.Errorf("span %q attribute %s carries a secret or the query: %q", s.GetName(), kv.GetKey(), v)
			}
		}
	}
	if server == nil {
		t.Fatalf("no server span in trace %s; got %d spans", traceID, len(spans))
	}
	if got := hex.EncodeToString(server.GetParentSpanId()); got != parentID {
		t.Errorf("server span's parent %s, want the caller's %s", got, parentID)
	}
	if server.GetName() != "POST /v1/search" || attr(server, "request_id") != "trace-me-42" || attr(server, "http.route") != "/v1/search" {
		t.Errorf("server span %q request_id %q route %q", server.GetName(), attr(server, "request_id"), attr(server, "http.route"))
	}
	t.Logf("spans in the trace: %d, by kind %v", len(spans), kinds)
	// SQL outside any request (River polling, housekeeping) starts no trace of its own.
	recv.mu.Lock()
	for _, s := range recv.spans {
		if strings.HasPrefix(s.GetName(), "postgres ") && len(s.GetParentSpanId()) == 0 {
			t.Errorf("a root SQL span was exported: %q", s.GetName())
		}
	}
	recv.mu.Unlock()
	for _, k := range []string{"postgres", "redis", "openai"} {
		if kinds[k] == 0 {
			t.Errorf("no %s span in the trace: %v", k, kinds)
		}
	}
	for _, s := range spans {
		if s.GetKind() != tracepb.Span_SPAN_KIND_SERVER && attr(s, "request_id") != "trace-me-42" {
			t.Errorf("span %q lacks the request id", s.GetName())
		}
	}
}
