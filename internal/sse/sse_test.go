package sse

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStream(t *testing.T) {
	rec := httptest.NewRecorder()
	s := New(rec)
	if s.Started() {
		t.Fatal("started before any event")
	}
	if err := s.Event("delta", map[string]string{"text": "line\nbreak"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Event("done", map[string]string{"mode": "extractive"}); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Header().Get("X-Accel-Buffering") != "no" {
		t.Fatalf("headers: %d %v", rec.Code, rec.Header())
	}
	// A newline inside the payload stays escaped in the JSON, so it cannot end the event.
	want := "event: delta\ndata: {\"text\":\"line\\nbreak\"}\n\nevent: done\ndata: {\"mode\":\"extractive\"}\n\n"
	if got := rec.Body.String(); got != want {
		t.Fatalf("body %q, want %q", got, want)
	}
	if !rec.Flushed {
		t.Fatal("events were not flushed")
	}
}
