// Package server wires Cairn together: it opens the database, builds the services,
// mounts the dashboard and the API on one echo instance, and runs the background
// workers that replicas need.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/cairn-dev/cairn/internal/account"
	"github.com/cairn-dev/cairn/internal/api"
	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/billing"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/device"
	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/metering"
	"github.com/cairn-dev/cairn/internal/onboarding"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/openai"
	"github.com/cairn-dev/cairn/internal/retrieval/querycache"
	"github.com/cairn-dev/cairn/internal/team"
	"github.com/cairn-dev/cairn/internal/telemetry"
	"github.com/cairn-dev/cairn/internal/web"
	"github.com/cairn-dev/cairn/internal/workspace"
	"github.com/cairn-dev/cairn/static"
)

// Server is one Cairn replica.
type Server struct {
	cfg       config.Config
	log       *slog.Logger
	pool      *pgxpool.Pool
	echo      *echo.Echo
	listener  *db.Listener
	keys      *apikey.Service
	devices   *device.Service
	retrieval *retrieval.Service
	meter     *metering.Service
	redis     *redis.Client // nil without REDIS_URL; shared by rate limits and the query cache
	registry  *prometheus.Registry
	tel       *telemetry.Telemetry
	billing   *billing.Service
	// openai answers /health/detailed's probe of the server's OpenAI key.
	openai *openai.Client
	http   *telemetry.HTTP
	cpu    *telemetry.CPU
	queue  *jobs.Queue
	outbox *mail.Outbox
	// web renders the dashboard's errors inside its frame (errors.go).
	web *web.Handler

	// workers run until Close; each flushes what it holds before returning.
	workers []func(ctx context.Context)
	// closers run after the workers stop, before the pool closes.
	closers []func()
	cancel  context.CancelFunc
	// stopTracing sends the spans still batched; nil when tracing is off.
	stopTracing func()
	wg          sync.WaitGroup
	started     time.Time

	// draining is set when the replica is told to stop: /readyz answers 503 and
	// every response closes its connection, so load balancers move away before the
	// listener closes.
	draining atomic.Bool
	// metricsAddr is the metrics listener's address once it is open.
	metricsAddr atomic.Value
}

