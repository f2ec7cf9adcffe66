package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/reqctx"
)

func TestErrorHandlerHidesInternalErrors(t *testing.T) {
	var logs strings.Builder
	s := &Server{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	e := echo.New()
	cause := errors.New("pq: password authentication failed for user secretuser at 10.0.0.5")
	for _, path := range []string{"/v1/me", "/dashboard"} {
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodGet, path, nil), rec)
		reqctx.SetRequestID(c, "rid-1")
		s.errorHandler(cause, c)
		body := rec.Body.String()
		if rec.Code != 500 || strings.Contains(body, "secretuser") || strings.Contains(body, "10.0.0.5") || !strings.Contains(body, "Internal error.") {
			t.Fatalf("%s: %d %s; want a bare 500", path, rec.Code, body)
		}
	}
	if !strings.Contains(logs.String(), "secretuser") || !strings.Contains(logs.String(), "rid-1") {
		t.Fatalf("the cause and request id must reach the log: %s", logs.String())
	}
}

func TestErrorHandlerShapes(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	for _, tc := range []struct {
		err        error
		status     int
		want       string
		retryAfter string
	}{
		{apperr.Field("top_k", "must be 1 to 50"), 400, `{"error":{"code":"invalid_request","message":"top_k: must be 1 to 50","request_id":"r"}}`, ""},
		{apperr.New(apperr.Unauthorized, "No."), 401, `"code":"unauthorized"`, ""},
		{&apperr.Error{Code: apperr.RateLimited, Message: "Slow down.", RetryAfter: 7}, 429, `"code":"rate_limited"`, "7"},
		{apperr.Unavailablef(errors.New("dial tcp: refused"), 5, "Retry shortly."), 503, `"message":"Retry shortly."`, "5"},
		{echo.ErrNotFound, 404, `"code":"not_found"`, ""},
		{echo.ErrMethodNotAllowed, 400, `"code":"invalid_request"`, ""},
		{echo.NewHTTPError(http.StatusRequestEntityTooLarge), 413, `"code":"payload_too_large"`, ""},
	} {
		rec := httptest.NewRecorder()
		c := e.NewContext(httptest.NewRequest(http.MethodPost, "/v1/search", nil), rec)
		reqctx.SetRequestID(c, "r")
		s.errorHandler(tc.err, c)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) || rec.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d %s (Retry-After %q); want %d with %s (Retry-After %q)", tc.err, rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"), tc.status, tc.want, tc.retryAfter)
		}
		if strings.Contains(rec.Body.String(), "dial tcp") {
			t.Errorf("%v: cause leaked", tc.err)
		}
	}
}
