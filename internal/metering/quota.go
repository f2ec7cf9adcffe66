package metering

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
)

// ChannelQuota is the NOTIFY channel whose payload is a workspace id whose quota
// counter went back below its limit (a refund), so replicas forget it was exhausted.
const ChannelQuota = "cairn_quota_changed"

// Period returns the calendar month (UTC) containing t: [start, end).
func Period(t time.Time) (start, end time.Time) {
	t = t.UTC()
	start = time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	return start, start.AddDate(0, 1, 0)
}

// Reservation is one billable request counted against a finite quota; Refund gives
// it back. The zero Reservation (unlimited plans) counts nothing.
type Reservation struct {
	workspaceID uuid.UUID
	period      time.Time
	limit       int64
}

// Counted reports whether the reservation touched a quota counter.
func (r Reservation) Counted() bool { return r.limit > 0 }

// exhaustion remembers that a workspace used up its quota for a period.
type exhaustion struct {
	periodEnd time.Time
	limit     int64
}

// quotas is the monthly-quota part of the Service.
type quotas struct {
	mu        sync.RWMutex
	exhausted map[uuid.UUID]exhaustion
	// gen counts invalidations, so a consume that raced with a plan change does not
	// remember an exhaustion computed under the old plan.
	gen atomic.Uint64
}

// Consume counts one billable request of workspace ws whose plan allows limit per
// month. Unlimited plans return at once without touching the database. It returns
// quota_exceeded (Retry-After = seconds to the next period) when the quota is used
// up, and unavailable when the database cannot be reached.
func (s *Service) Consume(ctx context.Context, ws uuid.UUID, limit int64) (Reservation, error) {
	if limit == plan.Unlimited {
		return Reservation{}, nil
	}
	now := s.now()
	start, end := Period(now)
	if limit <= 0 {
		return Reservation{}, s.exceeded(limit, now, end)
	}
	s.quota.mu.RLock()
	ex, ok := s.quota.exhausted[ws]
	s.quota.mu.RUnlock()
	if ok && ex.limit == limit && now.Before(ex.periodEnd) {
		return Reservation{}, s.exceeded(limit, now, end)
	}
	gen := s.quota.gen.Load()
	used, err := s.q.QuotaConsume(ctx, dbq.QuotaConsumeParams{WorkspaceID: ws, Period: start, Lim: limit})
	exhausted := errors.Is(err, pgx.ErrNoRows)
	if exhausted {
		// Used up (perhaps under a higher limit before a downgrade): the notices of a
		// full quota are due if nobody claimed them.
		used, err = limit, nil
	}
	if err != nil {
		return Reservation{}, apperr.Unavailablef(fmt.Errorf("metering: consume quota: %w", err), 5, "The service is temporarily unavailable; retry shortly.")
	}
	// The count is one statement; only a request that crosses a threshold opens a
	// transaction, to claim the notice and queue its email together. While a
	// notice is unclaimed (its transaction failed), exhaustion is not remembered,
	// so a later request asks the database again and claims it.
	if s.queueNotices(ctx, ws, start, used, limit) && used >= limit {
		// Used up, or this request took the last unit: the next ones need not ask the
		// database.
		s.remember(ws, gen, exhaustion{periodEnd: end, limit: limit})
	}
	if exhausted {
		return Reservation{}, s.exceeded(limit, now, end)
	}
	return Reservation{workspaceID: ws, period: start, limit: limit}, nil
}

func (s *Service) remember(ws uuid.UUID, gen uint64, ex exhaustion) {
	s.quota.mu.Lock()
	if s.quota.gen.Load() == gen {
		s.quota.exhausted[ws] = ex
	}
	s.quota.mu.Unlock()
}

// forget drops what this replica remembers about ws's quota (plan changed, refund).
func (s *Service) forget(ws uuid.UUID) {
	s.quota.mu.Lock()
	s.quota.gen.Add(1)
	delete(s.quota.exhausted, ws)
	s.quota.mu.Unlock()
}

