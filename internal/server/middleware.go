package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/reqctx"
)

// requestID echoes a well-formed incoming X-Request-ID or makes a new one, and puts
// it on the response, the context and the request's logger.
func requestID(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Request().Header.Get(echo.HeaderXRequestID)
			if !validRequestID(id) {
				var b [12]byte
				_, _ = rand.Read(b[:])
				id = hex.EncodeToString(b[:])
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			reqctx.SetRequestID(c, id)
			return next(c)
		}
	}
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// accessLog writes one JSON line per request after it is served.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			path := c.Path()
			if path == "" {
				path = "(no route)"
			}
			attrs := []slog.Attr{slog.String("request_id", reqctx.RequestID(c))}
			if sc := trace.SpanContextFromContext(c.Request().Context()); sc.IsValid() {
				// The line and the trace find each other.
				attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
			}
			log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request", append(attrs,
				slog.String("method", c.Request().Method),
				slog.String("route", path),
				slog.Int("status", c.Response().Status),
				slog.Int64("bytes", c.Response().Size),
				slog.Duration("latency", time.Since(start)),
			)...)
			return nil
		}
	}
}

// securityHeaders sets the headers every HTML page needs; the API gets nosniff (and
// HSTS over https) only.
func securityHeaders(https bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Content-Type-Options", "nosniff")
			if https {
				// Served over https (BASE_URL): browsers must never fall back to http,
				// where the session cookie and forms could be read or changed.
				h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
			}
			if !isAPIPath(c.Request().URL.Path) {
				h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self' https://checkout.stripe.com https://billing.stripe.com")
				h.Set("X-Frame-Options", "DENY")
				h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
				h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
			}
			return next(c)
		}
	}
}

// isAPIPath reports whether a path answers in JSON rather than HTML.
func isAPIPath(p string) bool {
	return strings.HasPrefix(p, "/v1/") || p == "/v1" || strings.HasPrefix(p, "/webhooks/") ||
		p == "/healthz" || p == "/readyz" || p == "/health/detailed" || p == "/metrics"
}
