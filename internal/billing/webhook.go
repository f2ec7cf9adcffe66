package billing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/webhook"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
)

// Outcomes recorded in stripe_events.outcome.
const (
	OutcomeApplied         = "applied"
	OutcomeStale           = "stale"            // older than the subscription's watermark
	OutcomeUnknownCustomer = "unknown_customer" // no workspace to apply it to (yet)
	OutcomeIgnored         = "ignored"          // a type or object Cairn does not act on
	// OutcomeUnlinkable is a completed Checkout that names a workspace Cairn cannot
	// link it to (deleted, or paid by another workspace's customer). It is answered
	// 200 so Stripe does not retry for days, logged and counted for an operator.
	OutcomeUnlinkable = "unlinkable"
)

// MaxWebhookBody bounds the webhook body read into memory; Stripe's events are far smaller.
const MaxWebhookBody = 1 << 20

// HandleWebhook verifies a Stripe webhook delivery and applies its event.
//
// It returns invalid_request when the Stripe-Signature header is missing, wrong, or
// dated more than webhook.DefaultTolerance (5 minutes) in the past or the future
// (nothing is changed), not_found when billing
// is off, nil for a duplicate, and an internal error when the database failed, so
// that Stripe retries. API-version mismatches between the endpoint and stripe-go are
// tolerated because only fields stable across versions are read.
func (s *Service) HandleWebhook(ctx context.Context, payload []byte, signature string) error {
	if !s.Enabled() {
		return apperr.New(apperr.NotFound, "Billing is not configured on this server.")
	}
	if signature == "" {
		s.events.WithLabelValues("unknown", "invalid_signature").Inc()
		return apperr.New(apperr.Invalid, "Missing Stripe-Signature header.")
	}
	// stripe-go refuses signatures older than its tolerance but not ones dated in
	// the future, which a captured delivery replayed later could carry.
	if at, ok := signedAt(signature); ok && at.Sub(s.now()) > webhook.DefaultTolerance {
		s.events.WithLabelValues("unknown", "invalid_signature").Inc()
		return apperr.New(apperr.Invalid, "Invalid Stripe webhook: the signature's timestamp is in the future.")
	}
	ev, err := webhook.ConstructEventWithOptions(payload, signature, s.cfg.WebhookSecret,
		webhook.ConstructEventOptions{IgnoreAPIVersionMismatch: true})
	if err != nil {
		s.events.WithLabelValues("unknown", "invalid_signature").Inc()
		return &apperr.Error{Code: apperr.Invalid, Message: "Invalid Stripe webhook: " + signatureProblem(err), Err: err}
	}
	_, err = s.ApplyEvent(ctx, ev)
	return err
}

// signedAt reads the t= timestamp of a Stripe-Signature header.
func signedAt(header string) (time.Time, bool) {
	for _, part := range strings.Split(header, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "t="); ok {
			sec, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(sec, 0), true
		}
	}
	return time.Time{}, false
}

func signatureProblem(err error) string {
	switch {
	case errors.Is(err, webhook.ErrNotSigned):
		return "the Stripe-Signature header is missing."
	case errors.Is(err, webhook.ErrInvalidHeader):
		return "the Stripe-Signature header is malformed."
	case errors.Is(err, webhook.ErrTooOld):
		return "the signature's timestamp is outside the tolerance window."
	case errors.Is(err, webhook.ErrNoValidSignature):
		return "no signature matches the endpoint's secret."
	}
	return "the payload is not a Stripe event."
}

