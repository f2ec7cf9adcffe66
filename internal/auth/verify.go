package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	mailer "github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/onetime"
)

// Lifetimes of the emailed links.
const (
	VerifyTTL = 24 * time.Hour
	ResetTTL  = time.Hour
)

// Purposes of account_tokens rows.
const (
	purposeVerify = "verify_email"
	purposeReset  = "reset_password"
)

// resendEvery bounds how often one person can have a verification link sent.
const resendEvery = time.Minute

// errBadLink is the answer to a link that does not exist or was used: the two are
// not told apart, so a guessed token learns nothing.
var errBadLink = apperr.New(apperr.NotFound, "This link is not valid: it was already used, or a newer one was sent. Ask for a new one.")

// Verified is what opening a verification link did.
type Verified struct {
	User User
	// Changed is true when the link moved the account to a new address (an email
	// change), false when it verified the address the account already had.
	Changed bool
}

// VerifyEmail uses a verification link's token: it verifies the address the link
// was sent to, or, for a link sent to a new address, moves the account to it and
// tells the old address. The link then stops working. It returns not_found for an
// unknown or used link, invalid_request for an expired one, and conflict when
// another account took the new address meanwhile.
func (s *Service) VerifyEmail(ctx context.Context, token string) (Verified, error) {
	var out Verified
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		tok, err := consumeToken(ctx, q, token, purposeVerify, s.now())
		if err != nil {
			return err
		}
		u, err := q.UserGetForUpdate(ctx, tok.UserID)
		if err != nil {
			return err
		}
		actor := audit.ActorFrom(ctx)
		actor.Kind, actor.UserID = audit.ActorUser, &u.ID
		if strings.EqualFold(tok.Email, u.Email) {
			if _, err := q.UserMarkVerified(ctx, dbq.UserMarkVerifiedParams{ID: u.ID, Email: u.Email}); err != nil {
				return err
			}
			u.EmailVerifiedAt = ptr(s.now())
			out = Verified{User: toUser(u)}
			return audit.Record(ctx, q, audit.Entry{Actor: &actor, Action: audit.EmailVerified, TargetKind: "user", TargetID: u.ID.String()})
		}
		err = q.UserChangeEmail(ctx, dbq.UserChangeEmailParams{ID: u.ID, Email: tok.Email})
		if db.IsUniqueViolation(err, "users_email_lower_key") {
			return apperr.New(apperr.Conflict, "Another account uses %s now, so your email stays %s.", tok.Email, u.Email)
		}
		if err != nil {
			return err
		}
		// Reset links went to the old address; it no longer controls the account.
		if err := q.AccountTokenDeleteForUser(ctx, dbq.AccountTokenDeleteForUserParams{UserID: u.ID, Purpose: purposeReset}); err != nil {
			return err
		}
		if err := s.enqueue(ctx, tx, mailer.SendArgs{Template: tmplEmailChanged, To: []string{u.Email},
			Data: map[string]string{"user_id": u.ID.String(), "new_email": tok.Email}}); err != nil {
			return err
		}
		u.Email, u.EmailVerifiedAt = tok.Email, ptr(s.now())
		out = Verified{User: toUser(u), Changed: true}
		return audit.Record(ctx, q, audit.Entry{Actor: &actor, Action: audit.EmailChanged, TargetKind: "user", TargetID: u.ID.String()})
	})
	if err != nil && apperr.As(err) == nil {
		return Verified{}, fmt.Errorf("auth: verify email: %w", err)
	}
	return out, err
}

// ResendVerification emails the user a new verification link (the older ones stop
// working), at most once a minute however often it is asked. An address already
// verified gets nothing.
func (s *Service) ResendVerification(ctx context.Context, userID uuid.UUID) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if u.EmailVerified || s.outbox == nil {
		return nil
	}
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		return s.outbox.EnqueueOnceTx(ctx, tx, mailer.SendArgs{Template: tmplVerifyEmail, Data: map[string]string{"user_id": u.ID.String()}}, resendEvery)
	})
	if err != nil {
		return fmt.Errorf("auth: resend verification: %w", err)
	}
	return nil
}

// MarkVerified verifies the user's current address without a link, for operators
// who know it is theirs, and for tests.
func (s *Service) MarkVerified(ctx context.Context, userID uuid.UUID) error {
	u, err := s.Get(ctx, userID)
	if err != nil {
		return err
	}
	if _, err := s.q.UserMarkVerified(ctx, dbq.UserMarkVerifiedParams{ID: u.ID, Email: u.Email}); err != nil {
		return fmt.Errorf("auth: mark verified: %w", err)
	}
	return nil
}

// consumeToken uses up a link's token of purpose: not_found when there is none
// (never issued, used, superseded), invalid_request when it expired.
func consumeToken(ctx context.Context, q *dbq.Queries, token, purpose string, now time.Time) (dbq.AccountToken, error) {
	if token == "" || len(token) > 128 {
		return dbq.AccountToken{}, errBadLink
	}
	tok, err := q.AccountTokenConsume(ctx, dbq.AccountTokenConsumeParams{Hash: onetime.Hash(token), Purpose: purpose})
	if errors.Is(err, pgx.ErrNoRows) {
		return dbq.AccountToken{}, errBadLink
	}
	if err != nil {
		return dbq.AccountToken{}, err
	}
	if !now.Before(tok.ExpiresAt) {
		return dbq.AccountToken{}, errExpired(purpose)
	}
	return tok, nil
}

func errExpired(purpose string) error {
	if purpose == purposeReset {
		return apperr.New(apperr.Invalid, "This password reset link has expired (links last an hour). Ask for a new one.")
	}
	return apperr.New(apperr.Invalid, "This verification link has expired (links last a day). Log in and send a new one from the banner.")
}

// mintToken makes a link's token for user inside the sending transaction, after
// deleting the user's older links of the same purpose.
func mintToken(ctx context.Context, q *dbq.Queries, userID uuid.UUID, purpose, email string, expires time.Time) (string, error) {
	if err := q.AccountTokenDeleteForUser(ctx, dbq.AccountTokenDeleteForUserParams{UserID: userID, Purpose: purpose}); err != nil {
		return "", err
	}
	token, hash := onetime.New()
	err := q.AccountTokenInsert(ctx, dbq.AccountTokenInsertParams{Hash: hash, UserID: userID, Purpose: purpose, Email: email, ExpiresAt: expires})
	return token, err
}

// PruneTokens deletes expired links.
func (s *Service) PruneTokens(ctx context.Context) error {
	if _, err := s.q.AccountTokenPrune(ctx); err != nil {
		return fmt.Errorf("auth: prune tokens: %w", err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
