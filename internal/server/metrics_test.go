package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func TestMetricsOnTheirOwnListener(t *testing.T) {
	inst := servertest.Start(t, nil)

	t.Run("NotOnThePublicListener", func(t *testing.T) {
		resp, err := http.Get(inst.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(body, "go_goroutines") {
			t.Fatalf("GET /metrics on the public listener: %d %.200s; want 404", resp.StatusCode, body)
		}
	})

	t.Run("RequestsByRoutePattern", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Free)
		me := map[string]string{"route": "/v1/me", "method": "GET", "status": "200"}
		before := inst.Scrape(t)
		for range 3 {
			servertest.ReadBody(t, inst.Do(t, "GET", "/v1/me", acct.Key, ""))
		}
		servertest.ReadBody(t, inst.Do(t, "GET", "/v1/documents/raw-id-never-a-label", acct.Key, ""))
		servertest.ReadBody(t, inst.Do(t, "GET", "/no-such-page-raw-path", "", ""))
		servertest.ReadBody(t, inst.Do(t, "GET", "/v1/no-such-route-raw-path", acct.Key, ""))
		servertest.ReadBody(t, inst.Do(t, "POST", "/v1/search", acct.Key, `{"query":"anything"}`))
		after := inst.Scrape(t)
		if got, want := after.Value("cairn_http_requests_total", me)-before.Value("cairn_http_requests_total", me), 3.0; got != want {
			t.Errorf("cairn_http_requests_total{route=/v1/me,GET,200} rose by %v, want %v", got, want)
		}
		if got := after.Value("cairn_http_request_duration_seconds", map[string]string{"route": "/v1/me", "method": "GET"}); got < 3 {
			t.Errorf("latency histogram of /v1/me has %v observations, want at least 3", got)
		}
		if got := after.Value("cairn_http_requests_total", map[string]string{"route": "/v1/documents/:id", "status": "404"}); got != 1 {
			t.Errorf("GET /v1/documents/:id 404 counted %v times, want 1", got)
		}
		if raw := inst.Metrics(t); strings.Contains(raw, "raw-id-never-a-label") || strings.Contains(raw, "raw-path") {
			t.Errorf("a raw path became a label")
		}
		if got := after.Value("cairn_quota_decisions_total", map[string]string{"plan": "free", "decision": "allowed"}); got != 1 {
			t.Errorf("quota decisions of the free plan: %v, want 1 (the search)", got)
		}
		if got := after.Value("cairn_ratelimit_decisions_total", map[string]string{"scope": "key", "plan": "free", "decision": "allowed"}); got < 5 {
			t.Errorf("rate-limit decisions allowed for the free plan: %v, want at least 5", got)
		}
		if got := after.Value("cairn_db_pool_max_connections", nil); got < 1 {
			t.Errorf("cairn_db_pool_max_connections = %v", got)
		}
		if got := after.Value("cairn_db_pool_acquires_total", nil); got <= before.Value("cairn_db_pool_acquires_total", nil) {
			t.Errorf("cairn_db_pool_acquires_total did not rise with traffic: %v", got)
		}
		if _, ok := after["cairn_usage_buffer_events"]; !ok {
			t.Errorf("no cairn_usage_buffer_events gauge")
		}
	})

	t.Run("ActiveConnections", func(t *testing.T) {
		// A connection held open by this client is counted while it lasts.
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		resp, err := c.Get(inst.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		servertest.ReadBody(t, resp)
		if got := inst.Scrape(t).Value("cairn_http_active_connections", nil); got < 1 {
			t.Fatalf("cairn_http_active_connections = %v with a kept-alive connection open", got)
		}
	})

	t.Run("Off", func(t *testing.T) {
		off := servertest.Start(t, map[string]string{"METRICS_ADDR": "off"})
		if off.MetricsURL != "" || off.Server.MetricsAddr() != "" {
			t.Fatalf("METRICS_ADDR=off still serves metrics at %q", off.MetricsURL)
		}
	})
}
