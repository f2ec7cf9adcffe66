package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

// TestPanicIsAGeneric500 mounts panicking routes on a real replica's echo instance
// (only a test can add them) and checks the recover middleware and error handler
// answer as for any internal error: JSON with the request id for /v1, the HTML
// error page for the dashboard, the panic itself only in the log.
func TestPanicIsAGeneric500(t *testing.T) {
	vars := map[string]string{"DATABASE_URL": dbtest.New(t), "BASE_URL": "http://127.0.0.1:1"}
	cfg, err := config.Load(func(k string) string { return vars[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder // ServeHTTP runs on this goroutine
	s, err := New(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	boom := func(echo.Context) error { panic("secret detail 10.0.0.5") }
	s.echo.GET("/v1/panics", boom)
	s.echo.GET("/dashboard/panics", boom)

	t.Run("APIAnswersJSONWithRequestID", func(t *testing.T) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/v1/panics", nil)
		req.Header.Set(echo.HeaderXRequestID, "panic-rid-1")
		s.echo.ServeHTTP(rec, req)
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("not JSON: %d %s", rec.Code, rec.Body.String())
		}
		if rec.Code != 500 || body.Error.Code != apperr.Internal || body.Error.Message != "Internal error." || body.Error.RequestID != "panic-rid-1" {
			t.Fatalf("%d %s; want a generic 500 carrying the request id", rec.Code, rec.Body.String())
		}
	})
	t.Run("DashboardAnswersTheHTMLErrorPage", func(t *testing.T) {
		rec := httptest.NewRecorder()
		s.echo.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dashboard/panics", nil))
		if rec.Code != 500 || !strings.HasPrefix(rec.Header().Get(echo.HeaderContentType), "text/html") || !strings.Contains(rec.Body.String(), "<html") {
			t.Fatalf("%d %q %s; want the HTML error page", rec.Code, rec.Header().Get(echo.HeaderContentType), rec.Body.String())
		}
		if strings.Contains(rec.Body.String(), "secret detail") {
			t.Fatalf("the panic value reached the page")
		}
	})
	if !strings.Contains(logs.String(), "secret detail") || !strings.Contains(logs.String(), "panic-rid-1") {
		t.Fatalf("the panic and its request id must reach the log: %s", logs.String())
	}
}
