package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/reqctx"
	"github.com/cairn-dev/cairn/internal/telemetry"
)

// observe measures every request by its route pattern and, when tracing is on,
// serves it inside a server span that continues the caller's W3C trace context
// and carries the request id. It runs after requestID and around accessLog, which
// turns errors into responses, so the status it sees is the one sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		method := methodLabel(req.Method)
		s.http.Begin()
		var span trace.Span
		if s.tel.Tracing() {
			id := reqctx.RequestID(c)
			ctx := telemetry.WithRequestID(telemetry.Extract(req.Context(), req.Header), id)
			ctx, span = s.tel.Tracer().Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(
					attribute.String("http.request.method", method),
					attribute.String("url.path", req.URL.Path),
					attribute.String("request_id", id),
				))
			c.SetRequest(req.WithContext(ctx))
			// The caller learns the trace its request joined.
			telemetry.Inject(ctx, c.Response().Header())
		}
		defer func() {
			route := c.Path()
			if route == "" {
				route = "(no route)"
			}
			status := c.Response().Status
			s.http.Observe(route, method, status, time.Since(start))
			if span != nil {
				span.SetName(method + " " + route)
				span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
				if status >= 500 {
					span.SetStatus(codes.Error, http.StatusText(status))
				}
				span.End()
			}
		}()
		return next(c)
	}
}

// methodLabel keeps the method label to the methods HTTP defines: a client can
// send any word there, and each would be a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// listenMetrics opens the metrics listener (METRICS_ADDR); nil when it is off.
func (s *Server) listenMetrics() (net.Listener, error) {
	if s.cfg.MetricsAddr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", s.cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("server: METRICS_ADDR: listen on %s: %w", s.cfg.MetricsAddr, err)
	}
	s.metricsAddr.Store(ln.Addr().String())
	return ln, nil
}

// serveMetrics serves GET /metrics on ln until stop is called: apart from the
// public listener, so that only what can reach METRICS_ADDR can scrape.
func (s *Server) serveMetrics(ln net.Listener) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("metrics listener stopped", "err", err)
		}
	}()
	s.log.Info("metrics listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}
}

// MetricsAddr returns the address /metrics is served on once Serve runs, or ""
// when METRICS_ADDR is off.
func (s *Server) MetricsAddr() string {
	a, _ := s.metricsAddr.Load().(string)
	return a
}

// observedMailer records each email sent over SMTP as a call to SMTP.
type observedMailer struct {
	mail.Mailer
	tel *telemetry.Telemetry
}

// Send sends m as one call.
func (m observedMailer) Send(ctx context.Context, msg mail.Message) error {
	ctx, end := m.tel.Call(ctx, telemetry.SMTP, "send")
	err := m.Mailer.Send(ctx, msg)
	end(err)
	return err
}
