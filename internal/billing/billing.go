// Package billing sells plans through Stripe: it creates Checkout and Customer
// Portal sessions for the dashboard and turns Stripe's webhook events into
// workspace plans.
//
// PostgreSQL holds the last known state of every subscription (table
// subscriptions). A workspace's plan is derived from its subscriptions: the best
// plan any of them grants now. Webhook events are applied from their payload
// alone, each under the subscription's watermark (the creation time of the newest
// event applied), so duplicates and disorder cannot move a plan backwards.
//
// Grace periods: a past_due subscription keeps its plan for GracePeriod after the
// event that first reported it. The plan column is what the API reads, so the
// downgrade at the end of grace has to be written: every replica sweeps expired
// graces once a minute (RunGraceSweeper, rows claimed with SKIP LOCKED), and
// Status applies an expired grace of the workspace it reads at once, so the
// dashboard never shows a grace that is over.
package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/client"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/telemetry"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// GracePeriod is how long a past_due subscription keeps its plan.
const GracePeriod = 7 * 24 * time.Hour

// Subscription statuses as Stripe names them.
const (
	StatusActive            = "active"
	StatusTrialing          = "trialing"
	StatusPastDue           = "past_due"
	StatusCanceled          = "canceled"
	StatusUnpaid            = "unpaid"
	StatusIncomplete        = "incomplete"
	StatusIncompleteExpired = "incomplete_expired"
	StatusPaused            = "paused"
)

// Service creates Stripe sessions and applies Stripe's events.
type Service struct {
	pool    *pgxpool.Pool
	q       *dbq.Queries
	cfg     config.Stripe
	plans   plan.Table
	baseURL string
	log     *slog.Logger
	stripe  *client.API // nil when billing is off
	queue   *jobs.Queue // nil: duplicate subscriptions are not cancelled (admin commands)
	now     func() time.Time
	events  *prometheus.CounterVec
	tel     *telemetry.Telemetry
}

// New returns a Service. With Stripe unconfigured it still reports billing state
// but refuses to create sessions and answers webhooks 404.
func New(pool *pgxpool.Pool, cfg config.Config, log *slog.Logger, opts ...Option) *Service {
	s := &Service{
		pool: pool, q: dbq.New(pool), cfg: cfg.Stripe, plans: cfg.Plans,
		baseURL: cfg.BaseURL, log: log, now: time.Now,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_stripe_events_total",
			Help: "Stripe webhook deliveries, by event type and outcome (applied, stale, unknown_customer, ignored, unlinkable, duplicate, failed; type unknown with invalid_signature).",
		}, []string{"type", "outcome"}),
	}
	for _, o := range opts {
		o(s)
	}
	if cfg.Stripe.Enabled() {
		s.stripe = newStripeClient(cfg.Stripe, log, s.tel)
	}
	return s
}

// Option changes a Service's defaults.
type Option func(*Service)

// WithTelemetry records each call to Stripe's API (metrics, a span with the trace
// context sent along, the last failure for health reports).
func WithTelemetry(t *telemetry.Telemetry) Option { return func(s *Service) { s.tel = t } }

// newStripeClient builds a client whose API backend is STRIPE_API_BASE when set.
func newStripeClient(cfg config.Stripe, log *slog.Logger, tel *telemetry.Telemetry) *client.API {
	var rt http.RoundTripper = http.DefaultTransport
	if tel != nil {
		rt = tel.Transport(telemetry.Stripe, nil)
	}
	backend := func(t stripe.SupportedBackend, url string) stripe.Backend {
		c := &stripe.BackendConfig{
			HTTPClient:        &http.Client{Timeout: 20 * time.Second, Transport: rt},
			LeveledLogger:     stripeLogger{log},
			MaxNetworkRetries: stripe.Int64(2),
		}
		if url != "" {
			c.URL = stripe.String(url)
		}
		return stripe.GetBackendWithConfig(t, c)
	}
	return client.New(cfg.SecretKey, &stripe.Backends{
		API:     backend(stripe.APIBackend, cfg.APIBase),
		Connect: backend(stripe.ConnectBackend, ""),
		Uploads: backend(stripe.UploadsBackend, ""),
	})
}

// stripeLogger passes stripe-go's warnings and errors to slog; its debug and info
// lines (one per request) would only be noise.
type stripeLogger struct{ log *slog.Logger }

func (l stripeLogger) Debugf(string, ...any) {}
func (l stripeLogger) Infof(string, ...any)  {}
func (l stripeLogger) Warnf(format string, v ...any) {
	l.log.Warn("stripe: " + fmt.Sprintf(format, v...))
}
func (l stripeLogger) Errorf(format string, v ...any) {
	l.log.Warn("stripe: " + fmt.Sprintf(format, v...))
}

// Ping asks Stripe's API for the account's balance, the cheapest authenticated
// read, to tell whether Stripe answers (health reports); nil when billing is off.
func (s *Service) Ping(ctx context.Context) error {
	if s.stripe == nil {
		return nil
	}
	p := &stripe.BalanceParams{}
	p.Context = ctx
	_, err := s.stripe.Balance.Get(p)
	return err
}

