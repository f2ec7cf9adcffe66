package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/telemetry"
)

// The overall status /health/detailed reports.
const (
	statusHealthy   = "healthy"   // every configured dependency answers
	statusDegraded  = "degraded"  // one with a fallback does not (Redis, Pinecone, OpenAI, SMTP, Stripe)
	statusUnhealthy = "unhealthy" // PostgreSQL does not: nothing works without it
)

// The status of one dependency.
const (
	depOK            = "ok"
	depDown          = "down"
	depNotConfigured = "not_configured"
)

// probeTimeout bounds each live probe; they run at once, so the report takes at
// most about this long whatever is down.
const probeTimeout = 2 * time.Second

// dependencyReport is one dependency's line in /health/detailed.
type dependencyReport struct {
	Status string `json:"status"`
	// LatencyMS is the live probe's time, in milliseconds.
	LatencyMS *float64 `json:"latency_ms"`
	// Error is why the live probe failed, when it did.
	Error string `json:"error,omitempty"`
	// LastError is the last failure of real traffic (or of a probe), kept in memory.
	LastError *telemetry.Failure `json:"last_error"`
	// Details adds what is particular to the dependency (the pool's figures).
	Details map[string]any `json:"details,omitempty"`
}

// probe is a dependency's live check; nil when it is not configured.
type probe func(ctx context.Context) error

// probes returns the live check of each dependency.
func (s *Server) probes() map[string]probe {
	p := map[string]probe{telemetry.Postgres: s.pool.Ping}
	if s.redis != nil {
		p[telemetry.Redis] = func(ctx context.Context) error { return s.redis.Ping(ctx).Err() }
	}
	if pinger, ok := s.retrieval.Index().(interface{ Ping(context.Context) error }); ok {
		p[telemetry.Pinecone] = pinger.Ping
	}
	if s.cfg.OpenAI.APIKey != "" {
		p[telemetry.OpenAI] = s.openai.Ping
	}
	if s.cfg.SMTPURL != "" {
		p[telemetry.SMTP] = func(ctx context.Context) error { return probeSMTP(ctx, s.cfg.SMTPURL) }
	}
	if s.cfg.Stripe.Enabled() {
		p[telemetry.Stripe] = s.billing.Ping
	}
	return p
}

// detailed reports the replica's state to operators holding ADMIN_TOKEN (without
// one configured the route does not exist): an overall status, with HTTP 503 when
// it is unhealthy so that a probe can act on the code alone, memory, CPU,
// connections, and each dependency's live probe and last failure.
func (s *Server) detailed(c echo.Context) error {
	want := "Bearer " + s.cfg.AdminToken
	if s.cfg.AdminToken == "" || subtle.ConstantTimeCompare([]byte(c.Request().Header.Get("Authorization")), []byte(want)) != 1 {
		return echo.ErrNotFound
	}
	deps := s.checkDependencies(c.Request().Context())
	status := statusHealthy
	for name, d := range deps {
		switch {
		case d.Status != depDown:
		case name == telemetry.Postgres:
			status = statusUnhealthy
		case status == statusHealthy:
			status = statusDegraded
		}
	}
	st := s.pool.Stat()
	deps[telemetry.Postgres].Details = map[string]any{
		"total_conns": st.TotalConns(), "idle_conns": st.IdleConns(), "acquired_conns": st.AcquiredConns(),
		"max_conns": st.MaxConns(), "acquire_count": st.AcquireCount(),
	}
	if d := deps[telemetry.Redis]; d.Status != depNotConfigured {
		d.Details = map[string]any{"rate_limits": s.rateLimitMode()}
	}
	code := http.StatusOK
	if status == statusUnhealthy {
		code = http.StatusServiceUnavailable
		c.Response().Header().Set("Retry-After", "5")
	}
	return c.JSON(code, map[string]any{
		"status":             status,
		"draining":           s.draining.Load(),
		"uptime_seconds":     int(time.Since(s.started).Seconds()),
		"go":                 runtime.Version(),
		"goroutines":         runtime.NumGoroutine(),
		"cpus":               runtime.GOMAXPROCS(0),
		"memory_usage":       memoryUsage(),
		"cpu_usage":          s.cpu.Usage(),
		"active_connections": s.http.ActiveConnections(),
		"dependencies":       deps,
		"rate_limits":        s.rateLimitMode(),
	})
}

// checkDependencies probes every configured dependency at once, each within
// probeTimeout.
func (s *Server) checkDependencies(ctx context.Context) map[string]*dependencyReport {
	probes := s.probes()
	out := make(map[string]*dependencyReport, len(telemetry.Dependencies))
	var wg sync.WaitGroup // each probe writes only its own report
	for _, name := range telemetry.Dependencies {
		d := &dependencyReport{Status: depNotConfigured}
		if f, ok := s.tel.LastFailure(name); ok {
			d.LastError = &f
		}
		out[name] = d
		p := probes[name]
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pctx, cancel := context.WithTimeout(ctx, probeTimeout)
			defer cancel()
			start := time.Now()
			err := p(pctx)
			ms := float64(time.Since(start).Microseconds()) / 1000
			d.LatencyMS = &ms
			d.Status = depOK
			if err != nil {
				d.Status = depDown
				d.Error = probeError(err)
				// The probe's own failure is the latest one known.
				s.tel.Fail(name, errors.New(d.Error))
				if f, ok := s.tel.LastFailure(name); ok {
					d.LastError = &f
				}
			}
		}()
	}
	wg.Wait()
	return out
}

// probeError is a probe's failure as shown to operators: a timeout says so.
func probeError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("no answer within %s", probeTimeout)
	}
	msg := err.Error()
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}

// probeSMTP connects to the SMTP server and reads its greeting: enough to know it
// takes mail, without logging in or sending anything.
func probeSMTP(ctx context.Context, smtpURL string) error {
	u, err := url.Parse(smtpURL)
	if err != nil {
		return errors.New("SMTP_URL is not a URL")
	}
	port := u.Port()
	if port == "" {
		port = map[bool]string{true: "465", false: "587"}[u.Scheme == "smtps"]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	if u.Scheme == "smtps" {
		return nil // the greeting comes after a TLS handshake; the connection is enough
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("no greeting: %w", err)
	}
	if !strings.HasPrefix(line, "220") {
		return fmt.Errorf("greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// memoryUsage reports the Go heap, what the runtime holds from the system, the
// resident set (Linux) and the soft limit (GOMEMLIMIT) it steers by.
func memoryUsage() map[string]any {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	out := map[string]any{
		"heap_alloc_bytes": m.HeapAlloc, "heap_inuse_bytes": m.HeapInuse, "sys_bytes": m.Sys, "gc_cycles": m.NumGC,
	}
	if rss, ok := residentBytes(); ok {
		out["rss_bytes"] = rss
	}
	if limit := debug.SetMemoryLimit(-1); limit != 1<<63-1 {
		out["limit_bytes"] = limit
	}
	return out
}

// residentBytes reads the process's resident set from /proc (Linux only).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}
