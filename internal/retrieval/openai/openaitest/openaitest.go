// Package openaitest runs an in-process server that speaks OpenAI's HTTP API
// (embeddings, chat completions, streamed chat completions as server-sent events) for
// tests: OPENAI_BASE_URL=srv.BaseURL() points any OpenAI client at it. Its embeddings
// are deterministic hashed bags of words, so texts sharing words are close.
package openaitest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// OpenAI's limits for one embeddings request, which the server enforces so that a
// client that does not batch fails here as it would there.
const (
	MaxInputs        = 2048
	MaxInputTokens   = 8192
	MaxRequestTokens = 300_000
)

// Server is a fake OpenAI API. Its fields may be set before the first request.
type Server struct {
	// Keys are the API keys it accepts as "Authorization: Bearer <key>".
	Keys []string
	// Dimensions is the length of embeddings when the request does not ask for one.
	Dimensions int
	// Reply makes the answer of a chat completion; by default it cites source [1].
	Reply func(msgs []Message) string
	// StreamError, when set, breaks every streamed answer after its first piece with
	// an error event carrying this message, as OpenAI reports a failure mid-stream.
	StreamError string
	// Delay holds every embeddings answer this long, so a test can act while a
	// long job is halfway.
	Delay time.Duration
	// Hold, when set, pauses every streamed answer after its first piece until it is
	// closed (or the client leaves), so a test can see an answer arrive in pieces.
	Hold chan struct{}

	srv *httptest.Server
	// closing ends hung requests, which httptest.Server.Close would wait for.
	closing chan struct{}

	mu       sync.Mutex
	failures []Failure
	requests []Request
}

// Message is a chat message as it arrived.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Request is one request the server received.
type Request struct {
	Path          string
	Authorization string
	// Inputs are an embeddings request's texts.
	Inputs []string
	// Dimensions is what an embeddings request asked for (0: not asked).
	Dimensions int
	Model      string
	Messages   []Message
	Stream     bool
	// Traceparent is the W3C trace context the request carried.
	Traceparent string
}

// Failure is an error answer the server gives instead of serving a request.
type Failure struct {
	Status int
	// Header is added to the answer, e.g. Retry-After.
	Header http.Header
	// Message goes in OpenAI's error object; a default fits Status.
	Message string
	// Code is OpenAI's error code, e.g. "insufficient_quota".
	Code string
	// Hang keeps the request open until the client goes away instead of answering.
	Hang bool
}

// Start runs a server accepting keys and stops it when the test ends.
func Start(t testing.TB, keys ...string) *Server {
	t.Helper()
	s := &Server{Keys: keys, Dimensions: 64, closing: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/embeddings", s.embeddings)
	mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.srv = httptest.NewServer(s.authenticate(mux))
	t.Cleanup(s.srv.Close)
	t.Cleanup(func() { close(s.closing) })
	return s
}

// BaseURL is the value for OPENAI_BASE_URL.
func (s *Server) BaseURL() string { return s.srv.URL + "/v1" }

// Fail makes the server answer the next len(fs) requests with fs, in order.
func (s *Server) Fail(fs ...Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fs...)
}

// Requests returns the requests received so far, failed ones included.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

func (s *Server) record(r Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, r)
}

func (s *Server) nextFailure() (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.failures) == 0 {
		return Failure{}, false
	}
	f := s.failures[0]
	s.failures = s.failures[1:]
	return f, true
}

