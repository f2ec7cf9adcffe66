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

// resetEvery bounds how often one address can be sent a reset link, however
// often the form is posted for it.
const resetEvery = time.Minute

// RequestReset queues a password reset email for the account with email. It does
// exactly the same work whether or not there is such an account (the email job
// finds out when it runs, and sends nothing for none), so neither its answer nor
// its timing tells anyone which addresses have accounts.
func (s *Service) RequestReset(ctx context.Context, email string) error {
	email, err := NormalizeEmail(email)
	if err != nil {
		return err
	}
	if s.outbox == nil {
		return nil
	}
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		return s.outbox.EnqueueOnceTx(ctx, tx, mailer.SendArgs{Template: tmplPasswordReset, Data: map[string]string{"email": strings.ToLower(email)}}, resetEvery)
	})
	if err != nil {
		return fmt.Errorf("auth: request reset: %w", err)
	}
	return nil
}

// CheckResetLink reports whether a reset link's token can still be used, without
// using it: not_found for an unknown or used link, invalid_request for an expired one.
func (s *Service) CheckResetLink(ctx context.Context, token string) error {
	if token == "" || len(token) > 128 {
		return errBadLink
	}
	tok, err := s.q.AccountTokenGet(ctx, dbq.AccountTokenGetParams{Hash: onetime.Hash(token), Purpose: purposeReset})
	if errors.Is(err, pgx.ErrNoRows) {
		return errBadLink
	}
	if err != nil {
		return fmt.Errorf("auth: reset link: %w", err)
	}
	if !s.now().Before(tok.ExpiresAt) {
		return errExpired(purposeReset)
	}
	return nil
}

// ResetPassword uses a reset link's token to set a new password (which must pass
// the policy, field "password"; a refused one leaves the link working). The link
// then stops working, every session of the account ends on every replica, the
// address counts as verified (the link reached it), failed log-ins before now stop
// counting towards the email's lock, and a notice goes to the address.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (User, error) {
	var out User
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		tok, err := consumeToken(ctx, q, token, purposeReset, s.now())
		if err != nil {
			return err
		}
		u, err := q.UserGetForUpdate(ctx, tok.UserID)
		if err != nil {
			return err
		}
		if !strings.EqualFold(tok.Email, u.Email) {
			return errBadLink // sent to an address the account has left
		}
		if err := ValidatePassword(password, u.Email); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, u, password, nil, "reset"); err != nil {
			return err
		}
		if _, err := q.UserMarkVerified(ctx, dbq.UserMarkVerifiedParams{ID: u.ID, Email: u.Email}); err != nil {
			return err
		}
		if u.EmailVerifiedAt == nil {
			u.EmailVerifiedAt = ptr(s.now())
		}
		out = toUser(u)
		return recordAccount(ctx, q, audit.PasswordReset, &u.ID, &u.ID, nil)
	})
	if err != nil && apperr.As(err) == nil {
		return User{}, fmt.Errorf("auth: reset password: %w", err)
	}
	return out, err
}

// ChangePassword sets a new password for userID, who must give the current one
// (field current_password; wrong guesses from one address are throttled like
// log-ins; the new one is checked as field new_password). Every other session of
// the account ends on every replica; keep, the session asking, stays. A notice
// goes to the account's address.
func (s *Service) ChangePassword(ctx context.Context, userID, keep uuid.UUID, ip, current, password string) error {
	if err := s.CheckCurrent(ctx, userID, ip, current); err != nil {
		return err
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		u, err := q.UserGetForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		if err := validatePassword("new_password", password, u.Email); err != nil {
			return err
		}
		if err := s.setPassword(ctx, tx, u, password, &keep, "changed"); err != nil {
			return err
		}
		return recordAccount(ctx, q, audit.PasswordChanged, &u.ID, &u.ID, nil)
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("auth: change password: %w", err)
	}
	return err
}

