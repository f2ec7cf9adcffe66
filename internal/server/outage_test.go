package server_test

import (
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func TestDatabaseOutageIs503WithRetryAfter(t *testing.T) {
	proxy := dbtest.NewProxy(t, dbtest.New(t))
	inst := servertest.StartOn(t, proxy.URL(), nil)
	acct := inst.NewAccount(t, plan.Pro)
	if resp := inst.Do(t, "GET", "/v1/documents", acct.Key, ""); resp.StatusCode != 200 {
		t.Fatalf("before the outage: %d %s", resp.StatusCode, servertest.ReadBody(t, resp))
	}

	proxy.Cut()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/documents", ""},
		{"POST", "/v1/documents", `{"documents":[{"id":"a","text":"kept for later"}]}`},
		{"POST", "/v1/search", `{"query":"anything"}`},
		{"GET", "/v1/usage", ""},
	} {
		resp := inst.Do(t, tc.method, tc.path, acct.Key, tc.body)
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, `"unavailable"`) {
			t.Errorf("%s %s with the database down: %d Retry-After %q %s; want 503 unavailable with Retry-After",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "dial") {
			t.Errorf("%s %s leaks connection details: %s", tc.method, tc.path, body)
		}
	}
	resp := inst.Do(t, "GET", "/readyz", "", "")
	if resp.StatusCode != 503 {
		t.Errorf("/readyz with the database down: %d, want 503", resp.StatusCode)
	}
	resp.Body.Close()
	// The dashboard says the same in HTML.
	b := inst.NewBrowser(t)
	if code, _ := b.Get("/login"); code != 503 {
		t.Errorf("GET /login with the database down: %d, want 503", code)
	}
}