// Collector returns the service's metrics, for the replica's registry.
func (s *Service) Collector() prometheus.Collector { return s.events }

// Enabled reports whether Stripe is configured.
func (s *Service) Enabled() bool { return s.stripe != nil }

// planForPrice maps a Stripe price id to the plan it buys; unknown prices buy nothing.
func (s *Service) planForPrice(price string) (plan.ID, bool) {
	switch {
	case price == "":
		return plan.Free, false
	case price == s.cfg.PricePro:
		return plan.Pro, true
	case price == s.cfg.PriceEnterprise:
		return plan.Enterprise, true
	}
	return plan.Free, false
}

// priceForPlan is the Stripe price that sells p, or "" for a plan not for sale.
func (s *Service) priceForPlan(p plan.ID) string {
	switch p {
	case plan.Pro:
		return s.cfg.PricePro
	case plan.Enterprise:
		return s.cfg.PriceEnterprise
	}
	return ""
}

// rank orders plans by their position in the table (cheapest first).
func (s *Service) rank(p plan.ID) int {
	for i, row := range s.plans {
		if row.ID == p {
			return i
		}
	}
	return 0
}

// Subscription is the stored state of one Stripe subscription.
type Subscription struct {
	ID                string
	CustomerID        string
	WorkspaceID       *uuid.UUID
	Status            string
	PriceID           string
	Plan              plan.ID // what the price buys when the subscription is in good standing
	CurrentPeriodEnd  *time.Time
	CancelAtPeriodEnd bool
	GraceUntil        *time.Time
	GraceEnded        bool
	LastEventAt       time.Time
	// Created is when Stripe created the subscription (nil until an event told it);
	// of two live subscriptions of one workspace the newer is kept.
	Created *time.Time
	// DuplicateOf names the subscription kept in this one's place: a duplicate grants
	// nothing and is being cancelled through Stripe's API.
	DuplicateOf string
}

// Grants returns the plan the subscription gives its workspace at now: its price's
// plan while active or trialing, and while past_due until the grace period ends;
// Free in every other status, and for a duplicate being cancelled.
func (sub Subscription) Grants(now time.Time) plan.ID {
	if sub.DuplicateOf != "" {
		return plan.Free
	}
	switch sub.Status {
	case StatusActive, StatusTrialing:
		return sub.Plan
	case StatusPastDue:
		if sub.InGrace(now) {
			return sub.Plan
		}
	}
	return plan.Free
}

// InGrace reports whether the subscription is past_due and still within its grace period.
func (sub Subscription) InGrace(now time.Time) bool {
	return sub.Status == StatusPastDue && sub.GraceUntil != nil && now.Before(*sub.GraceUntil)
}

// Live reports whether the subscription still bills or can be revived in the
// Customer Portal; a workspace with a live one changes plans there, not in Checkout.
// A duplicate being cancelled is not.
func (sub Subscription) Live() bool {
	if sub.DuplicateOf != "" {
		return false
	}
	switch sub.Status {
	case StatusActive, StatusTrialing, StatusPastDue, StatusUnpaid, StatusPaused:
		return true
	}
	return false
}

// withStatus returns sub moved to a new status as of at: a grace period starts when
// it becomes past_due and is kept while it stays past_due; any other status ends it.
func (sub Subscription) withStatus(status string, at time.Time) Subscription {
	if status == StatusPastDue {
		if sub.Status != StatusPastDue || sub.GraceUntil == nil {
			until := at.Add(GracePeriod)
			sub.GraceUntil, sub.GraceEnded = &until, false
		}
	} else {
		sub.GraceUntil, sub.GraceEnded = nil, false
	}
	sub.Status = status
	sub.LastEventAt = at
	return sub
}

