package billing

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stripe/stripe-go/v76"

	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/jobs"
)

// CancelDuplicateArgs is the durable job that cancels, through Stripe's API, a
// subscription found to duplicate another of its workspace.
type CancelDuplicateArgs struct {
	SubscriptionID string `json:"subscription_id"`
	Kept           string `json:"kept"`
}

// Kind implements river.JobArgs.
func (CancelDuplicateArgs) Kind() string { return "billing.cancel_duplicate_subscription" }

// InsertOpts retries for about a day: Stripe outages are short, but a customer
// billed twice must not be forgotten.
func (CancelDuplicateArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 150} }

// UseQueue lets the service cancel duplicate subscriptions: it registers the job's
// worker on queue (before queue.Init). Without it duplicates are only logged.
func (s *Service) UseQueue(queue *jobs.Queue) {
	s.queue = queue
	jobs.AddWorker(queue, &cancelDuplicateWorker{s: s})
	jobs.AddWorker(queue, &cancelWorker{s: s})
}

// cancelDuplicates keeps only the newest of the workspace's live subscriptions.
// Checkout allows one open session per workspace, but two could still both be paid
// (a session opened elsewhere, a race at Stripe): each older one is marked as the
// newest's duplicate (it grants nothing from now on), a job cancelling it at Stripe
// is queued and the audit log records it, all in the event's transaction.
func (s *Service) cancelDuplicates(ctx context.Context, tx pgx.Tx, q *dbq.Queries, workspaceID uuid.UUID) error {
	rows, err := q.SubscriptionListForWorkspace(ctx, &workspaceID)
	if err != nil {
		return fmt.Errorf("billing: list subscriptions: %w", err)
	}
	var live []Subscription
	for _, r := range rows {
		if sub := fromRow(r); sub.Live() && sub.Created != nil {
			live = append(live, sub)
		}
	}
	if len(live) < 2 {
		return nil
	}
	// Newest first: by Stripe's creation time, then by id so every replica agrees.
	slices.SortFunc(live, func(a, b Subscription) int {
		return cmp.Or(b.Created.Compare(*a.Created), strings.Compare(b.ID, a.ID))
	})
	kept := live[0]
	if s.queue == nil {
		s.log.Error("billing: workspace has more than one live subscription; a serving replica will cancel the older ones",
			"workspace_id", workspaceID.String(), "kept", kept.ID)
		return nil
	}
	for _, dup := range live[1:] {
		if err := q.SubscriptionMarkDuplicate(ctx, dbq.SubscriptionMarkDuplicateParams{ID: dup.ID, Kept: kept.ID}); err != nil {
			return fmt.Errorf("billing: mark duplicate: %w", err)
		}
		if _, err := s.queue.InsertTx(ctx, tx, CancelDuplicateArgs{SubscriptionID: dup.ID, Kept: kept.ID}, nil); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.Entry{
			WorkspaceID: workspaceID, Actor: &audit.Actor{Kind: audit.ActorStripe}, Action: audit.SubscriptionCancelled,
			TargetKind: "subscription", TargetID: dup.ID,
			Detail: map[string]any{"reason": "duplicate", "kept": kept.ID, "plan": string(dup.Plan), "kept_plan": string(kept.Plan)},
		}); err != nil {
			return err
		}
		s.log.Warn("billing: a second live subscription of one workspace is being cancelled; the newest is kept",
			"workspace_id", workspaceID.String(), "cancelled", dup.ID, "kept", kept.ID)
	}
	return s.recompute(ctx, q, workspaceID)
}

type cancelDuplicateWorker struct {
	river.WorkerDefaults[CancelDuplicateArgs]
	s *Service
}

// Work cancels the duplicate at once, with proration so that the customer is
// credited for the unused time. A subscription Stripe no longer has, or has
// cancelled already, is done.
func (w *cancelDuplicateWorker) Work(ctx context.Context, job *river.Job[CancelDuplicateArgs]) error {
	err := w.s.cancelAtStripe(ctx, job.Args.SubscriptionID, true, "Duplicate of "+job.Args.Kept+" for the same Cairn workspace.", "cairn-cancel-duplicate-")
	if err == nil {
		w.s.log.Info("billing: duplicate subscription cancelled", "subscription", job.Args.SubscriptionID, "kept", job.Args.Kept)
	}
	return err
}

// cancelAtStripe cancels a subscription now (crediting unused time when prorate),
// once however often it is retried (the idempotency key is keyPrefix and its id).
// With billing off it does nothing; a subscription Stripe no longer has, or has
// cancelled already, is done.
func (s *Service) cancelAtStripe(ctx context.Context, id string, prorate bool, comment, keyPrefix string) error {
	if s.stripe == nil {
		return nil
	}
	params := &stripe.SubscriptionCancelParams{
		CancellationDetails: &stripe.SubscriptionCancelCancellationDetailsParams{Comment: stripe.String(comment)},
	}
	if prorate {
		params.Prorate = stripe.Bool(true)
	}
	params.Context = ctx
	params.SetIdempotencyKey(keyPrefix + id)
	_, err := s.stripe.Subscriptions.Cancel(id, params)
	var se *stripe.Error
	if errors.As(err, &se) && (se.HTTPStatusCode == http.StatusNotFound || se.Code == stripe.ErrorCodeResourceMissing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("billing: cancel subscription %s: %w", id, err)
	}
	return nil
}
