package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/db/dbq"
	mailer "github.com/cairn-dev/cairn/internal/mail"
)

// The account's email templates. Jobs name people by id where they can, so an
// email goes to the address the account has when it is sent; a link's token is
// minted by the composer, inside the transaction that commits once the SMTP server
// has the email, so the queue never holds one.
const (
	tmplVerifyEmail     = "account.verify_email"     // user_id; email: a new address to move to
	tmplSignupAttempt   = "account.signup_attempt"   // user_id
	tmplEmailChanged    = "account.email_changed"    // To: the old address; user_id, new_email
	tmplPasswordReset   = "account.password_reset"   // email: as typed on the form
	tmplPasswordChanged = "account.password_changed" // To: the address then; how: reset or changed
)

const footer = "\n—\nCairn · you receive this because of your Cairn account.\n"

func (s *Service) registerComposers() {
	s.outbox.Register(tmplVerifyEmail, s.composeVerify)
	s.outbox.Register(tmplSignupAttempt, s.composeSignupAttempt)
	s.outbox.Register(tmplEmailChanged, s.composeEmailChanged)
	s.outbox.Register(tmplPasswordReset, s.composeReset)
	s.outbox.Register(tmplPasswordChanged, s.composePasswordChanged)
}

// jobUser loads the user a job names; a deleted account skips the email.
func jobUser(ctx context.Context, q *dbq.Queries, args mailer.SendArgs) (dbq.User, error) {
	id, err := uuid.Parse(args.Data["user_id"])
	if err != nil {
		return dbq.User{}, fmt.Errorf("bad user_id %q: %w", args.Data["user_id"], mailer.ErrSkip)
	}
	u, err := q.UserGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return dbq.User{}, mailer.ErrSkip
	}
	return u, err
}

func (s *Service) composeVerify(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) (mailer.Message, error) {
	q := s.q.WithTx(tx)
	u, err := jobUser(ctx, q, args)
	if err != nil {
		return mailer.Message{}, err
	}
	to, change := u.Email, false
	if e := args.Data["email"]; e != "" && !strings.EqualFold(e, u.Email) {
		to, change = e, true
	} else if u.EmailVerifiedAt != nil {
		return mailer.Message{}, mailer.ErrSkip // verified meanwhile
	}
	token, err := mintToken(ctx, q, u.ID, purposeVerify, to, s.now().Add(VerifyTTL))
	if err != nil {
		return mailer.Message{}, err
	}
	link := s.baseURL + "/verify-email/" + token
	if change {
		return mailer.Message{To: []string{to}, Subject: "Confirm your new email address for Cairn",
			Text: "Someone (we hope you) asked to change the email address of a Cairn account from " + u.Email + " to this one.\n\n" +
				"To make the change, open this link within 24 hours:\n\n" + link + "\n\n" +
				"Until then the account keeps its old address. If you did not ask for this, ignore this email.\n" + footer}, nil
	}
	return mailer.Message{To: []string{to}, Subject: "Verify your email address for Cairn",
		Text: "Welcome to Cairn. Please confirm that this address is yours by opening this link within 24 hours:\n\n" + link + "\n\n" +
			"Until you do, you can look around the dashboard, but you cannot create API keys or join a team.\n\n" +
			"If you did not sign up for Cairn, ignore this email; the account cannot be used for much without it.\n" + footer}, nil
}

func (s *Service) composeSignupAttempt(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) (mailer.Message, error) {
	u, err := jobUser(ctx, s.q.WithTx(tx), args)
	if err != nil {
		return mailer.Message{}, err
	}
	return mailer.Message{To: []string{u.Email}, Subject: "Someone tried to sign up for Cairn with your email address",
		Text: "Someone tried to create a new Cairn account with " + u.Email + ", which already has one, so nothing was created.\n\n" +
			"If it was you, log in instead: " + s.baseURL + "/login\n" +
			"If you forgot your password, reset it: " + s.baseURL + "/password/forgot\n\n" +
			"If it was not you, you need not do anything: your account is unchanged.\n" + footer}, nil
}

func (s *Service) composeEmailChanged(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) (mailer.Message, error) {
	// The account moved away from this address, so the job names it (To).
	return mailer.Message{Subject: "The email address of your Cairn account was changed",
		Text: "The Cairn account that used " + strings.Join(args.To, ", ") + " now uses " + args.Data["new_email"] + ", confirmed from a link sent there.\n\n" +
			"If you did not make this change, someone else may control your account: reply to this email or contact your Cairn operator at once.\n" + footer}, nil
}

func (s *Service) composeReset(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) (mailer.Message, error) {
	q := s.q.WithTx(tx)
	u, err := q.UserGetByEmail(ctx, args.Data["email"])
	if errors.Is(err, pgx.ErrNoRows) {
		// No such account: nothing is sent, which the form never tells apart.
		return mailer.Message{}, mailer.ErrSkip
	}
	if err != nil {
		return mailer.Message{}, err
	}
	token, err := mintToken(ctx, q, u.ID, purposeReset, u.Email, s.now().Add(ResetTTL))
	if err != nil {
		return mailer.Message{}, err
	}
	return mailer.Message{To: []string{u.Email}, Subject: "Reset your Cairn password",
		Text: "Someone (we hope you) asked to reset the password of the Cairn account " + u.Email + ".\n\n" +
			"To choose a new password, open this link within one hour. It works once:\n\n" +
			s.baseURL + "/password/reset/" + token + "\n\n" +
			"Choosing a new password logs the account out everywhere. If you did not ask for this, ignore this email: your password stays as it is.\n" + footer}, nil
}

func (s *Service) composePasswordChanged(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) (mailer.Message, error) {
	what := "changed from the Settings page"
	if args.Data["how"] == "reset" {
		what = "reset from a link sent to this address"
	}
	return mailer.Message{Subject: "Your Cairn password was changed",
		Text: "The password of your Cairn account was " + what + ", and the account was logged out of its other sessions.\n\n" +
			"If this was not you, reset your password now: " + s.baseURL + "/password/forgot\n" + footer}, nil
}
