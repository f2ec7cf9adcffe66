package metering

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/apperr"
)

// Scope says what a rate limit is counted per.
type Scope uint8

// The scopes Cairn limits.
const (
	ScopeKey             Scope = iota + 1 // an API key, at its plan's per-minute rate
	ScopeIP                               // an IP calling /v1 without a valid key
	ScopeLogin                            // an IP posting the log-in form
	ScopeSignup                           // an IP posting the sign-up form
	ScopeDashboardSearch                  // a workspace searching from the dashboard, at its plan's per-minute rate
	ScopeActivate                         // a signed-in person looking up or deciding device sign-in codes
	ScopePasswordReset                    // an IP asking for password reset links
)

var scopeNames = [...]string{ScopeKey: "key", ScopeIP: "ip", ScopeLogin: "login", ScopeSignup: "signup", ScopeDashboardSearch: "dashboard_search", ScopeActivate: "activate", ScopePasswordReset: "password_reset"}

func (s Scope) String() string { return scopeNames[s] }

// Subject is what one rate-limit budget belongs to: a key (ID) or an IP (Name).
// It is a comparable value so the in-process table can use it as a map key without
// building a string per request.
type Subject struct {
	Scope Scope
	ID    uuid.UUID
	Name  string
}

// Limit is a GCRA limit: Rate events per Period with bursts of up to Burst.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
	// Window names the period in the RateLimit headers ("minute", "day").
	Window string
}

// PerMinute is the plan limit for API keys: n per minute, bursts of n.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: n, Window: "minute"} }

// PerDay is n per day with bursts of n.
func PerDay(n int) Limit { return Limit{Rate: n, Period: 24 * time.Hour, Burst: n, Window: "day"} }

// Limits on the dashboard's unauthenticated forms, per IP. Log-in failures are also
// throttled per email by the auth package; these stop floods from one address.
// Sign-ups allow a burst of 30, then one a minute: room for an office behind one
// NAT, slow for a script farming free workspaces.
var (
	LoginLimit  = PerMinute(30)
	SignupLimit = Limit{Rate: 60, Period: time.Hour, Burst: 30, Window: "hour"}
	// ActivateLimit bounds how many device sign-in pages (a code looked up or
	// decided) one person may load: 30 at once, 60 an hour. Plenty for typos and
	// several devices, far too few to find someone else's waiting code among 20^8.
	ActivateLimit = Limit{Rate: 60, Period: time.Hour, Burst: 30, Window: "hour"}
)

// Decision is the outcome of one rate-limit check.
type Decision struct {
	Allowed    bool
	Limit      Limit
	Remaining  int
	RetryAfter time.Duration // until the next request may pass; 0 when allowed
	ResetAfter time.Duration // until the budget is full again
}

// Wait is how many whole seconds a refused caller should wait: RetryAfter rounded
// up, and at least 1, so a refusal always says when to come back.
func (d Decision) Wait() int {
	return max(int(math.Ceil(d.RetryAfter.Seconds())), 1)
}

// Refuse turns a refused decision into the rate_limited error its caller sees,
// with Retry-After set to Wait. The API and the dashboard word msg their own way.
func (d Decision) Refuse(msg string) *apperr.Error {
	return &apperr.Error{Code: apperr.RateLimited, Message: msg, RetryAfter: d.Wait()}
}

// Limiter applies GCRA rate limits: in process, or in Redis when one is configured
// so that every replica draws from one budget. When Redis fails it falls back to
// the in-process table, logs the outage once, counts every fallback decision and
// keeps serving; it tries Redis again after a short pause.
type Limiter struct {
	local *localLimiter
	redis *redis_rate.Limiter
	log   *slog.Logger

	fallbacks prometheus.Counter
	rejected  [len(scopeNames)]prometheus.Counter

	// downUntil (unix nanos) skips Redis after a failure so that an outage costs
	// one timeout per pause, not one per request.
	downUntil atomic.Int64
	down      atomic.Bool
}

// redisRetryPause is how long the limiter stays in process after a Redis failure.
const redisRetryPause = time.Second

// NewLimiter returns a Limiter; rdb may be nil for in-process limits only.
func NewLimiter(rdb *redis.Client, log *slog.Logger, reg prometheus.Registerer) *Limiter {
	l := &Limiter{local: newLocalLimiter(), log: log}
	if rdb != nil {
		l.redis = redis_rate.NewLimiter(rdb)
	}
	l.fallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cairn_ratelimit_redis_fallbacks_total",
		Help: "Rate-limit decisions made in process because Redis was unavailable.",
	})
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cairn_ratelimit_rejections_total",
		Help: "Requests refused by a rate limit, by scope.",
	}, []string{"scope"})
	for s := ScopeKey; int(s) < len(scopeNames); s++ {
		l.rejected[s] = rejected.WithLabelValues(s.String())
	}
	if reg != nil {
		reg.MustRegister(l.fallbacks, rejected)
	}
	return l
}

