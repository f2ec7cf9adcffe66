package metering

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/redistest"
)

// testRedisDB keeps this package's keys out of the shared Redis's default database.
const testRedisDB = 11

func sharedRedis(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DB: testRedisDB})
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis is not reachable on 127.0.0.1:6379 (make redis): %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLocalGCRA(t *testing.T) {
	l := newLocalLimiter()
	s := Subject{Scope: ScopeKey, ID: uuid.New()}
	limit := PerMinute(5)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i, want := range []int{4, 3, 2, 1, 0} {
		d := l.allow(s, limit, t0)
		if !d.Allowed || d.Remaining != want {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, d, want)
		}
	}
	d := l.allow(s, limit, t0)
	if d.Allowed || d.RetryAfter != 12*time.Second || d.ResetAfter != time.Minute {
		t.Fatalf("6th request: %+v, want refused, retry after 12s, full again after 60s", d)
	}
	t.Run("OneMoreAfterTheEmissionInterval", func(t *testing.T) {
		if d := l.allow(s, limit, t0.Add(12*time.Second)); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("after 12s: %+v, want one allowed", d)
		}
	})
	t.Run("OtherSubjectsHaveTheirOwnBudget", func(t *testing.T) {
		if d := l.allow(Subject{Scope: ScopeKey, ID: uuid.New()}, limit, t0); !d.Allowed || d.Remaining != 4 {
			t.Fatalf("another key: %+v", d)
		}
		if d := l.allow(Subject{Scope: ScopeIP, Name: "192.0.2.1"}, limit, t0); !d.Allowed {
			t.Fatalf("an IP: %+v", d)
		}
	})
	t.Run("ANewRateStartsAFreshBudget", func(t *testing.T) {
		if d := l.allow(s, PerMinute(120), t0.Add(13*time.Second)); !d.Allowed || d.Remaining != 119 {
			t.Fatalf("after a plan change to 120/min: %+v, want 119 remaining", d)
		}
	})
	t.Run("SweepForgetsFullBudgets", func(t *testing.T) {
		l.sweep(t0.Add(time.Hour))
		for i := range l.shards {
			if n := len(l.shards[i].m); n != 0 {
				t.Fatalf("shard %d holds %d budgets after they refilled", i, n)
			}
		}
	})
}

// eightCalls makes 8 quick calls against a 5/minute limit through allow and
// reports how many passed and whether every refusal said when to retry.
func eightCalls(t *testing.T, allow func() Decision) (passed int) {
	t.Helper()
	for i := 0; i < 8; i++ {
		d := allow()
		if d.Allowed {
			passed++
		} else if d.RetryAfter <= 0 {
			t.Errorf("call %d refused without a retry time: %+v", i+1, d)
		}
	}
	return passed
}

func TestLimiter(t *testing.T) {
	log := slog.New(slog.DiscardHandler)

	t.Run("InProcess", func(t *testing.T) {
		l := NewLimiter(nil, log, nil)
		s := Subject{Scope: ScopeKey, ID: uuid.New()}
		if got := eightCalls(t, func() Decision { return l.Allow(context.Background(), s, PerMinute(5)) }); got != 5 {
			t.Fatalf("%d of 8 passed, want 5", got)
		}
	})

	t.Run("RedisBudgetIsSharedByReplicas", func(t *testing.T) {
		rdb := sharedRedis(t)
		a, b := NewLimiter(rdb, log, nil), NewLimiter(redis.NewClient(rdb.Options()), log, nil)
		s := Subject{Scope: ScopeKey, ID: uuid.New()}
		i := 0
		got := eightCalls(t, func() Decision {
			i++
			return []*Limiter{a, b}[i%2].Allow(context.Background(), s, PerMinute(5))
		})
		if got != 5 {
			t.Fatalf("%d of 8 calls over two replicas passed, want 5", got)
		}
		if a.RedisDown() || b.RedisDown() {
			t.Fatal("limiter reports Redis down")
		}
	})

	t.Run("RedisBudgetsOfTwoWorkspacesAreSeparate", func(t *testing.T) {
		l := NewLimiter(sharedRedis(t), log, nil)
		a, b := Subject{Scope: ScopeDashboardSearch, ID: uuid.New()}, Subject{Scope: ScopeDashboardSearch, ID: uuid.New()}
		for range 5 {
			l.Allow(context.Background(), a, PerMinute(5))
		}
		if d := l.Allow(context.Background(), b, PerMinute(5)); !d.Allowed || d.Remaining != 4 {
			t.Fatalf("another workspace's budget was spent by the first: %+v", d)
		}
	})

	t.Run("RedisAndInProcessAgree", func(t *testing.T) {
		rdb := sharedRedis(t)
		r, local := NewLimiter(rdb, log, nil), NewLimiter(nil, log, nil)
		s := Subject{Scope: ScopeIP, Name: "198.51.100." + uuid.NewString()[:4]}
		for i := 0; i < 7; i++ {
			dr, dl := r.Allow(context.Background(), s, PerMinute(5)), local.Allow(context.Background(), s, PerMinute(5))
			if dr.Allowed != dl.Allowed || dr.Remaining != dl.Remaining {
				t.Fatalf("call %d: Redis %+v, in process %+v", i+1, dr, dl)
			}
		}
	})

	t.Run("RedisOutageFallsBackInProcess", func(t *testing.T) {
		own := redistest.Start(t)
		opts, _ := redis.ParseURL(own.URL)
		opts.DialTimeout, opts.ReadTimeout, opts.MaxRetries = 200*time.Millisecond, 200*time.Millisecond, -1
		rdb := redis.NewClient(opts)
		t.Cleanup(func() { rdb.Close() })
		reg := prometheus.NewRegistry()
		l := NewLimiter(rdb, log, reg)
		s := Subject{Scope: ScopeKey, ID: uuid.New()}
		if d := l.Allow(context.Background(), s, PerMinute(5)); !d.Allowed || l.RedisDown() {
			t.Fatalf("with Redis up: %+v, down=%v", d, l.RedisDown())
		}
		own.Stop()
		// Concurrent callers during the outage all get an answer.
		var passed atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if l.Allow(context.Background(), s, PerMinute(5)).Allowed {
					passed.Add(1)
				}
			}()
		}
		wg.Wait()
		if !l.RedisDown() {
			t.Fatal("limiter does not report Redis down")
		}
		if got := passed.Load(); got != 5 {
			t.Fatalf("%d of 8 passed in process during the outage, want 5 (a fresh in-process budget)", got)
		}
		if n := counterValue(l.fallbacks); n < 8 {
			t.Fatalf("cairn_ratelimit_redis_fallbacks_total = %v, want ≥ 8", n)
		}
	})
}

func BenchmarkLocalLimiter(b *testing.B) {
	l := NewLimiter(nil, slog.New(slog.DiscardHandler), nil)
	keys := make([]Subject, 1024)
	for i := range keys {
		keys[i] = Subject{Scope: ScopeKey, ID: uuid.New()}
	}
	limit := PerMinute(1 << 30)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(context.Background(), keys[i%len(keys)], limit)
			i++
		}
	})
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	_ = c.Write(&m)
	return m.GetCounter().GetValue()
}

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"203.0.113.9", "203.0.113.9"},
		{"::ffff:203.0.113.9", "203.0.113.9"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		if got := ClientKey(tc.ip); got != tc.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