// authenticate checks the key first, as OpenAI does, then serves an injected failure
// if one is queued.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		key, ok := strings.CutPrefix(auth, "Bearer ")
		known := false
		for _, k := range s.Keys {
			known = known || (ok && k == key)
		}
		if !known {
			s.record(Request{Path: r.URL.Path, Authorization: auth})
			// The real API masks most of the key; quoting all of it here proves that
			// Cairn never passes such messages on.
			writeError(w, http.StatusUnauthorized, "invalid_request_error", "invalid_api_key",
				fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys.", key))
			return
		}
		if f, ok := s.nextFailure(); ok {
			s.record(Request{Path: r.URL.Path, Authorization: auth})
			s.fail(w, r, f, key)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, f Failure, key string) {
	if f.Hang {
		// The server notices a client hanging up only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return
	}
	for k, vs := range f.Header {
		w.Header()[k] = vs
	}
	typ, code, msg := "server_error", f.Code, f.Message
	switch {
	case f.Status == http.StatusTooManyRequests && code == "insufficient_quota":
		typ = "insufficient_quota"
	case f.Status == http.StatusTooManyRequests:
		typ = "requests"
		if code == "" {
			code = "rate_limit_exceeded"
		}
	case f.Status < 500:
		typ = "invalid_request_error"
	}
	if msg == "" {
		msg = fmt.Sprintf("The server had an error while processing your request (key %s).", key)
	}
	writeError(w, f.Status, typ, code, msg)
}

func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) {
	if s.Delay > 0 {
		select {
		case <-time.After(s.Delay):
		case <-r.Context().Done():
			return
		}
	}
	var req struct {
		Input      json.RawMessage `json:"input"`
		Model      string          `json:"model"`
		Dimensions int             `json:"dimensions"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	var inputs []string
	if err := json.Unmarshal(req.Input, &inputs); err != nil {
		var one string
		if err := json.Unmarshal(req.Input, &one); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "'$.input' is invalid.")
			return
		}
		inputs = []string{one}
	}
	s.record(Request{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Traceparent: r.Header.Get("Traceparent"),
		Inputs: inputs, Dimensions: req.Dimensions, Model: req.Model})
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "you must provide a model parameter")
		return
	}
	if len(inputs) == 0 || len(inputs) > MaxInputs {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "",
			fmt.Sprintf("'$.input' is invalid: %d inputs, want 1 to %d.", len(inputs), MaxInputs))
		return
	}
	total := 0
	for _, in := range inputs {
		n := tokens(in)
		if in == "" || n > MaxInputTokens {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "",
				fmt.Sprintf("This model's maximum context length is %d tokens, however you requested %d tokens.", MaxInputTokens, n))
			return
		}
		total += n
	}
	if total > MaxRequestTokens {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "max_tokens_per_request",
			fmt.Sprintf("Requested %d tokens, max %d tokens per request", total, MaxRequestTokens))
		return
	}
	dims := s.Dimensions
	if req.Dimensions > 0 {
		dims = req.Dimensions
	}
	type embedding struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	data := make([]embedding, len(inputs))
	for i, in := range inputs {
		data[i] = embedding{Object: "embedding", Index: i, Embedding: Embed(in, dims)}
	}
	writeJSON(w, map[string]any{
		"object": "list", "data": data, "model": req.Model,
		"usage": map[string]int{"prompt_tokens": total, "total_tokens": total},
	})
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string    `json:"model"`
		Messages []Message `json:"messages"`
		Stream   bool      `json:"stream"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "We could not parse the JSON body of your request.")
		return
	}
	s.record(Request{Path: r.URL.Path, Authorization: r.Header.Get("Authorization"), Traceparent: r.Header.Get("Traceparent"),
		Model: req.Model, Messages: req.Messages, Stream: req.Stream})
	if req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "'messages' and 'model' are required")
		return
	}
	reply := "According to [1], this is the answer."
	if s.Reply != nil {
		reply = s.Reply(req.Messages)
	}
	id, created := "chatcmpl-test", time.Now().Unix()
	if !req.Stream {
		writeJSON(w, map[string]any{
			"id": id, "object": "chat.completion", "created": created, "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0, "message": map[string]any{"role": "assistant", "content": reply}, "finish_reason": "stop",
			}},
			"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	flusher, _ := w.(http.Flusher)
	chunk := func(delta map[string]any, finish any) {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		fmt.Fprintf(w, "data: %s\n\n", b)
		if flusher != nil {
			flusher.Flush()
		}
	}
	chunk(map[string]any{"role": "assistant", "content": ""}, nil)
	for i, piece := range strings.SplitAfter(reply, " ") {
		chunk(map[string]any{"content": piece}, nil)
		if i == 0 && s.Hold != nil {
			select {
			case <-s.Hold:
			case <-r.Context().Done():
				return
			case <-s.closing:
				return
			}
		}
		if s.StreamError != "" {
			b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": s.StreamError, "type": "server_error", "code": nil}})
			fmt.Fprintf(w, "data: %s\n\n", b)
			return
		}
	}
	chunk(map[string]any{}, "stop")
	fmt.Fprint(w, "data: [DONE]\n\n")
}

// Embed is the server's embedding of text: words and their three-letter pieces hashed
// into dims buckets, L2-normalised.
func Embed(text string, dims int) []float32 {
	v := make([]float32, dims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsNumber(r)
	}) {
		add := func(s string, weight float32) {
			h := fnv.New32a()
			h.Write([]byte(s))
			v[h.Sum32()%uint32(dims)] += weight
		}
		add(w, 1)
		rs := []rune(w)
		for i := 0; i+3 <= len(rs); i++ {
			add(string(rs[i:i+3]), 0.3)
		}
	}
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 {
		v[0] = 1
		return v
	}
	norm := float32(math.Sqrt(sum))
	for i := range v {
		v[i] /= norm
	}
	return v
}

// tokens estimates OpenAI's token count: about four bytes each, at least one per word.
func tokens(s string) int {
	return max((len(s)+3)/4, len(strings.Fields(s)))
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var c any
	if code != "" {
		c = code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c},
	})
}
