package loadgen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunCountsStatusesAndSendsHeaders(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("Authorization") != "Bearer k" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	r, err := Run(context.Background(), Options{
		URL: srv.URL, Method: http.MethodPost, Header: http.Header{"Authorization": {"Bearer k"}},
		// Long enough that a loaded machine still completes requests; nothing here is timed.
		Concurrency: 4, Duration: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Statuses[http.StatusTeapot] != r.Requests || r.Errors != 0 {
		t.Fatalf("result %+v: want every request answered 418", r)
	}
	if int64(r.Requests) > served.Load() {
		t.Fatalf("counted %d requests, server saw %d", r.Requests, served.Load())
	}
	if r.Latency.P50 <= 0 || r.Latency.P50 > r.Latency.P99 || r.Latency.P99 > r.Latency.Max {
		t.Fatalf("percentiles out of order: %+v", r.Latency)
	}
	if r.OK() != 0 {
		t.Fatalf("OK() = %d for 418s", r.OK())
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{
		{URL: "http://x", Concurrency: 0, Duration: time.Second},
		{URL: "http://x", Concurrency: 1},
		{URL: "::bad", Concurrency: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), o); err == nil {
			t.Fatalf("Run(%+v) succeeded", o)
		}
	}
}

func TestPct(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	if pct(s, 50) != 5 || pct(s, 90) != 9 || pct(s, 99) != 10 || pct(nil, 50) != 0 {
		t.Fatalf("pct wrong: %v %v %v", pct(s, 50), pct(s, 90), pct(s, 99))
	}
}

// TestRateCapsTheSchedule checks the open loop never sends ahead of its schedule:
// at 50 requests per second for 300 ms, at most one interval's worth per
// connection beyond 15 can go out, however fast the server answers.
func TestRateCapsTheSchedule(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	r, err := Run(context.Background(), Options{URL: srv.URL, Concurrency: 5, Duration: 300 * time.Millisecond, Rate: 50})
	if err != nil {
		t.Fatal(err)
	}
	if n := served.Load(); n > 15+5 || r.Requests == 0 {
		t.Fatalf("the server saw %d requests (counted %d), want at most 20 at 50/s for 0.3 s", n, r.Requests)
	}
}