// New opens the database (creating and migrating it), builds every service and the
// HTTP handler. It does not start background workers; Start does.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log, started: time.Now(), cpu: telemetry.NewCPU()}
	s.registry = prometheus.NewRegistry()
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	tp, err := telemetry.NewTracerProvider(cfg.Tracing)
	if err != nil {
		return nil, err
	}
	var provider trace.TracerProvider // nil: no tracing, and no cost
	if tp != nil {
		provider = tp
		s.stopTracing = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := tp.Shutdown(ctx); err != nil {
				log.Warn("tracing: spans not sent at shutdown", "err", err)
			}
		}
	}
	s.tel = telemetry.New(s.registry, provider)
	if s.stopTracing != nil {
		log.Info("tracing: spans go over OTLP/HTTP", "endpoint", config.RedactURL(cfg.Tracing.Endpoint), "service", cfg.Tracing.ServiceName)
		defer func() {
			if err != nil { // a replica that does not start sends what it traced
				s.stopTracing()
			}
		}()
	}
	s.http = s.tel.NewHTTP()
	pool, err := OpenDatabase(ctx, cfg, log, db.WithTracer(s.tel.PgxTracer()))
	if err != nil {
		return nil, err
	}
	s.pool, s.listener = pool, newListener(cfg, pool, log)
	defer func() {
		if err != nil { // a replica that does not start releases what it opened
			for _, c := range s.closers {
				c()
			}
			pool.Close()
		}
	}()
	s.tel.RegisterPool(pool)
	s.workers = append(s.workers, func(ctx context.Context) { s.cpu.Run(ctx, 5*time.Second) })

	// The job queue is built first so that services can register workers and
	// composers; Init runs once all are registered, at the end of New.
	s.queue = jobs.New(pool, log, jobs.Config{Work: true, RescueAfter: cfg.JobsRescueAfter})
	mailer, err := mail.New(cfg.SMTPURL, cfg.BaseURL, log)
	if err != nil {
		return nil, err
	}
	if cfg.SMTPURL != "" {
		mailer = observedMailer{Mailer: mailer, tel: s.tel}
	}
	s.outbox = mail.NewOutbox(pool, s.queue, mailer)

	s.keys = apikey.NewService(pool, cfg.Plans, log)
	s.keys.Subscribe(s.listener)
	s.workers = append(s.workers,
		s.listener.Run,
		func(ctx context.Context) { s.keys.RunFlusher(ctx, 2*time.Second) },
	)
	users := auth.NewService(pool, auth.WithMail(s.outbox, cfg.BaseURL))
	workspaces := workspace.NewService(pool, cfg.Plans)
	bill := billing.New(pool, cfg, log, billing.WithTelemetry(s.tel))
	s.billing = bill
	s.openai = openai.New(cfg.OpenAI, openai.WithTelemetry(s.tel))
	s.registry.MustRegister(bill.Collector())
	bill.UseQueue(s.queue)
	// Every replica sweeps; rows are claimed with SKIP LOCKED, so they never collide.
	s.workers = append(s.workers, func(ctx context.Context) { bill.RunGraceSweeper(ctx, time.Minute) })
	if err = s.openRedis(); err != nil {
		return nil, err
	}
	meter := s.newMeter(s.outbox)
	s.meter = meter

	sessions := scs.New()
	// Interval 0: no cleanup goroutine of the store's own (see housekeeping).
	sessions.Store = pgxstore.NewWithCleanupInterval(pool, 0)
	sessions.Lifetime = 30 * 24 * time.Hour
	sessions.IdleTimeout = 7 * 24 * time.Hour
	s.workers = append(s.workers, func(ctx context.Context) {
		s.housekeeping(ctx, users, sessions.IdleTimeout, sessions.Lifetime, 30*time.Minute)
	})
	sessions.Cookie.Name = "cairn_session"
	sessions.Cookie.HttpOnly = true
	sessions.Cookie.SameSite = http.SameSiteLaxMode
	sessions.Cookie.Secure = cfg.SecureCookies()
	sessions.Cookie.Persist = true
	// A session that cannot be loaded or saved (the database is down) gets the
	// dashboard's own error page, 503 when it is an outage, instead of scs's bare 500.
	sessions.ErrorFunc = func(w http.ResponseWriter, r *http.Request, err error) {
		s.errorHandler(fmt.Errorf("session: %w", err), s.echo.NewContext(r, w))
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	e.Use(s.closeWhileDraining, requestID(log), s.observe, accessLog(log), middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("panic", "err", err, "stack", string(stack))
			return err
		},
	}), securityHeaders(cfg.SecureCookies()))

	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok\n") })
	e.GET("/readyz", s.ready)
	e.GET("/health/detailed", s.detailed)
	e.GET("/static/*", echo.WrapHandler(static.Handler()))

	var closeIndex func()
	var queries retrieval.QueryCache
	if s.redis != nil {
		queries = querycache.New(s.redis, cfg.QueryCacheTTL, log, s.registry)
	}
	if s.retrieval, closeIndex, err = NewRetrieval(cfg, pool, s.queue, queries, log, s.tel); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, closeIndex)
	s.retrieval.Subscribe(s.listener)
	s.devices = device.NewService(pool, s.keys, workspaces)
	api.New(api.Deps{
		Keys: s.keys, Devices: s.devices, Meter: meter, Retrieval: s.retrieval, Plans: cfg.Plans, CORSOrigins: cfg.CORSOrigins,
		BaseURL: cfg.BaseURL, Log: log,
	}).Routes(e)
	s.web = web.New(web.Deps{
		Config: cfg, APIReference: api.OpenAPI(), Log: log, Sessions: sessions, Auth: users, Workspaces: workspaces, Keys: s.keys, Devices: s.devices, Meter: meter,
		Billing: bill, Retrieval: s.retrieval, Team: team.NewService(pool, cfg.Plans, s.outbox, cfg.BaseURL),
		AuditLog: audit.NewLog(pool), Onboarding: onboarding.NewService(pool),
		Account: account.New(account.Deps{Pool: pool, Documents: s.retrieval, Subscriptions: bill, Outbox: s.outbox, BaseURL: cfg.BaseURL}),
	})
	s.web.Routes(e)

	if err = s.queue.Init(); err != nil {
		if errors.Is(err, jobs.ErrRescueTooSoon) {
			err = fmt.Errorf("JOBS_RESCUE_AFTER: %w", err)
		}
		return nil, err
	}
	s.echo = e
	return s, nil
}

// Queue returns the replica's job queue, for tools and tests.
func (s *Server) Queue() *jobs.Queue { return s.queue }

// Outbox returns the replica's email outbox, for tools and tests.
func (s *Server) Outbox() *mail.Outbox { return s.outbox }

