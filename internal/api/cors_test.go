package api_test

import (
	"net/http"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func TestCORS(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CORS_ORIGINS": "https://app.example.com"})
	acct := inst.NewAccount(t, plan.Free)
	for _, tc := range []struct {
		name, origin string
		allowed      bool
	}{
		{"ChromeExtension", "chrome-extension://abcdefghijklmnopabcdefghijklmnop", true},
		{"FirefoxExtension", "moz-extension://4b2a1c3e-0000-4000-8000-000000000000", true},
		{"SafariExtension", "safari-web-extension://ABCD-1234", true},
		{"ListedOrigin", "https://app.example.com", true},
		{"OtherWebsite", "https://evil.example.com", false},
		{"LookAlike", "https://app.example.com.evil.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, inst.URL+"/v1/me", nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "GET")
			req.Header.Set("Access-Control-Request-Headers", "authorization")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if tc.allowed && (got != tc.origin || resp.StatusCode >= 300) {
				t.Fatalf("preflight from %s: %d, Allow-Origin %q", tc.origin, resp.StatusCode, got)
			}
			if !tc.allowed && got != "" {
				t.Fatalf("preflight from %s allowed (%q)", tc.origin, got)
			}

			status, h, _ := get(t, inst, "/v1/me", map[string]string{"Origin": tc.origin, "Authorization": "Bearer " + acct.Key})
			if status != 200 {
				t.Fatalf("GET with Origin: %d", status)
			}
			if got := h.Get("Access-Control-Allow-Origin"); (got == tc.origin) != tc.allowed {
				t.Fatalf("GET from %s: Allow-Origin %q", tc.origin, got)
			}
			if tc.allowed && h.Get("Access-Control-Expose-Headers") == "" {
				t.Fatalf("X-Request-ID and rate-limit headers are not exposed to the extension")
			}
		})
	}
}