// ApplyEvent records a verified event and applies its effect in one transaction and
// returns the outcome; an event already recorded is a no-op with outcome "".
func (s *Service) ApplyEvent(ctx context.Context, ev stripe.Event) (string, error) {
	if ev.ID == "" || ev.Data == nil {
		return "", apperr.New(apperr.Invalid, "Invalid Stripe webhook: the event has no id or data.")
	}
	at := time.Unix(ev.Created, 0).UTC()
	var outcome string
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		// The insert comes first: a concurrent delivery of the same event blocks here
		// until this transaction ends, then finds the row and does nothing.
		_, err := q.StripeEventInsert(ctx, dbq.StripeEventInsertParams{ID: ev.ID, Type: string(ev.Type), Created: at})
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("billing: record event: %w", err)
		}
		if err := forgetDetails(ctx, q, ev); err != nil {
			return err
		}
		var ws *uuid.UUID
		outcome, ws, err = s.apply(ctx, q, ev, at)
		if err != nil {
			return err
		}
		if ws != nil {
			if err := s.cancelDuplicates(ctx, tx, q, *ws); err != nil {
				return err
			}
		}
		return q.StripeEventSetOutcome(ctx, dbq.StripeEventSetOutcomeParams{ID: ev.ID, Outcome: outcome, WorkspaceID: ws})
	})
	if err != nil {
		// Stripe retries the delivery; failures that last need an operator.
		s.events.WithLabelValues(string(ev.Type), "failed").Inc()
		return "", fmt.Errorf("billing: event %s (%s): %w", ev.ID, ev.Type, err)
	}
	if outcome == "" {
		s.events.WithLabelValues(string(ev.Type), "duplicate").Inc()
	} else {
		s.log.Info("billing: stripe event", "event", ev.ID, "type", string(ev.Type), "outcome", outcome)
		s.events.WithLabelValues(string(ev.Type), outcome).Inc()
	}
	return outcome, nil
}

func (s *Service) apply(ctx context.Context, q *dbq.Queries, ev stripe.Event, at time.Time) (string, *uuid.UUID, error) {
	switch ev.Type {
	case "checkout.session.completed", "checkout.session.expired":
		var sess stripe.CheckoutSession
		if err := json.Unmarshal(ev.Data.Raw, &sess); err != nil {
			return OutcomeIgnored, nil, nil
		}
		// Either way the session is no longer the workspace's open Checkout.
		if err := q.CheckoutSessionEnd(ctx, sess.ID); err != nil {
			return "", nil, fmt.Errorf("billing: end checkout session: %w", err)
		}
		if ev.Type == "checkout.session.expired" {
			return OutcomeApplied, nil, nil
		}
		return s.applyCheckout(ctx, q, &sess)
	case "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
		"customer.subscription.paused", "customer.subscription.resumed":
		var sub stripe.Subscription
		if err := json.Unmarshal(ev.Data.Raw, &sub); err != nil || sub.ID == "" || sub.Customer == nil {
			return OutcomeIgnored, nil, nil
		}
		return s.applySubscription(ctx, q, &sub, at, nil)
	case "invoice.paid", "invoice.payment_failed":
		var inv stripe.Invoice
		if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil || inv.Subscription == nil || inv.Subscription.ID == "" {
			return OutcomeIgnored, nil, nil
		}
		return s.applyInvoice(ctx, q, string(ev.Type), &inv, at)
	}
	return OutcomeIgnored, nil, nil
}

// lockSubscription makes sure a row exists for the subscription and locks it, so
// events about one subscription apply one at a time in every transaction's order:
// subscription row first, then the workspace (in SetPlanTx).
func lockSubscription(ctx context.Context, q *dbq.Queries, id, customerID string) (Subscription, error) {
	if err := q.SubscriptionEnsure(ctx, dbq.SubscriptionEnsureParams{ID: id, CustomerID: customerID}); err != nil {
		return Subscription{}, fmt.Errorf("billing: subscription: %w", err)
	}
	row, err := q.SubscriptionGetForUpdate(ctx, id)
	if err != nil {
		return Subscription{}, fmt.Errorf("billing: subscription: %w", err)
	}
	return fromRow(row), nil
}

