package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// tmplDeleted is the confirmation email of a deleted account. Its job carries the
// address (To), since the account is gone when it is sent.
const tmplDeleted = "account.deleted"

// Subscriptions cancels Stripe subscriptions through durable jobs queued in a
// transaction (billing.Service).
type Subscriptions interface {
	CancelTx(ctx context.Context, tx pgx.Tx, subscriptionIDs []string) error
}

// Deps are what the Service needs.
type Deps struct {
	Pool      *pgxpool.Pool
	Documents *retrieval.Service
	// Subscriptions cancels a deleted workspace's Stripe subscriptions.
	Subscriptions Subscriptions
	// Outbox sends the confirmation email; nil sends none (tests of one service).
	Outbox  *mail.Outbox
	BaseURL string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Service exports and deletes accounts.
type Service struct {
	pool    *pgxpool.Pool
	q       *dbq.Queries
	docs    *retrieval.Service
	subs    Subscriptions
	outbox  *mail.Outbox
	baseURL string
	now     func() time.Time
}

// New returns a Service and registers its email's composer on the outbox.
func New(d Deps) *Service {
	s := &Service{pool: d.Pool, q: dbq.New(d.Pool), docs: d.Documents, subs: d.Subscriptions, outbox: d.Outbox, baseURL: d.BaseURL, now: d.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if s.outbox != nil {
		s.outbox.Register(tmplDeleted, s.composeDeleted)
	}
	return s
}

// Delete deletes the person's account once password proves it is them. It refuses
// (409 conflict, naming them) while they own a workspace that has other members:
// its ownership must move first. Otherwise, in one transaction, every workspace
// they own goes with everything in it (documents, chunks and vectors, keys,
// invitations, billing rows), its keys are announced revoked to every replica, its
// Stripe subscriptions and its external vector namespace are handed to jobs that
// run once it commits, their sessions end and the account row goes, so the email
// can sign up again. Kept, since they hold no email: the usage records (by workspace
// and key id) and the audit log (by id only, see package audit), which gains an
// entry for each deletion. A confirmation email is queued in the same transaction.
func (s *Service) Delete(ctx context.Context, userID uuid.UUID, password string) error {
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		u, err := q.UserGetForUpdate(ctx, userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return apperr.New(apperr.NotFound, "This account no longer exists.")
		}
		if err != nil {
			return err
		}
		if ok, err := auth.CheckPassword(u.PasswordHash, password); err != nil {
			return err
		} else if !ok {
			return apperr.Field("current_password", "is not your current password")
		}
		owned, err := q.AccountOwnedWorkspaces(ctx, userID)
		if err != nil {
			return err
		}
		var shared, names []string
		ids := make([]uuid.UUID, 0, len(owned))
		for _, w := range owned {
			if w.Others > 0 {
				shared = append(shared, w.Name)
			}
			ids = append(ids, w.ID)
			names = append(names, w.Name)
		}
		if len(shared) > 0 {
			return apperr.New(apperr.Conflict,
				"You own %s, which has other members. Transfer ownership to one of them on the Team page (or remove them) before you delete your account.",
				strings.Join(shared, ", "))
		}
		return s.deleteTx(ctx, tx, q, u, ids, names)
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("account: delete: %w", err)
	}
	return err
}

func (s *Service) deleteTx(ctx context.Context, tx pgx.Tx, q *dbq.Queries, u dbq.User, ids []uuid.UUID, names []string) error {
	keys, err := q.AccountRevokeWorkspaceKeys(ctx, ids)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := q.Notify(ctx, dbq.NotifyParams{Channel: apikey.ChannelRevoked, Payload: k.String()}); err != nil {
			return err
		}
	}
	for _, id := range ids {
		// Replicas forget what they cached about the workspace (plan, quota).
		if err := q.Notify(ctx, dbq.NotifyParams{Channel: workspace.ChannelChanged, Payload: id.String()}); err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.Entry{WorkspaceID: id, Action: audit.WorkspaceDeleted, TargetKind: "workspace", TargetID: id.String()}); err != nil {
			return err
		}
	}
	subs, err := q.AccountLiveSubscriptions(ctx, ids)
	if err != nil {
		return err
	}
	if len(subs) > 0 {
		if s.subs == nil {
			return errors.New("no billing service to cancel the subscriptions with")
		}
		if err := s.subs.CancelTx(ctx, tx, subs); err != nil {
			return err
		}
	}
	if err := s.docs.DropWorkspacesTx(ctx, tx, ids); err != nil {
		return err
	}
	if _, err := q.AccountDeleteWorkspaces(ctx, ids); err != nil {
		return err
	}
	if err := q.AccountDeleteTraces(ctx, dbq.AccountDeleteTracesParams{Email: u.Email, UserID: &u.ID}); err != nil {
		return err
	}
	// Sessions end through their index (user_sessions), so every replica refuses
	// them at their next request; scs rows that predate the index are found by the
	// user id inside them.
	if err := auth.EndAllSessionsTx(ctx, q, u.ID); err != nil {
		return err
	}
	if _, err := q.AccountDeleteSessions(ctx, u.ID.String()); err != nil {
		return err
	}
	if err := audit.Record(ctx, q, audit.Entry{Action: audit.AccountDeleted, TargetKind: "user", TargetID: u.ID.String(),
		Detail: map[string]any{"workspaces_deleted": len(ids)}}); err != nil {
		return err
	}
	// The row's delete trigger revokes the keys the person made in other
	// workspaces, announcing each (00011).
	if _, err := q.AccountDeleteUser(ctx, u.ID); err != nil {
		return err
	}
	if s.outbox == nil {
		return nil
	}
	return s.outbox.EnqueueTx(ctx, tx, mail.SendArgs{Template: tmplDeleted, To: []string{u.Email},
		Data: map[string]string{"workspaces": strings.Join(names, "\n")}})
}

func (s *Service) composeDeleted(_ context.Context, _ pgx.Tx, args mail.SendArgs) (mail.Message, error) {
	var b strings.Builder
	b.WriteString("Your Cairn account has been deleted, as you asked.\n\n")
	if ws := args.Data["workspaces"]; ws != "" {
		b.WriteString("These workspaces were deleted with it, with their documents, API keys and subscriptions:\n")
		for _, name := range strings.Split(ws, "\n") {
			b.WriteString("  - " + name + "\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("Your API keys no longer work, and any subscription was cancelled with Stripe. Usage figures and the audit log are kept without your email address.\n\n")
	b.WriteString("You can sign up again with this address at any time: " + s.baseURL + "/signup\n")
	b.WriteString("\n—\nCairn · this is the last email about this account.\n")
	return mail.Message{Subject: "Your Cairn account has been deleted", Text: b.String()}, nil
}