// Retrieval returns the replica's retrieval service, for tools and tests.
func (s *Server) Retrieval() *retrieval.Service { return s.retrieval }

// Handler returns the HTTP handler of this replica.
func (s *Server) Handler() http.Handler { return s.echo }

// Pool returns the database pool, for admin commands and tests.
func (s *Server) Pool() *pgxpool.Pool { return s.pool }

// Start runs the background workers and waits until cross-replica notifications
// are being received.
func (s *Server) Start(ctx context.Context) error {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	for _, w := range s.workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			w(wctx)
		}()
	}
	if err := s.queue.Start(wctx); err != nil {
		return err
	}
	select {
	case <-s.listener.Ready():
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("server: LISTEN did not start within 10s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the workers, letting each flush, then closes the pool.
func (s *Server) Close() {
	// Jobs stop first: a running job may still use the pool and the services.
	qctx, qcancel := context.WithTimeout(context.Background(), 10*time.Second)
	s.queue.Stop(qctx)
	qcancel()
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	for _, c := range s.closers {
		c()
	}
	s.pool.Close()
	if s.stopTracing != nil {
		s.stopTracing()
	}
}

// ListenAndServe serves on cfg.ListenAddr until ctx ends, then drains: see Serve.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("server: listen on %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, ln)
}

// shutdownTimeout bounds how long in-flight requests may take to finish once the
// listener is closed; the deployment's grace period must exceed ShutdownDrain + this.
const shutdownTimeout = 25 * time.Second

// Serve is ListenAndServe on an existing listener. When ctx ends the replica
// drains in three steps, so that no request through a load balancer fails:
//
//  1. at once, /readyz answers 503 and every response carries "Connection: close",
//     so balancers that probe take the replica out and those that pool connections
//     (nginx keepalive) open a fresh one, to whichever replica, for the next request;
//  2. it keeps serving for cfg.ShutdownDrain while they do;
//  3. it stops accepting, waits up to 25 s for in-flight requests, then flushes
//     what the workers hold (usage events, last-used times) and closes the pool.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	mln, err := s.listenMetrics()
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		if mln != nil {
			mln.Close()
		}
		return err
	}
	if mln != nil {
		defer s.serveMetrics(mln)()
	}
	srv := &http.Server{
		Handler:           s.echo,
		ConnState:         s.http.ConnState,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("cairn listening", "addr", ln.Addr().String(), "base_url", s.cfg.BaseURL)
	select {
	case err := <-errc:
		s.Close()
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	if s.cfg.ShutdownDrain > 0 {
		s.log.Info("draining: /readyz answers 503 and connections close after each response", "for", s.cfg.ShutdownDrain.String())
		time.Sleep(s.cfg.ShutdownDrain)
	}
	s.log.Info("shutting down: no new connections; finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	s.Close()
	s.log.Info("shut down")
	return err
}

// closeWhileDraining asks the client to close its connection after this response
// once the replica is draining: Go's server then closes it, and a proxy that keeps
// connections alive cannot send its next request into a connection about to shut.
func (s *Server) closeWhileDraining(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.draining.Load() {
			c.Response().Header().Set("Connection", "close")
		}
		return next(c)
	}
}

// housekeeping deletes expired sessions (and their index rows, after idle or
// lifetime), old login failures, expired emailed links and known devices,
// the old secrets of rolled keys whose grace is long over and stale device
// sign-ins, every interval.
// Every replica runs it; the deletes are idempotent, so that is harmless.
func (s *Server) housekeeping(ctx context.Context, users *auth.Service, idle, lifetime, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := dbq.New(s.pool).SessionDeleteExpired(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: delete expired sessions", "err", err)
		}
		if err := users.PruneSessions(ctx, idle, lifetime); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: prune session index", "err", err)
		}
		if err := users.PruneFailures(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: prune login failures", "err", err)
		}
		if err := users.PruneTokens(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: prune emailed links", "err", err)
		}
		if err := s.keys.PruneRolled(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: prune rolled key secrets", "err", err)
		}
		if err := s.devices.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("housekeeping: prune device sign-ins", "err", err)
		}
	}
}

func (s *Server) ready(c echo.Context) error {
	if s.draining.Load() {
		c.Response().Header().Set("Retry-After", "5")
		return c.String(http.StatusServiceUnavailable, "draining\n")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.pool.Ping(ctx); err != nil {
		c.Response().Header().Set("Retry-After", "5")
		return c.String(http.StatusServiceUnavailable, "database unreachable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}
