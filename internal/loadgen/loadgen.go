// Package loadgen drives HTTP load at one URL from a fixed number of connections
// and reports throughput and latency percentiles. cmd/cairn-load wraps it; it is a
// benchmark tool, never part of the test suite's assertions.
package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options describe one load run.
type Options struct {
	URL         string
	Method      string // GET when empty
	Header      http.Header
	Body        []byte
	Concurrency int           // connections, each with one request in flight
	Duration    time.Duration // how long to send
	// Rate, when positive, is an open-loop schedule in requests per second over
	// all connections: each connection sends at its own fixed interval, and a
	// request's latency counts from when it was due, not from when a late
	// connection got round to it, so a stalled server shows in the percentiles
	// instead of hiding (coordinated omission). Zero sends as fast as answers come.
	Rate float64
}

// Result is what one run measured.
type Result struct {
	URL        string         `json:"url"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"` // transport errors (no response)
	Statuses   map[int]int    `json:"statuses"`
	Elapsed    time.Duration  `json:"elapsed_ns"`
	RPS        float64        `json:"requests_per_second"`
	Latency    Percentiles    `json:"latency"`
	FirstError string         `json:"first_error,omitempty"`
	Extra      map[string]any `json:"extra,omitempty"`
}

// Percentiles of request latency.
type Percentiles struct {
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
}

// OK returns how many responses had a 2xx status.
func (r Result) OK() int {
	n := 0
	for s, c := range r.Statuses {
		if s >= 200 && s < 300 {
			n += c
		}
	}
	return n
}

// String renders the result on a few lines for people.
func (r Result) String() string {
	var codes []string
	keys := make([]int, 0, len(r.Statuses))
	for s := range r.Statuses {
		keys = append(keys, s)
	}
	sort.Ints(keys)
	for _, s := range keys {
		codes = append(codes, fmt.Sprintf("%d×%d", s, r.Statuses[s]))
	}
	out := fmt.Sprintf("%s\n  %d requests in %s: %.0f req/s; statuses %s; transport errors %d\n  latency p50 %s  p90 %s  p99 %s  max %s",
		r.URL, r.Requests, r.Elapsed.Round(time.Millisecond), r.RPS, strings.Join(codes, " "), r.Errors,
		round(r.Latency.P50), round(r.Latency.P90), round(r.Latency.P99), round(r.Latency.Max))
	if r.FirstError != "" {
		out += "\n  first error: " + r.FirstError
	}
	return out
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond)
	case d >= 100*time.Microsecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// Run sends requests from opts.Concurrency workers, each on its own kept-alive
// connection, until opts.Duration has passed or ctx ends.
func Run(ctx context.Context, opts Options) (Result, error) {
	if opts.Concurrency < 1 {
		return Result{}, fmt.Errorf("loadgen: concurrency must be at least 1")
	}
	if opts.Duration <= 0 {
		return Result{}, fmt.Errorf("loadgen: duration must be positive")
	}
	method := opts.Method
	if method == "" {
		method = http.MethodGet
	}
	if _, err := http.NewRequest(method, opts.URL, nil); err != nil {
		return Result{}, fmt.Errorf("loadgen: %w", err)
	}
	tr := &http.Transport{
		MaxIdleConns:        opts.Concurrency,
		MaxIdleConnsPerHost: opts.Concurrency,
		MaxConnsPerHost:     opts.Concurrency,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}

	ctx, cancel := context.WithTimeout(ctx, opts.Duration)
	defer cancel()
	type worker struct {
		lat      []time.Duration
		statuses map[int]int
		errors   int
		firstErr error
	}
	workers := make([]*worker, opts.Concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	var interval time.Duration
	if opts.Rate > 0 {
		interval = time.Duration(float64(opts.Concurrency) / opts.Rate * float64(time.Second))
	}
	for i := range workers {
		w := &worker{statuses: map[int]int{}, lat: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the connections' schedules evenly over one interval.
			due := start.Add(interval * time.Duration(i) / time.Duration(opts.Concurrency))
			for ctx.Err() == nil {
				if interval > 0 {
					if wait := time.Until(due); wait > 0 {
						select {
						case <-ctx.Done():
							return
						case <-time.After(wait):
						}
					}
				}
				req, _ := http.NewRequestWithContext(ctx, method, opts.URL, bytes.NewReader(opts.Body))
				for k, v := range opts.Header {
					req.Header[k] = v
				}
				t0 := time.Now()
				if interval > 0 {
					t0 = due
					due = due.Add(interval)
				}
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				if ctx.Err() != nil {
					return // a request cut off by the end of the run does not count
				}
				if err != nil {
					w.errors++
					if w.firstErr == nil {
						w.firstErr = err
					}
					continue
				}
				w.statuses[resp.StatusCode]++
				w.lat = append(w.lat, d)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	r := Result{URL: opts.URL, Statuses: map[int]int{}, Elapsed: elapsed}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		r.Errors += w.errors
		for s, n := range w.statuses {
			r.Statuses[s] += n
		}
		if r.FirstError == "" && w.firstErr != nil {
			r.FirstError = w.firstErr.Error()
		}
	}
	r.Requests = len(all)
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	slices.Sort(all)
	r.Latency = Percentiles{P50: pct(all, 50), P90: pct(all, 90), P99: pct(all, 99)}
	if len(all) > 0 {
		r.Latency.Max = all[len(all)-1]
	}
	return r, nil
}

// pct returns the p-th percentile of sorted (nearest rank).
func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p+99)/100 - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
