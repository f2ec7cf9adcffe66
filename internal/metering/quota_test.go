package metering

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/workspace"
)

func TestPeriod(t *testing.T) {
	for _, tc := range []struct{ at, start, end string }{
		{"2026-03-15T12:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
		{"2026-12-31T23:59:59Z", "2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{"2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		// 00:30 on 1 April in Berlin is still March in UTC.
		{"2026-04-01T00:30:00+02:00", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"},
	} {
		at, _ := time.Parse(time.RFC3339, tc.at)
		start, end := Period(at)
		if got := start.Format(time.RFC3339); got != tc.start {
			t.Errorf("Period(%s) start = %s, want %s", tc.at, got, tc.start)
		}
		if got := end.Format(time.RFC3339); got != tc.end {
			t.Errorf("Period(%s) end = %s, want %s", tc.at, got, tc.end)
		}
	}
}

func TestThresholdUnits(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		pct   int
		want  int64
	}{{100, 80, 80}, {5, 80, 4}, {50, 80, 40}, {3, 80, 3}, {1, 80, 1}, {7, 100, 7}} {
		if got := ThresholdUnits(tc.limit, tc.pct); got != tc.want {
			t.Errorf("ThresholdUnits(%d, %d) = %d, want %d", tc.limit, tc.pct, got, tc.want)
		}
	}
}

func TestConsume(t *testing.T) {
	t.Run("ExactAcrossReplicasUnderConcurrency", func(t *testing.T) {
		pool := newPool(t)
		ws := newWorkspace(t, pool)
		a, b := newReplica(t, pool, nil, nil), newReplica(t, pool, nil, nil)
		const limit, before, concurrent = 50, 10, 120
		for i := 0; i < before; i++ {
			if _, err := a.Consume(context.Background(), ws, limit); err != nil {
				t.Fatalf("consume %d: %v", i, err)
			}
		}
		var ok, exceeded atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < concurrent; i++ {
			r := []replica{a, b}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := r.Consume(context.Background(), ws, limit)
				switch {
				case err == nil:
					ok.Add(1)
				case apperr.Is(err, apperr.QuotaExceeded):
					if apperr.As(err).RetryAfter <= 0 {
						t.Errorf("quota_exceeded without Retry-After")
					}
					exceeded.Add(1)
				default:
					t.Errorf("consume: %v", err)
				}
			}()
		}
		wg.Wait()
		if got, want := ok.Load(), int64(limit-before); got != want {
			t.Errorf("%d requests succeeded, want %d", got, want)
		}
		if got, want := exceeded.Load(), int64(concurrent-(limit-before)); got != want {
			t.Errorf("%d requests got quota_exceeded, want %d", got, want)
		}
		used, err := b.RequestsUsed(context.Background(), ws, limit, time.Now())
		if err != nil || used != limit {
			t.Fatalf("RequestsUsed = %d, %v; want %d", used, err, limit)
		}
	})

	t.Run("RetryAfterIsSecondsToTheReset", func(t *testing.T) {
		pool := newPool(t)
		ws := newWorkspace(t, pool)
		clk := &clock{t: time.Date(2026, 3, 31, 23, 59, 30, 0, time.UTC)}
		r := newReplica(t, pool, clk.now, nil)
		if _, err := r.Consume(context.Background(), ws, 1); err != nil {
			t.Fatal(err)
		}
		_, err := r.Consume(context.Background(), ws, 1)
		if e := apperr.As(err); e == nil || e.Code != apperr.QuotaExceeded || e.RetryAfter != 30 {
			t.Fatalf("second consume: %v, want quota_exceeded with Retry-After 30", err)
		}
		// A new month starts a new counter.
		clk.set(time.Date(2026, 4, 1, 0, 0, 1, 0, time.UTC))
		if _, err := r.Consume(context.Background(), ws, 1); err != nil {
			t.Fatalf("first consume in April: %v", err)
		}
	})

	t.Run("UnlimitedNeverTouchesTheDatabase", func(t *testing.T) {
		pool := newPool(t)
		r := newReplica(t, pool, nil, nil)
		ws := newWorkspace(t, pool)
		pool.Close() // any query would now fail
		res, err := r.Consume(context.Background(), ws, plan.Unlimited)
		if err != nil || res.Counted() {
			t.Fatalf("Consume(unlimited) = %+v, %v; want nothing counted, no error", res, err)
		}
		if err := r.Refund(context.Background(), res); err != nil {
			t.Fatalf("Refund(uncounted) = %v", err)
		}
	})

	t.Run("ExhaustionRememberedUntilThePlanChanges", func(t *testing.T) {
		pool := newPool(t)
		ws := newWorkspace(t, pool)
		r := newReplica(t, pool, nil, nil)
		ctx := context.Background()
		for i := 0; i < 3; i++ {
			if _, err := r.Consume(ctx, ws, 3); err != nil {
				t.Fatal(err)
			}
		}
		// Reset the counter behind the replica's back: it must keep refusing from
		// memory, proving it no longer asks the database.
		if _, err := pool.Exec(ctx, "UPDATE quota_counters SET used = 0 WHERE workspace_id = $1", ws); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Consume(ctx, ws, 3); !apperr.Is(err, apperr.QuotaExceeded) {
			t.Fatalf("consume after exhaustion = %v, want quota_exceeded from memory", err)
		}
		// A plan change is announced to every replica, which forgets what it
		// remembered and asks the database again.
		ws2 := workspace.NewService(pool, plan.Default())
		if err := ws2.SetPlan(ctx, ws, plan.Pro, nil, "test"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the replica to forget the exhaustion", func() bool {
			_, err := r.Consume(ctx, ws, 3)
			return err == nil
		})
	})

	t.Run("RefundAtTheLimitReopensEveryReplica", func(t *testing.T) {
		pool := newPool(t)
		ws := newWorkspace(t, pool)
		a, b := newReplica(t, pool, nil, nil), newReplica(t, pool, nil, nil)
		ctx := context.Background()
		var last Reservation
		for i := 0; i < 2; i++ {
			res, err := a.Consume(ctx, ws, 2)
			if err != nil {
				t.Fatal(err)
			}
			last = res
		}
		if _, err := b.Consume(ctx, ws, 2); !apperr.Is(err, apperr.QuotaExceeded) {
			t.Fatalf("b: %v, want quota_exceeded", err)
		}
		if err := a.Refund(ctx, last); err != nil {
			t.Fatal(err)
		}
		eventually(t, "replica b to accept again after the refund", func() bool {
			_, err := b.Consume(ctx, ws, 2)
			return err == nil
		})
		used, _ := a.RequestsUsed(ctx, ws, 2, time.Now())
		if used != 2 {
			t.Fatalf("used = %d after refund and one more request, want 2", used)
		}
	})
}