// Allow takes one event from s's budget under limit. A limit with a Rate below
// one never refuses.
func (l *Limiter) Allow(ctx context.Context, s Subject, limit Limit) Decision {
	if limit.Rate < 1 {
		return Decision{Allowed: true, Limit: limit, Remaining: -1}
	}
	var d Decision
	if l.redis != nil && time.Now().UnixNano() >= l.downUntil.Load() {
		var err error
		if d, err = l.allowRedis(ctx, s, limit); err == nil {
			if l.down.CompareAndSwap(true, false) {
				l.log.Info("ratelimit: Redis is back; limits are shared again")
			}
			return l.count(s, d)
		}
		if ctx.Err() == nil { // a caller that went away says nothing about Redis
			l.downUntil.Store(time.Now().Add(redisRetryPause).UnixNano())
			if l.down.CompareAndSwap(false, true) {
				l.log.Error("ratelimit: Redis unavailable; using in-process limits until it answers", "err", err)
			}
		}
	}
	if l.redis != nil {
		l.fallbacks.Inc()
	}
	return l.count(s, l.local.allow(s, limit, time.Now()))
}

func (l *Limiter) count(s Subject, d Decision) Decision {
	if !d.Allowed {
		l.rejected[s.Scope].Inc()
	}
	return d
}

func (l *Limiter) allowRedis(ctx context.Context, s Subject, limit Limit) (Decision, error) {
	res, err := l.redis.Allow(ctx, redisKey(s, limit), redis_rate.Limit{Rate: limit.Rate, Period: limit.Period, Burst: limit.Burst})
	if err != nil {
		return Decision{}, err
	}
	d := Decision{Allowed: res.Allowed > 0, Limit: limit, Remaining: res.Remaining, ResetAfter: max(res.ResetAfter, 0)}
	if !d.Allowed {
		d.RetryAfter = max(res.RetryAfter, 0)
	}
	return d, nil
}

// redisKey names the budget in Redis. The rate is part of it so that a plan change
// starts the key on a fresh budget at the new rate instead of inheriting a
// schedule computed for the old one.
func redisKey(s Subject, limit Limit) string {
	id := s.Name
	if s.ID != uuid.Nil { // keys and workspaces are named by id, IPs by Name
		id = s.ID.String()
	}
	return "cairn:" + s.Scope.String() + ":" + id + ":" + strconv.Itoa(limit.Rate) + "/" + limit.Window
}

// RedisDown reports whether the last Redis call failed, for health reports.
func (l *Limiter) RedisDown() bool { return l.down.Load() }

// localLimiter is GCRA over a sharded in-process table: each subject's state is its
// theoretical arrival time (TAT). Sharding keeps the lock per shard short-lived and
// uncontended under many concurrent keys.
type localLimiter struct {
	seed   maphash.Seed
	shards [64]shard
}

type shard struct {
	mu sync.Mutex
	m  map[Subject]*cell
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

type cell struct {
	tat      int64 // unix nanos
	interval int64 // the emission interval the TAT was computed with
}

func newLocalLimiter() *localLimiter {
	l := &localLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = map[Subject]*cell{}
	}
	return l
}

func (l *localLimiter) shard(s Subject) *shard {
	if s.Name == "" {
		return &l.shards[s.ID[15]%uint8(len(l.shards))]
	}
	return &l.shards[maphash.String(l.seed, s.Name)%uint64(len(l.shards))]
}

// allow is redis_rate's GCRA in Go, with the same results.
func (l *localLimiter) allow(s Subject, limit Limit, now time.Time) Decision {
	interval := int64(limit.Period) / int64(limit.Rate)
	burst := interval * int64(limit.Burst)
	t := now.UnixNano()
	sh := l.shard(s)
	sh.mu.Lock()
	c := sh.m[s]
	tat := t
	if c != nil && c.interval == interval && c.tat > t {
		tat = c.tat
	}
	newTAT := tat + interval
	diff := t - (newTAT - burst)
	if diff < 0 {
		sh.mu.Unlock()
		return Decision{Limit: limit, RetryAfter: time.Duration(-diff), ResetAfter: time.Duration(tat - t)}
	}
	if c == nil {
		c = &cell{}
		sh.m[s] = c
	}
	c.tat, c.interval = newTAT, interval
	sh.mu.Unlock()
	return Decision{Allowed: true, Limit: limit, Remaining: int(diff / interval), ResetAfter: time.Duration(newTAT - t)}
}

func (l *localLimiter) sweep(now time.Time) {
	t := now.UnixNano()
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, c := range sh.m {
			if c.tat <= t {
				delete(sh.m, k)
			}
		}
		sh.mu.Unlock()
	}
}