// setPassword stores password's hash for u, ends u's sessions but keep, kills
// u's reset links and queues the notice saying how it changed.
func (s *Service) setPassword(ctx context.Context, tx pgx.Tx, u dbq.User, password string, keep *uuid.UUID, how string) error {
	q := s.q.WithTx(tx)
	if err := q.UserSetPassword(ctx, dbq.UserSetPasswordParams{ID: u.ID, PasswordHash: HashPassword(password)}); err != nil {
		return err
	}
	if _, err := endSessions(ctx, q, dbq.UserSessionDeleteParams{UserID: u.ID, KeepID: keep}); err != nil {
		return err
	}
	if err := q.AccountTokenDeleteForUser(ctx, dbq.AccountTokenDeleteForUserParams{UserID: u.ID, Purpose: purposeReset}); err != nil {
		return err
	}
	return s.enqueue(ctx, tx, mailer.SendArgs{Template: tmplPasswordChanged, To: []string{u.Email}, Data: map[string]string{"how": how}})
}

// CheckCurrent refuses a wrong current password of userID, naming the field
// current_password. Each wrong one counts as a failed log-in from ip, and after
// MaxFailures from one address within FailureWindow it answers rate_limited, so a
// borrowed session cannot be used to guess the password; strangers elsewhere do
// not count, so they cannot stop the owner. Every Settings form that asks for the
// password again (account deletion too) checks it here.
func (s *Service) CheckCurrent(ctx context.Context, userID uuid.UUID, ip, current string) error {
	if current == "" {
		return apperr.Field("current_password", "enter your current password")
	}
	u, err := s.q.UserGet(ctx, userID)
	if err != nil {
		return fmt.Errorf("auth: check password: %w", err)
	}
	since := s.now().Add(-FailureWindow)
	counts, err := s.q.LoginFailureCounts(ctx, dbq.LoginFailureCountsParams{Email: u.Email, Ip: ip, Since: since, EmailSince: since})
	if err != nil {
		return fmt.Errorf("auth: check password: %w", err)
	}
	if counts.ByIpEmail >= MaxFailures {
		return &apperr.Error{Code: apperr.RateLimited, RetryAfter: int(FailureWindow.Seconds()),
			Message: "Too many wrong passwords. Wait 15 minutes and try again."}
	}
	ok := false
	if len(current) <= 4*MaxPasswordLen {
		if ok, err = CheckPassword(u.PasswordHash, current); err != nil {
			return fmt.Errorf("auth: check password: %w", err)
		}
	}
	if ok {
		return nil
	}
	if err := s.q.LoginFailureInsert(ctx, dbq.LoginFailureInsertParams{Email: u.Email, Ip: ip}); err != nil {
		return fmt.Errorf("auth: check password: %w", err)
	}
	return apperr.Field("current_password", "is not your current password")
}

// RequestEmailChange sends a verification link to newEmail for userID, who must
// give their current password (checked as by ChangePassword, from ip). Nothing changes until the link is opened (see
// VerifyEmail, which also tells the old address). An address that already belongs
// to an account, this one included, is refused (field email).
func (s *Service) RequestEmailChange(ctx context.Context, userID uuid.UUID, ip, newEmail, current string) error {
	newEmail, err := NormalizeEmail(newEmail)
	if err != nil {
		return err
	}
	if err := s.CheckCurrent(ctx, userID, ip, current); err != nil {
		return err
	}
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		u, err := q.UserGetForUpdate(ctx, userID)
		if err != nil {
			return err
		}
		if strings.EqualFold(u.Email, newEmail) {
			return apperr.Field("email", "is already your address")
		}
		if _, err := q.UserGetByEmail(ctx, newEmail); err == nil {
			return apperr.Field("email", "belongs to another account")
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return s.enqueue(ctx, tx, mailer.SendArgs{Template: tmplVerifyEmail, Data: map[string]string{"user_id": u.ID.String(), "email": newEmail}})
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("auth: change email: %w", err)
	}
	return err
}