// TestQuotaNotices: two replicas count requests past 80 % and 100 % of a quota at
// once; each notice is queued as an email job exactly once per period, in the
// transaction of the request that crossed it, and sent to the owner.
func TestQuotaNotices(t *testing.T) {
	pool := newPool(t)
	ws := newWorkspace(t, pool)
	outbox, rec := mailtest.Outbox(t, pool)
	clk := &clock{t: time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)}
	a, b := newReplicaWith(t, pool, clk.now, nil, outbox), newReplicaWith(t, pool, clk.now, nil, outbox)
	ctx := context.Background()
	queued := func() int { return noticesQueued(t, pool, ws) }
	sent := func(want int) []mail.Message {
		t.Helper()
		eventually(t, fmt.Sprintf("%d quota emails", want), func() bool { return len(rec.Messages()) >= want })
		return rec.Messages()
	}
	const limit = 10
	var wg sync.WaitGroup
	for i := 0; i < 14; i++ { // both replicas cross 80 % and 100 %, and go past
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = []replica{a, b}[i%2].Consume(ctx, ws, limit)
		}()
	}
	wg.Wait()
	if n := queued(); n != 2 {
		t.Fatalf("%d quota emails queued, want one at 80 %% and one at 100 %%", n)
	}
	var saw80, saw100 bool
	for _, m := range sent(2) {
		saw80 = saw80 || strings.Contains(m.Subject, "used 80%")
		saw100 = saw100 || strings.Contains(m.Subject, "used all")
		if len(m.To) != 1 || !strings.HasPrefix(m.To[0], "owner-") || !strings.Contains(m.Text, "/dashboard/usage") {
			t.Errorf("email %+v: want the owner as the one recipient and a link to the usage page", m)
		}
	}
	if !saw80 || !saw100 {
		t.Fatalf("subjects %v, want an 80 %% and a 100 %% notice", rec.Messages())
	}

	t.Run("NotAgainInThePeriod", func(t *testing.T) {
		// Dropping back under the limit and crossing it again queues nothing new, even
		// on a replica that forgot what it had seen.
		q := dbq.New(pool)
		start, _ := Period(clk.now())
		if _, err := q.QuotaRefund(ctx, dbq.QuotaRefundParams{WorkspaceID: ws, Period: start}); err != nil {
			t.Fatal(err)
		}
		a.forgetAll()
		a.notices.mu.Lock()
		clear(a.notices.seen)
		a.notices.mu.Unlock()
		if _, err := a.Consume(ctx, ws, limit); err != nil {
			t.Fatal(err)
		}
		if n := queued(); n != 2 {
			t.Fatalf("%d quota emails queued, want still 2", n)
		}
	})

	t.Run("AgainNextPeriod", func(t *testing.T) {
		clk.set(time.Date(2026, 6, 1, 0, 0, 5, 0, time.UTC))
		for i := 0; i < limit; i++ {
			if _, err := b.Consume(ctx, ws, limit); err != nil {
				t.Fatal(err)
			}
		}
		if n := queued(); n != 4 {
			t.Fatalf("%d quota emails queued in total, want 4 after crossing both thresholds in June", n)
		}
		sent(4)
	})
}