// forgetAll drops every remembered exhaustion (the NOTIFY connection was lost).
func (s *Service) forgetAll() {
	s.quota.mu.Lock()
	s.quota.gen.Add(1)
	clear(s.quota.exhausted)
	s.quota.mu.Unlock()
}

func (s *Service) exceeded(limit int64, now, end time.Time) error {
	s.quotaRejections.Inc()
	retry := int(math.Ceil(end.Sub(now).Seconds()))
	return &apperr.Error{
		Code:       apperr.QuotaExceeded,
		RetryAfter: max(retry, 1),
		Message: fmt.Sprintf("This workspace has used its %s billable requests for this month; the quota resets on %s. Upgrade the plan for more.",
			plan.Format(limit), end.Format("2 January 2006 (UTC)")),
	}
}

// Refund gives back the unit counted by r, for a request that failed. When the
// counter was at its limit, every replica is told to stop refusing the workspace.
func (s *Service) Refund(ctx context.Context, r Reservation) error {
	if !r.Counted() {
		return nil
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		used, err := q.QuotaRefund(ctx, dbq.QuotaRefundParams{WorkspaceID: r.workspaceID, Period: r.period})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if used+1 >= r.limit {
			return q.Notify(ctx, dbq.NotifyParams{Channel: ChannelQuota, Payload: r.workspaceID.String()})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("metering: refund quota: %w", err)
	}
	s.forget(r.workspaceID)
	return nil
}

// RequestsUsed returns the billable requests ws made in the period containing now:
// the exact counter for finite plans, the usage roll-up (up to a second behind) for
// unlimited ones, which keep no counter.
func (s *Service) RequestsUsed(ctx context.Context, ws uuid.UUID, limit int64, now time.Time) (int64, error) {
	start, end := Period(now)
	var used int64
	var err error
	if limit == plan.Unlimited {
		used, err = s.q.UsageBillable(ctx, dbq.UsageBillableParams{WorkspaceID: ws, Since: start, Until: end})
	} else {
		used, err = s.q.QuotaUsed(ctx, dbq.QuotaUsedParams{WorkspaceID: ws, Period: start})
	}
	if err != nil {
		return 0, fmt.Errorf("metering: requests used: %w", err)
	}
	return used, nil
}

// Charge is one billable request's claim on its workspace's monthly quota. The
// request takes it once it has passed every cheap check and before any expensive
// step, and settles it when it ends: a request that did not succeed gets its unit
// back, so only work that was done and delivered is billed. A Charge belongs to
// one request and is not safe for concurrent use.
type Charge struct {
	s     *Service
	ws    uuid.UUID
	plan  plan.ID
	limit int64

	taken   bool
	err     error
	res     Reservation
	settled bool
}

// NewCharge returns the charge of one billable request of workspace ws, whose
// plan p allows limit requests a month. Nothing is counted until Take.
func (s *Service) NewCharge(ws uuid.UUID, p plan.ID, limit int64) *Charge {
	return &Charge{s: s, ws: ws, plan: p, limit: limit}
}

// Take counts the request against the quota (see Consume for the errors). Only the
// first call counts; later ones return its outcome.
func (c *Charge) Take(ctx context.Context) error {
	if !c.taken {
		c.taken = true
		c.res, c.err = c.s.Consume(ctx, c.ws, c.limit)
		decision := "allowed"
		switch {
		case apperr.Is(c.err, apperr.QuotaExceeded):
			decision = "exceeded"
		case c.err != nil:
			decision = "error"
		}
		c.s.quotaDecisions.WithLabelValues(string(c.plan), decision).Inc()
	}
	return c.err
}

// Counted reports whether Take counted a unit that Settle has not given back.
func (c *Charge) Counted() bool { return c.taken && c.err == nil && c.res.Counted() && !c.settled }

// Settle ends the charge: when the request did not succeed, the unit Take counted
// is given back, exactly once. It runs even when the caller has gone away.
func (c *Charge) Settle(ctx context.Context, succeeded bool) error {
	if c.settled {
		return nil
	}
	counted := c.Counted()
	c.settled = true
	if succeeded || !counted {
		return nil
	}
	return c.s.Refund(context.WithoutCancel(ctx), c.res)
}
