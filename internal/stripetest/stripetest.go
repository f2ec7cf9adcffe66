// Package stripetest runs Stripe's own stripe-mock for tests and records what
// Cairn sends it (stripe-mock itself keeps no state).
package stripetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/testbin"
)

// Start runs Stripe's own stripe-mock on free loopback ports and returns
// its HTTP base URL.
func Start(t testing.TB) string {
	t.Helper()
	bin := testbin.Find(t, "stripe-mock", "make stripe-mock, or go install github.com/stripe/stripe-mock@v0.203.0")
	cmd := exec.Command(bin, "-http-addr", "127.0.0.1:", "-https-addr", "127.0.0.1:")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start stripe-mock: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "Listening for HTTP at address: "); ok {
				addr <- a
			}
		}
	}()
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("stripe-mock did not start listening within 30s")
	}
	return ""
}

// Call is one request stripe-go made to the Stripe API, and its answer.
type Call struct {
	Method, Path   string
	IdempotencyKey string
	Form           url.Values
	Response       map[string]any
}

// Recorder sits between Cairn and stripe-mock and records every call, so tests
// can check what was sent (stripe-mock itself keeps no state).
type Recorder struct {
	URL   string
	mu    sync.Mutex
	calls []Call
	// rewrite, when set, may change a JSON answer before Cairn sees it, for states
	// stripe-mock's fixtures never take (a paid invoice, say).
	rewrite func(method, path string, body map[string]any)
	// down makes every call fail with 500, as an outage would.
	down bool
}

// Rewrite sets a function that may change stripe-mock's JSON answers.
func (r *Recorder) Rewrite(fn func(method, path string, body map[string]any)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rewrite = fn
}

// SetDown makes Stripe fail every call (true) or answer again (false).
func (r *Recorder) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.down = down
}

// NewRecorder starts a proxy in front of target (stripe-mock's URL) that records
// every call; its URL is the API base to configure.
func NewRecorder(t testing.TB, target string) *Recorder {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	r := &Recorder{}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		call := resp.Request.Context().Value(callKey{}).(*Call)
		_ = json.Unmarshal(body, &call.Response)
		r.mu.Lock()
		rewrite := r.rewrite
		r.calls = append(r.calls, *call)
		r.mu.Unlock()
		if rewrite != nil && call.Response != nil {
			rewrite(call.Method, call.Path, call.Response)
			if body, err = json.Marshal(call.Response); err != nil {
				return err
			}
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		form, _ := url.ParseQuery(string(body))
		if req.Method == http.MethodGet {
			form = req.URL.Query()
		}
		call := &Call{Method: req.Method, Path: req.URL.Path, IdempotencyKey: req.Header.Get("Idempotency-Key"), Form: form}
		r.mu.Lock()
		down := r.down
		if down {
			r.calls = append(r.calls, *call)
		}
		r.mu.Unlock()
		if down {
			http.Error(w, `{"error":{"type":"api_error","message":"down for the test"}}`, http.StatusInternalServerError)
			return
		}
		proxy.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), callKey{}, call)))
	}))
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

type callKey struct{}

// Calls returns the recorded calls to method and path.
func (r *Recorder) Calls(method, path string) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Call
	for _, c := range r.calls {
		if c.Method == method && c.Path == path {
			out = append(out, c)
		}
	}
	return out
}
