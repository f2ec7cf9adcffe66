// Package sse writes server-sent events (text/event-stream) with JSON payloads,
// for the API's streamed answers and the dashboard's.
package sse

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Stream writes events to one response. Its headers (status 200) go out with the
// first event, so until then a failure can still be answered with an ordinary
// error response and status.
type Stream struct {
	w       http.ResponseWriter
	started bool
}

// New returns a Stream on w.
func New(w http.ResponseWriter) *Stream { return &Stream{w: w} }

// Started reports whether the headers have been sent.
func (s *Stream) Started() bool { return s.started }

// Start sends the headers if they have not been sent.
func (s *Stream) Start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx must not hold events back
	s.w.WriteHeader(http.StatusOK)
}

// Event writes one event whose data is payload as JSON, and flushes it.
func (s *Stream) Event(name string, payload any) error {
	b, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	s.Start()
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, b); err != nil {
		return err
	}
	return http.NewResponseController(s.w).Flush()
}