// noticesQueued counts the quota emails queued for ws.
func noticesQueued(t *testing.T, pool *pgxpool.Pool, ws uuid.UUID) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'mail.send'
		AND args->>'template' = 'metering.quota_notice' AND args->'data'->>'workspace_id' = $1`, ws.String()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQuotaNoticeRetried: a notice whose claim fails does not fail the request
// that crossed the threshold (its count stands), and the next request past the
// threshold claims it; an exhaustion is not remembered while its notice is
// unclaimed, so the request after it still asks the database and claims it.
func TestQuotaNoticeRetried(t *testing.T) {
	pool := newPool(t)
	ws := newWorkspace(t, pool)
	outbox, _ := mailtest.Outbox(t, pool)
	r := newReplicaWith(t, pool, nil, nil, outbox)
	ctx := context.Background()
	claims := func(on bool) {
		t.Helper()
		from, to := "quota_notices", "quota_notices_away"
		if on {
			from, to = to, from
		}
		if _, err := pool.Exec(ctx, "ALTER TABLE "+from+" RENAME TO "+to); err != nil {
			t.Fatal(err)
		}
	}
	const limit = 10
	for range 7 {
		if _, err := r.Consume(ctx, ws, limit); err != nil {
			t.Fatal(err)
		}
	}
	claims(false)
	if _, err := r.Consume(ctx, ws, limit); err != nil { // the 8th: 80 %
		t.Fatalf("consume crossing 80 %% while claims fail: %v, want counted", err)
	}
	if n := noticesQueued(t, pool, ws); n != 0 {
		t.Fatalf("%d notices queued while claims fail", n)
	}
	claims(true)
	if _, err := r.Consume(ctx, ws, limit); err != nil { // the 9th
		t.Fatal(err)
	}
	if n := noticesQueued(t, pool, ws); n != 1 {
		t.Fatalf("%d notices queued after the next request, want the 80 %% one", n)
	}

	claims(false)
	if _, err := r.Consume(ctx, ws, limit); err != nil { // the 10th: 100 %
		t.Fatal(err)
	}
	claims(true)
	if _, err := r.Consume(ctx, ws, limit); !apperr.Is(err, apperr.QuotaExceeded) {
		t.Fatalf("11th consume: %v, want quota_exceeded", err)
	}
	if n := noticesQueued(t, pool, ws); n != 2 {
		t.Fatalf("%d notices queued, want the 100 %% one claimed by the request after the failure too", n)
	}
	if n, err := r.RequestsUsed(ctx, ws, limit, time.Now()); err != nil || n != limit {
		t.Fatalf("used = %d, %v; want %d: a request whose notice failed is still counted", n, err, limit)
	}
}

func TestCharge(t *testing.T) {
	ctx := context.Background()
	pool := newPool(t)
	r := newReplica(t, pool, nil, nil)
	used := func(t *testing.T, ws uuid.UUID) int64 {
		t.Helper()
		n, err := r.RequestsUsed(ctx, ws, 10, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	t.Run("NothingIsCountedUntilTaken", func(t *testing.T) {
		ws := newWorkspace(t, pool)
		if err := r.NewCharge(ws, plan.Free, 10).Settle(ctx, false); err != nil {
			t.Fatal(err)
		}
		if n := used(t, ws); n != 0 {
			t.Fatalf("used = %d, want 0", n)
		}
	})
	t.Run("TakenOnceHoweverOftenAsked", func(t *testing.T) {
		ws := newWorkspace(t, pool)
		ch := r.NewCharge(ws, plan.Free, 10)
		for range 3 {
			if err := ch.Take(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := ch.Settle(ctx, true); err != nil {
			t.Fatal(err)
		}
		if n := used(t, ws); n != 1 {
			t.Fatalf("used = %d, want 1", n)
		}
	})
	t.Run("AFailedRequestIsRefundedExactlyOnce", func(t *testing.T) {
		ws := newWorkspace(t, pool)
		if err := r.NewCharge(ws, plan.Free, 10).Take(ctx); err != nil { // another request, kept
			t.Fatal(err)
		}
		ch := r.NewCharge(ws, plan.Free, 10)
		if err := ch.Take(ctx); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := ch.Settle(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		if n := used(t, ws); n != 1 {
			t.Fatalf("used = %d, want 1 (the kept request only)", n)
		}
	})
	t.Run("ARefusedTakeRefundsNothing", func(t *testing.T) {
		ws := newWorkspace(t, pool)
		if err := r.NewCharge(ws, plan.Free, 1).Take(ctx); err != nil {
			t.Fatal(err)
		}
		ch := r.NewCharge(ws, plan.Free, 1)
		if err := ch.Take(ctx); !apperr.Is(err, apperr.QuotaExceeded) {
			t.Fatalf("second take = %v, want quota_exceeded", err)
		}
		if err := ch.Settle(ctx, false); err != nil {
			t.Fatal(err)
		}
		if n := used(t, ws); n != 1 {
			t.Fatalf("used = %d, want 1", n)
		}
	})
}

// BenchmarkConsume counts billable requests of one workspace on a finite plan far
// from its limit: what a Free-plan billable request pays for its quota (one
// statement, the conditional upsert; a notice's claim and email, in a
// transaction, only when a threshold is crossed).
//
//	go test -run '^$' -bench BenchmarkConsume ./internal/metering/
func BenchmarkConsume(b *testing.B) {
	pool := newPool(b)
	ws := newWorkspace(b, pool)
	outbox, _ := mailtest.Outbox(b, pool)
	r := newReplicaWith(b, pool, nil, nil, outbox)
	ctx := context.Background()
	for b.Loop() {
		if _, err := r.Consume(ctx, ws, 1<<40); err != nil {
			b.Fatal(err)
		}
	}
}
