// Package metering enforces what a workspace's plan allows on the API's hot path
// and records what it used: GCRA rate limits per key and per IP (in process or in
// Redis), exact monthly quotas in PostgreSQL, usage events written in batches with
// daily roll-ups, and the emails sent when a quota runs low.
package metering

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Deps are what the Service needs.
type Deps struct {
	Pool  *pgxpool.Pool
	Plans plan.Table
	Log   *slog.Logger
	Redis *redis.Client // nil: rate limits in process
	// Outbox sends the quota emails, queued with the request that crosses a
	// threshold; nil sends none (tests of other parts).
	Outbox  *mail.Outbox
	BaseURL string
	// Registerer receives the metering metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Documents counts a workspace's stored documents for /v1/usage and the
	// overview; nil reports 0.
	Documents DocumentCounter
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service meters the API. Create it with New and register its workers (RunFlusher,
// RunJanitor) and its NOTIFY subscriptions (Subscribe).
type Service struct {
	pool    *pgxpool.Pool
	q       *dbq.Queries
	plans   plan.Table
	log     *slog.Logger
	outbox  *mail.Outbox
	baseURL string
	now     func() time.Time

	documents DocumentCounter
	limiter   *Limiter
	quota     quotas
	notices   notices
	events    chan Event
	copyBuf   []byte // the flusher's COPY buffer, reused across batches

	quotaRejections prometheus.Counter
	eventsWritten   prometheus.Counter
	bufferWaits     prometheus.Counter
	flushErrors     prometheus.Counter
	quotaDecisions  *prometheus.CounterVec
	rateDecisions   *prometheus.CounterVec
}

// New returns a Service.
func New(d Deps) *Service {
	s := &Service{
		pool: d.Pool, q: dbq.New(d.Pool), plans: d.Plans, log: d.Log, outbox: d.Outbox,
		baseURL: d.BaseURL, now: d.Now, documents: d.Documents,
		limiter: NewLimiter(d.Redis, d.Log, d.Registerer),
		quota:   quotas{exhausted: map[uuid.UUID]exhaustion{}},
		notices: notices{seen: map[noticeKey]bool{}},
		events:  make(chan Event, usageBuffer),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.outbox != nil {
		s.outbox.Register(tmplQuotaNotice, s.composeNotice)
	}
	s.quotaRejections = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_quota_rejections_total", Help: "Billable requests refused because the monthly quota was used up.",
	})
	s.eventsWritten = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_usage_events_written_total", Help: "Usage events written to PostgreSQL.",
	})
	s.bufferWaits = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_usage_buffer_full_total", Help: "Requests that waited because the usage buffer was full.",
	})
	s.flushErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_usage_flush_errors_total", Help: "Usage batches that failed to write and were kept for a retry.",
	})
	s.quotaDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_quota_decisions_total",
		Help: "Monthly quota decisions on billable requests, by plan and decision (allowed, exceeded, error: the quota store could not be reached).",
	}, []string{"plan", "decision"})
	s.rateDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_ratelimit_decisions_total",
		Help: "Rate-limit decisions on API and dashboard requests, by scope, plan (anonymous: no valid key) and decision (allowed, rejected).",
	}, []string{"scope", "plan", "decision"})
	if d.Registerer != nil {
		d.Registerer.MustRegister(s.quotaRejections, s.eventsWritten, s.bufferWaits, s.flushErrors, s.quotaDecisions, s.rateDecisions)
		d.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "cairn_usage_buffer_events", Help: "Usage events waiting to be written.",
		}, func() float64 { return float64(len(s.events)) }))
	}
	return s
}

// Subscribe makes plan changes and quota refunds made on any replica reach this
// one's memory of exhausted workspaces.
func (s *Service) Subscribe(l *db.Listener) {
	forget := func(payload string) {
		if id, err := uuid.Parse(payload); err == nil {
			s.forget(id)
		}
	}
	l.Subscribe(workspace.ChannelChanged, forget, s.forgetAll)
	l.Subscribe(ChannelQuota, forget, nil)
}