// applyCheckout links the session's customer and subscription to the workspace
// named by client_reference_id. A session without one is not Cairn's (ignored); one
// that cannot be linked is unlinkable.
func (s *Service) applyCheckout(ctx context.Context, q *dbq.Queries, sess *stripe.CheckoutSession) (string, *uuid.UUID, error) {
	if sess.ClientReferenceID == "" {
		return OutcomeIgnored, nil, nil
	}
	wsID, err := uuid.Parse(sess.ClientReferenceID)
	if err != nil {
		return s.unlinkable(sess, "client_reference_id is not a workspace id")
	}
	if sess.Customer == nil || sess.Customer.ID == "" {
		return s.unlinkable(sess, "the session has no customer")
	}
	var sub *Subscription
	if sess.Subscription != nil && sess.Subscription.ID != "" {
		locked, err := lockSubscription(ctx, q, sess.Subscription.ID, sess.Customer.ID)
		if err != nil {
			return "", nil, err
		}
		sub = &locked
	}
	if _, err := q.WorkspaceGet(ctx, wsID); errors.Is(err, pgx.ErrNoRows) {
		return s.unlinkable(sess, "no such workspace (deleted?)")
	} else if err != nil {
		return "", nil, fmt.Errorf("billing: checkout: %w", err)
	}
	if err := q.StripeCustomerInsert(ctx, dbq.StripeCustomerInsertParams{WorkspaceID: wsID, CustomerID: sess.Customer.ID}); err != nil {
		return "", nil, fmt.Errorf("billing: link customer: %w", err)
	}
	if linked, err := q.StripeCustomerGet(ctx, wsID); errors.Is(err, pgx.ErrNoRows) {
		// The insert did nothing and the workspace has no customer: the session's
		// customer is already another workspace's.
		return s.unlinkable(sess, "the session's customer belongs to another workspace")
	} else if err != nil {
		return "", nil, fmt.Errorf("billing: link customer: %w", err)
	} else if linked == sess.Customer.ID {
		if err := q.SubscriptionLinkCustomer(ctx, dbq.SubscriptionLinkCustomerParams{WorkspaceID: &wsID, CustomerID: linked}); err != nil {
			return "", nil, fmt.Errorf("billing: link subscriptions: %w", err)
		}
	} else {
		s.log.Warn("billing: checkout customer differs from the workspace's", "workspace_id", wsID.String(), "session", sess.ID)
	}
	// The session names the workspace, so its subscription belongs to it whichever
	// customer paid.
	if sub != nil && sub.WorkspaceID == nil {
		sub.WorkspaceID = &wsID
		if err := saveSubscription(ctx, q, *sub); err != nil {
			return "", nil, err
		}
	}
	if err := s.recompute(ctx, q, wsID); err != nil {
		return "", nil, err
	}
	return OutcomeApplied, &wsID, nil
}

// unlinkable logs a completed Checkout that cannot be linked to a workspace; the
// event is recorded with OutcomeUnlinkable and counted (cairn_stripe_events_total).
func (s *Service) unlinkable(sess *stripe.CheckoutSession, why string) (string, *uuid.UUID, error) {
	customer := ""
	if sess.Customer != nil {
		customer = sess.Customer.ID
	}
	s.log.Warn("billing: a completed Checkout cannot be linked to a workspace; it is recorded and not retried",
		"session", sess.ID, "client_reference_id", sess.ClientReferenceID, "customer", customer, "why", why)
	return OutcomeUnlinkable, nil, nil
}

// applySubscription stores a snapshot of a subscription taken at at, unless a newer
// one was applied already, and updates its workspace's plan. link names the
// workspace when the caller knows it (sync); otherwise the subscription's customer
// or its metadata.workspace_id does.
func (s *Service) applySubscription(ctx context.Context, q *dbq.Queries, in *stripe.Subscription, at time.Time, link *uuid.UUID) (string, *uuid.UUID, error) {
	cur, err := lockSubscription(ctx, q, in.ID, in.Customer.ID)
	if err != nil {
		return "", nil, err
	}
	if at.Before(cur.LastEventAt) {
		return OutcomeStale, cur.WorkspaceID, nil
	}
	next := cur.withStatus(string(in.Status), at)
	next.CustomerID = in.Customer.ID
	next.PriceID, next.Plan = s.subscriptionPrice(in)
	next.CancelAtPeriodEnd = in.CancelAtPeriodEnd
	if in.Created > 0 {
		created := time.Unix(in.Created, 0).UTC()
		next.Created = &created
	}
	next.CurrentPeriodEnd = nil
	if in.CurrentPeriodEnd > 0 {
		t := time.Unix(in.CurrentPeriodEnd, 0).UTC()
		next.CurrentPeriodEnd = &t
	}
	if next.WorkspaceID == nil {
		if next.WorkspaceID = link; link == nil {
			if next.WorkspaceID, err = s.workspaceFor(ctx, q, in); err != nil {
				return "", nil, err
			}
		}
	}
	return s.save(ctx, q, next)
}

