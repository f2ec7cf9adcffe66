package billing

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// CancelArgs is the durable job that cancels a subscription at Stripe at once,
// because the workspace it paid for was deleted with its owner's account.
type CancelArgs struct {
	SubscriptionID string `json:"subscription_id"`
}

// Kind implements river.JobArgs.
func (CancelArgs) Kind() string { return "billing.cancel_subscription" }

// InsertOpts retries for about a day, like CancelDuplicateArgs: nobody may be billed
// for a workspace that no longer exists.
func (CancelArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 150} }

// CancelTx queues, inside tx, a job cancelling each subscription at Stripe once tx
// commits. Without a queue (admin commands) it refuses, so a deletion never
// commits with a subscription still charging.
func (s *Service) CancelTx(ctx context.Context, tx pgx.Tx, subscriptionIDs []string) error {
	if len(subscriptionIDs) == 0 {
		return nil
	}
	if s.queue == nil {
		return errors.New("billing: cancel subscriptions: no job queue")
	}
	for _, id := range subscriptionIDs {
		if _, err := s.queue.InsertTx(ctx, tx, CancelArgs{SubscriptionID: id}, nil); err != nil {
			return err
		}
	}
	return nil
}

type cancelWorker struct {
	river.WorkerDefaults[CancelArgs]
	s *Service
}

// Work cancels the subscription now, not at the period's end.
func (w *cancelWorker) Work(ctx context.Context, job *river.Job[CancelArgs]) error {
	err := w.s.cancelAtStripe(ctx, job.Args.SubscriptionID, false, "The Cairn account that owned this workspace was deleted.", "cairn-cancel-deleted-")
	if err == nil {
		w.s.log.Info("billing: subscription of a deleted workspace cancelled", "subscription", job.Args.SubscriptionID)
	}
	return err
}