// AllowKey takes one request from an API key's per-minute budget under plan p.
func (s *Service) AllowKey(ctx context.Context, keyID uuid.UUID, p plan.ID) Decision {
	return s.decided(ScopeKey, string(p), s.limiter.Allow(ctx, Subject{Scope: ScopeKey, ID: keyID}, PerMinute(s.plans.Get(p).Limits.RatePerMinute)))
}

// decided counts a rate-limit decision under its scope and plan.
func (s *Service) decided(scope Scope, p string, d Decision) Decision {
	decision := "rejected"
	if d.Allowed {
		decision = "allowed"
	}
	s.rateDecisions.WithLabelValues(scope.String(), p, decision).Inc()
	return d
}

// AllowIP takes one request from the daily budget of an IP (its /64 for IPv6, see
// ClientKey) calling /v1 without a valid key. The figure is the plan table's IPPerDay (the same on every plan).
func (s *Service) AllowIP(ctx context.Context, ip string) Decision {
	return s.decided(ScopeIP, "anonymous", s.limiter.Allow(ctx, Subject{Scope: ScopeIP, Name: ClientKey(ip)}, PerDay(s.plans.Get(plan.Free).Limits.IPPerDay)))
}

// ClientKey is what a per-address limit counts a client address as: an IPv4
// address as it is, an IPv6 address as its /64. One subscriber is routinely given a
// whole /64, so counting single IPv6 addresses would let a client rotate through
// 2^64 of them.
func ClientKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, _ := addr.WithZone("").Prefix(64)
	return p.String()
}

// AllowDashboardSearch takes one search from the workspace's dashboard budget: the
// plan's per-minute rate, as for one key, so a session cookie is no unmetered way
// around the API's limits.
func (s *Service) AllowDashboardSearch(ctx context.Context, workspaceID uuid.UUID, p plan.ID) Decision {
	return s.decided(ScopeDashboardSearch, string(p), s.limiter.Allow(ctx, Subject{Scope: ScopeDashboardSearch, ID: workspaceID}, PerMinute(s.plans.Get(p).Limits.RatePerMinute)))
}

// AllowActivate takes one device sign-in code lookup or decision from the person's
// budget (ActivateLimit).
func (s *Service) AllowActivate(ctx context.Context, userID uuid.UUID) Decision {
	return s.limiter.Allow(ctx, Subject{Scope: ScopeActivate, ID: userID}, ActivateLimit)
}

// AllowForm takes one submission of the log-in, sign-up or forgot-password form
// (scope ScopeLogin, ScopeSignup or ScopePasswordReset) from ip's budget (its /64 for IPv6, see ClientKey).
func (s *Service) AllowForm(ctx context.Context, scope Scope, ip string) Decision {
	limit := LoginLimit
	if scope == ScopeSignup || scope == ScopePasswordReset {
		limit = SignupLimit
	}
	return s.limiter.Allow(ctx, Subject{Scope: scope, Name: ClientKey(ip)}, limit)
}

// RunJanitor forgets expired rate-limit budgets, exhaustions and notice marks
// every minute until ctx ends, keeping memory bounded by recent activity.
func (s *Service) RunJanitor(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			now := s.now()
			s.limiter.local.sweep(time.Now())
			start, _ := Period(now)
			s.quota.mu.Lock()
			for id, ex := range s.quota.exhausted {
				if !now.Before(ex.periodEnd) {
					delete(s.quota.exhausted, id)
				}
			}
			s.quota.mu.Unlock()
			s.notices.mu.Lock()
			for k := range s.notices.seen {
				if k.period.Before(start) {
					delete(s.notices.seen, k)
				}
			}
			s.notices.mu.Unlock()
		}
	}
}

// RedisDown reports whether rate limits are currently decided in process because
// Redis failed.
func (s *Service) RedisDown() bool { return s.limiter.RedisDown() }
