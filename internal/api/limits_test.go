package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBodyLimitAndContentType checks the /v1 middleware in front of every handler:
// bodies over 10 MiB get 413 and non-JSON bodies 415, both in the error shape and
// with the key's RateLimit fields, as every /v1 response.
func TestBodyLimitAndContentType(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	var header http.Header
	post := func(contentType string, body []byte) (int, apiError) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, inst.URL+"/v1/search", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+acct.Key)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e apiError
		_ = json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &e)
		header = resp.Header
		return resp.StatusCode, e
	}
	over := append([]byte(`{"query":"`), bytes.Repeat([]byte("a"), 10<<20)...)
	over = append(over, `"}`...)
	for _, tc := range []struct {
		name        string
		contentType string
		body        []byte
		status      int
		code        string
	}{
		{"OverTenMiB", "application/json", over, 413, "payload_too_large"},
		{"TextPlain", "text/plain", []byte(`{"query":"x"}`), 415, "unsupported_media_type"},
		{"NoContentType", "", []byte(`{"query":"x"}`), 415, "unsupported_media_type"},
		{"FormEncoded", "application/x-www-form-urlencoded", []byte(`query=x`), 415, "unsupported_media_type"},
		{"MalformedJSON", "application/json", []byte(`{"query":`), 400, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, e := post(tc.contentType, tc.body)
			if status != tc.status || e.Error.Code != tc.code || e.Error.Message == "" || e.Error.RequestID == "" {
				t.Fatalf("status %d, error %+v; want %d %s", status, e.Error, tc.status, tc.code)
			}
			if p := header.Get("RateLimit-Policy"); !strings.HasPrefix(p, `"minute";q=`) || header.Get("RateLimit") == "" {
				t.Fatalf("RateLimit-Policy %q, RateLimit %q; want the key's per-minute fields", p, header.Get("RateLimit"))
			}
		})
	}
	t.Run("JSONWithCharsetAccepted", func(t *testing.T) {
		status, e := post("application/json; charset=utf-8", []byte(`{"query":"anything"}`))
		if status != http.StatusOK {
			t.Fatalf("status %d %+v", status, e)
		}
	})
	t.Run("TooLargeNamesTheLimit", func(t *testing.T) {
		_, e := post("application/json", over)
		if !strings.Contains(e.Error.Message, "10 MiB") {
			t.Fatalf("message %q does not name the limit", e.Error.Message)
		}
	})
}