func fromRow(r dbq.Subscription) Subscription {
	return Subscription{
		ID: r.ID, CustomerID: r.CustomerID, WorkspaceID: r.WorkspaceID, Status: r.Status,
		PriceID: r.PriceID, Plan: plan.ID(r.Plan), CurrentPeriodEnd: r.CurrentPeriodEnd,
		CancelAtPeriodEnd: r.CancelAtPeriodEnd, GraceUntil: r.GraceUntil, GraceEnded: r.GraceEnded,
		LastEventAt: r.LastEventAt, Created: r.StripeCreated, DuplicateOf: deref(r.DuplicateOf),
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func saveSubscription(ctx context.Context, q *dbq.Queries, sub Subscription) error {
	err := q.SubscriptionSave(ctx, dbq.SubscriptionSaveParams{
		ID: sub.ID, CustomerID: sub.CustomerID, WorkspaceID: sub.WorkspaceID, Status: sub.Status,
		PriceID: sub.PriceID, Plan: string(sub.Plan), CurrentPeriodEnd: sub.CurrentPeriodEnd,
		CancelAtPeriodEnd: sub.CancelAtPeriodEnd, GraceUntil: sub.GraceUntil, GraceEnded: sub.GraceEnded,
		LastEventAt: sub.LastEventAt, StripeCreated: sub.Created,
	})
	if err != nil {
		return fmt.Errorf("billing: save subscription: %w", err)
	}
	return nil
}

// recompute sets the workspace's plan to the best one its subscriptions grant now,
// through workspace.SetPlanTx (audit entry and NOTIFY to every replica). A
// workspace whose subscriptions' states are all still unknown keeps its plan.
func (s *Service) recompute(ctx context.Context, q *dbq.Queries, workspaceID uuid.UUID) error {
	rows, err := q.SubscriptionListForWorkspace(ctx, &workspaceID)
	if err != nil {
		return fmt.Errorf("billing: list subscriptions: %w", err)
	}
	best, known, now := plan.Free, false, s.now()
	for _, r := range rows {
		if r.Status == "" {
			continue
		}
		known = true
		if p := fromRow(r).Grants(now); s.rank(p) > s.rank(best) {
			best = p
		}
	}
	if !known {
		return nil
	}
	return workspace.SetPlanTx(ctx, q, s.plans, workspaceID, best, nil, "stripe")
}

// Status is a workspace's billing as the dashboard shows it.
type Status struct {
	// Plan is the workspace's plan after any expired grace period has been applied.
	Plan plan.ID
	// Subscriptions are the workspace's known subscriptions, most recently changed first.
	Subscriptions []Subscription
	// HasCustomer reports whether the workspace has a Stripe customer (and so a portal).
	HasCustomer bool
	// At is when the state was read; grace periods are judged at this time.
	At time.Time
}

// Live returns the subscription through which the workspace pays, if any.
func (st Status) Live() (Subscription, bool) {
	for _, sub := range st.Subscriptions {
		if sub.Live() {
			return sub, true
		}
	}
	return Subscription{}, false
}

// Status returns the workspace's billing state. An expired grace period it finds is
// applied first, so the plan returned is the one in force.
func (s *Service) Status(ctx context.Context, workspaceID uuid.UUID) (Status, error) {
	st, err := s.status(ctx, workspaceID)
	if err != nil {
		return Status{}, err
	}
	now := s.now()
	for _, sub := range st.Subscriptions {
		if sub.Status == StatusPastDue && !sub.GraceEnded && sub.GraceUntil != nil && !now.Before(*sub.GraceUntil) {
			if _, err := s.expireGraces(ctx, &workspaceID); err != nil {
				return Status{}, err
			}
			return s.status(ctx, workspaceID)
		}
	}
	return st, nil
}

func (s *Service) status(ctx context.Context, workspaceID uuid.UUID) (Status, error) {
	ws, err := s.q.WorkspaceGet(ctx, workspaceID)
	if errors.Is(err, pgx.ErrNoRows) {
		return Status{}, apperr.New(apperr.NotFound, "No such workspace.")
	}
	if err != nil {
		return Status{}, fmt.Errorf("billing: status: %w", err)
	}
	st := Status{Plan: plan.ID(ws.Plan), At: s.now()}
	rows, err := s.q.SubscriptionListForWorkspace(ctx, &workspaceID)
	if err != nil {
		return Status{}, fmt.Errorf("billing: status: %w", err)
	}
	for _, r := range rows {
		if r.Status != "" {
			st.Subscriptions = append(st.Subscriptions, fromRow(r))
		}
	}
	_, err = s.q.StripeCustomerGet(ctx, workspaceID)
	switch {
	case err == nil:
		st.HasCustomer = true
	case !errors.Is(err, pgx.ErrNoRows):
		return Status{}, fmt.Errorf("billing: status: %w", err)
	}
	return st, nil
}

// ExpireGraces downgrades workspaces whose past-due subscriptions' grace periods
// have ended and returns how many subscriptions it handled.
func (s *Service) ExpireGraces(ctx context.Context) (int, error) {
	return s.expireGraces(ctx, nil)
}

// expireGraces handles expired graces, of one workspace when workspaceID is set.
func (s *Service) expireGraces(ctx context.Context, workspaceID *uuid.UUID) (int, error) {
	n := 0
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		rows, err := q.SubscriptionGraceExpired(ctx, dbq.SubscriptionGraceExpiredParams{Now: s.now(), Lim: 100, WorkspaceID: workspaceID})
		if err != nil {
			return err
		}
		done := map[uuid.UUID]bool{}
		for _, r := range rows {
			if err := q.SubscriptionGraceEnd(ctx, r.ID); err != nil {
				return err
			}
			if !done[*r.WorkspaceID] {
				done[*r.WorkspaceID] = true
				if err := s.recompute(ctx, q, *r.WorkspaceID); err != nil {
					return err
				}
			}
			s.log.Info("billing: grace period over", "subscription", r.ID, "workspace_id", r.WorkspaceID.String())
		}
		n = len(rows)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("billing: expire graces: %w", err)
	}
	return n, nil
}

// RunGraceSweeper applies expired grace periods every interval until ctx ends.
func (s *Service) RunGraceSweeper(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for {
				n, err := s.ExpireGraces(ctx)
				if err != nil {
					if ctx.Err() == nil {
						s.log.Warn("billing: grace sweep failed; will retry", "err", err)
					}
					break
				}
				if n < 100 {
					break
				}
			}
		}
	}
}