// save stores a subscription's new state and, when it belongs to a workspace,
// recomputes that workspace's plan; a subscription of no known workspace is kept
// for the checkout event that will link it.
func (s *Service) save(ctx context.Context, q *dbq.Queries, next Subscription) (string, *uuid.UUID, error) {
	if err := saveSubscription(ctx, q, next); err != nil {
		return "", nil, err
	}
	if next.WorkspaceID == nil {
		return OutcomeUnknownCustomer, nil, nil
	}
	if err := s.recompute(ctx, q, *next.WorkspaceID); err != nil {
		return "", nil, err
	}
	return OutcomeApplied, next.WorkspaceID, nil
}

// subscriptionPrice returns the price of the subscription's best-selling item and
// the plan it buys. A price Cairn does not sell buys Free (and is logged).
func (s *Service) subscriptionPrice(in *stripe.Subscription) (string, plan.ID) {
	price, best := "", plan.Free
	if in.Items == nil {
		return price, best
	}
	for _, item := range in.Items.Data {
		if item == nil || item.Price == nil {
			continue
		}
		p, known := s.planForPrice(item.Price.ID)
		if !known {
			s.log.Warn("billing: subscription has a price that matches neither STRIPE_PRICE_PRO nor STRIPE_PRICE_ENTERPRISE",
				"subscription", in.ID, "price", item.Price.ID)
		}
		if price == "" || s.rank(p) > s.rank(best) {
			price, best = item.Price.ID, p
		}
	}
	return price, best
}

// workspaceFor finds the workspace of a subscription not yet linked: through its
// customer, else through the metadata.workspace_id Checkout put on it, provided
// that workspace has no other customer (the customer is then linked to it).
func (s *Service) workspaceFor(ctx context.Context, q *dbq.Queries, in *stripe.Subscription) (*uuid.UUID, error) {
	id, err := q.StripeCustomerWorkspace(ctx, in.Customer.ID)
	if err == nil {
		return &id, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("billing: customer: %w", err)
	}
	id, err = uuid.Parse(in.Metadata["workspace_id"])
	if err != nil {
		return nil, nil
	}
	if _, err := q.WorkspaceGet(ctx, id); errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("billing: workspace: %w", err)
	}
	if err := q.StripeCustomerInsert(ctx, dbq.StripeCustomerInsertParams{WorkspaceID: id, CustomerID: in.Customer.ID}); err != nil {
		return nil, fmt.Errorf("billing: link customer: %w", err)
	}
	if linked, err := q.StripeCustomerGet(ctx, id); err != nil || linked != in.Customer.ID {
		return nil, nil
	}
	return &id, nil
}

// applyInvoice moves a known subscription between good standing and past_due when
// an invoice is paid or fails. Stripe also sends customer.subscription.updated for
// these transitions; acting on the invoice too starts or ends a grace period even
// when that event is delayed.
func (s *Service) applyInvoice(ctx context.Context, q *dbq.Queries, typ string, inv *stripe.Invoice, at time.Time) (string, *uuid.UUID, error) {
	row, err := q.SubscriptionGetForUpdate(ctx, inv.Subscription.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return OutcomeUnknownCustomer, nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("billing: subscription: %w", err)
	}
	cur := fromRow(row)
	if at.Before(cur.LastEventAt) {
		return OutcomeStale, cur.WorkspaceID, nil
	}
	var status string
	switch {
	case typ == "invoice.paid" && (cur.Status == StatusPastDue || cur.Status == StatusUnpaid || cur.Status == StatusIncomplete):
		status = StatusActive
	case typ == "invoice.payment_failed" && (cur.Status == StatusActive || cur.Status == StatusTrialing):
		status = StatusPastDue
	default:
		return OutcomeIgnored, cur.WorkspaceID, nil
	}
	next := cur.withStatus(status, at)
	return s.save(ctx, q, next)
}
