// Package auth looks after people's accounts: sign-up with a verified email,
// log-in with throttling that strangers cannot turn against the owner, password
// policy, reset and change, the index of each person's sessions and the emails all
// of these send. Passwords are argon2id hashes; emails are unique whatever their case.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	mailer "github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Login throttling: after MaxFailures failed attempts within FailureWindow for one
// email (from anywhere, or from one address), or MaxFailuresPerIP from one address
// whatever the emails, further attempts get 429 until the window moves on. The
// per-address limit leaves room for an office behind one NAT.
const (
	MaxFailures      = 5
	MaxFailuresPerIP = 20
	FailureWindow    = 15 * time.Minute
)

// User is a signed-up person.
type User struct {
	ID    uuid.UUID
	Email string
	// EmailVerified is true once the person opened a verification link sent to
	// Email. Until then they may use the dashboard, but not create API keys or join
	// another workspace: see RequireVerified.
	EmailVerified bool
}

// RequireVerified returns forbidden, saying how to verify, unless the user's email
// is verified. Whatever needs a proven address (API keys, accepting an
// invitation) checks it.
func (u User) RequireVerified() error {
	if u.EmailVerified {
		return nil
	}
	return errUnverified(u.Email)
}

func errUnverified(email string) error {
	return apperr.New(apperr.Forbidden, "Verify your email address first: open the link we sent to %s, or send a new one from the banner at the top of the page.", email)
}

// RequireVerifiedTx is RequireVerified for the user with id, read through q (the
// caller's transaction): for services that hold only an id.
func RequireVerifiedTx(ctx context.Context, q *dbq.Queries, id uuid.UUID) error {
	u, err := q.UserGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.New(apperr.NotFound, "No such user.")
	}
	if err != nil {
		return fmt.Errorf("auth: user: %w", err)
	}
	return toUser(u).RequireVerified()
}

func toUser(u dbq.User) User {
	return User{ID: u.ID, Email: u.Email, EmailVerified: u.EmailVerifiedAt != nil}
}

// Service signs people up and logs them in.
type Service struct {
	pool    *pgxpool.Pool
	q       *dbq.Queries
	now     func() time.Time
	outbox  *mailer.Outbox
	baseURL string
}

// Option configures a Service.
type Option func(*Service)

// WithMail sends the account's emails (verification, reset, notices) through
// outbox, with links to baseURL, and registers their composers. Without it (admin
// commands, tests of other services) no email is queued.
func WithMail(outbox *mailer.Outbox, baseURL string) Option {
	return func(s *Service) { s.outbox, s.baseURL = outbox, strings.TrimRight(baseURL, "/") }
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool, opts ...Option) *Service {
	s := &Service{pool: pool, q: dbq.New(pool), now: time.Now}
	for _, o := range opts {
		o(s)
	}
	if s.outbox != nil {
		s.registerComposers()
	}
	return s
}

// NormalizeEmail validates an email address and returns it trimmed.
func NormalizeEmail(email string) (string, error) {
	return normalizeEmail("email", email)
}

func normalizeEmail(field, email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", apperr.Field(field, "enter your email address")
	}
	if len(email) > 254 {
		return "", apperr.Field(field, "at most 254 characters")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return "", apperr.Field(field, "%q is not an email address like name@example.com", email)
	}
	return email, nil
}

// SignUp creates a user and their personal workspace (plan free, user as owner)
// and queues the email that verifies the address, all in one transaction. A taken
// email gets a conflict error, and its account's owner an email (at most one an
// hour) saying someone tried.
func (s *Service) SignUp(ctx context.Context, email, password string) (User, workspace.Workspace, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, workspace.Workspace{}, err
	}
	if err := ValidatePassword(password, email); err != nil {
		return User{}, workspace.Workspace{}, err
	}
	hash := HashPassword(password)
	var u dbq.User
	var ws workspace.Workspace
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		var err error
		u, err = q.UserCreate(ctx, dbq.UserCreateParams{Email: email, PasswordHash: hash})
		if err != nil {
			return err
		}
		if ws, err = workspace.CreatePersonal(ctx, q, u.ID, email); err != nil {
			return err
		}
		return s.enqueue(ctx, tx, mailer.SendArgs{Template: tmplVerifyEmail, Data: map[string]string{"user_id": u.ID.String()}})
	})
	if db.IsUniqueViolation(err, "users_email_lower_key") {
		if err := s.notifySignupAttempt(ctx, email); err != nil {
			return User{}, workspace.Workspace{}, err
		}
		return User{}, workspace.Workspace{}, &apperr.Error{Code: apperr.Conflict, Field: "email", Message: "An account with this email already exists. Log in instead, or reset your password if you forgot it."}
	}
	if err != nil {
		return User{}, workspace.Workspace{}, fmt.Errorf("auth: sign up: %w", err)
	}
	return toUser(u), ws, nil
}

// notifySignupAttempt tells the owner of email that someone tried to sign up with
// it: they learn of it even though the form said so to whoever tried.
func (s *Service) notifySignupAttempt(ctx context.Context, email string) error {
	if s.outbox == nil {
		return nil
	}
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		u, err := s.q.WithTx(tx).UserGetByEmail(ctx, email)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // deleted meanwhile
		}
		if err != nil {
			return err
		}
		return s.outbox.EnqueueOnceTx(ctx, tx, mailer.SendArgs{Template: tmplSignupAttempt, Data: map[string]string{"user_id": u.ID.String()}}, time.Hour)
	})
	if err != nil {
		return fmt.Errorf("auth: sign up: %w", err)
	}
	return nil
}

// enqueue queues an email in tx when the service sends mail.
func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, args mailer.SendArgs) error {
	if s.outbox == nil {
		return nil
	}
	return s.outbox.EnqueueTx(ctx, tx, args)
}

// Attempt is one log-in: what was typed, the client's address, and the
// known-device token the browser holds ("" for none).
type Attempt struct {
	Email, Password, IP, Device string
}

// LoggedIn is a successful log-in.
type LoggedIn struct {
	User User
	// Device is a new known-device token for the browser to keep, or "" when the
	// one it presented is already this account's.
	Device string
}

// Login checks credentials. Failed attempts are counted per address, per address
// and email, and per email; over a limit within FailureWindow the attempt gets
// rate_limited before the password is looked at. The per-email lock, which
// strangers anywhere can fill, does not apply to a browser that logged in to the
// account before (a.Device), and failures before the last password change do not
// count towards it, so it never keeps the owner out. A wrong email or password is
// unauthorized, with the same work done either way.
func (s *Service) Login(ctx context.Context, a Attempt) (LoggedIn, error) {
	email, password := strings.TrimSpace(a.Email), a.Password
	if email == "" {
		return LoggedIn{}, apperr.Field("email", "enter your email address")
	}
	if password == "" {
		return LoggedIn{}, apperr.Field("password", "enter your password")
	}
	if len(email) > 254 || len(password) > 4*MaxPasswordLen {
		return LoggedIn{}, apperr.New(apperr.Unauthorized, "Wrong email or password.")
	}
	// PostgreSQL refuses NUL and invalid UTF-8 in text; no account has such an email.
	if strings.ContainsRune(email, 0) || !utf8.ValidString(email) {
		return LoggedIn{}, apperr.Field("email", "is not an email address like name@example.com")
	}
	u, err := s.q.UserGetByEmail(ctx, email)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return LoggedIn{}, fmt.Errorf("auth: login: %w", err)
	}
	since := s.now().Add(-FailureWindow)
	emailSince := since
	if found && u.PasswordChangedAt.After(emailSince) {
		emailSince = u.PasswordChangedAt
	}
	counts, err := s.q.LoginFailureCounts(ctx, dbq.LoginFailureCountsParams{Email: email, Ip: a.IP, Since: since, EmailSince: emailSince})
	if err != nil {
		return LoggedIn{}, fmt.Errorf("auth: login: %w", err)
	}
	locked := counts.ByIp >= MaxFailuresPerIP || counts.ByIpEmail >= MaxFailures
	known := false
	if !locked && found && a.Device != "" {
		if known, err = s.knownDevice(ctx, u.ID, a.Device); err != nil {
			return LoggedIn{}, err
		}
	}
	if locked || (counts.ByEmail >= MaxFailures && !known) {
		return LoggedIn{}, &apperr.Error{Code: apperr.RateLimited, RetryAfter: int(FailureWindow.Seconds()),
			Message: "Too many failed log-in attempts. Wait 15 minutes and try again, or reset your password."}
	}
	ok := false
	if found {
		if ok, err = CheckPassword(u.PasswordHash, password); err != nil {
			return LoggedIn{}, fmt.Errorf("auth: login: %w", err)
		}
	} else {
		// Spend the same time as a real check so response times don't reveal accounts.
		_, _ = CheckPassword(dummyHash(), password)
	}
	if !ok {
		err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
			q := s.q.WithTx(tx)
			if err := q.LoginFailureInsert(ctx, dbq.LoginFailureInsertParams{Email: email, Ip: a.IP}); err != nil {
				return err
			}
			var account *uuid.UUID
			if found {
				account = &u.ID
			}
			return recordAccount(ctx, q, audit.LoginFailed, account, nil, nil)
		})
		if err != nil {
			return LoggedIn{}, fmt.Errorf("auth: login: %w", err)
		}
		return LoggedIn{}, apperr.New(apperr.Unauthorized, "Wrong email or password.")
	}
	var out LoggedIn
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.LoginFailureClear(ctx, email); err != nil {
			return err
		}
		if !known {
			var err error
			if out.Device, err = rememberDevice(ctx, q, u.ID, s.now()); err != nil {
				return err
			}
		}
		return recordAccount(ctx, q, audit.Login, &u.ID, &u.ID, nil)
	})
	if err != nil {
		return LoggedIn{}, fmt.Errorf("auth: login: %w", err)
	}
	out.User = toUser(u)
	return out, nil
}

// recordAccount writes an event of an account (a log-in or failed attempt, a
// password reset or change, ended sessions) into the audit log of
// every workspace the account belongs to, so each team's admins see their
// members' log-ins; an attempt on no account is kept outside any workspace. The
// actor's address and browser come from ctx; actor names the person when known
// (a failed attempt's is not).
func recordAccount(ctx context.Context, q *dbq.Queries, action audit.Action, account, actor *uuid.UUID, detail map[string]any) error {
	a := audit.ActorFrom(ctx)
	a.Kind, a.UserID = audit.ActorUser, actor
	e := audit.Entry{Actor: &a, Action: action, Detail: detail}
	if account == nil {
		e.Detail = map[string]any{"account": "unknown"}
		for k, v := range detail {
			e.Detail[k] = v
		}
		return audit.Record(ctx, q, e)
	}
	e.TargetKind, e.TargetID = "user", account.String()
	workspaces, err := q.MembershipListForUser(ctx, *account)
	if err != nil {
		return err
	}
	if len(workspaces) == 0 {
		return audit.Record(ctx, q, e)
	}
	for _, w := range workspaces {
		e.WorkspaceID = w.ID
		if err := audit.Record(ctx, q, e); err != nil {
			return err
		}
	}
	return nil
}

// Get returns the user with id.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (User, error) {
	u, err := s.q.UserGet(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, apperr.New(apperr.NotFound, "No such user.")
	}
	if err != nil {
		return User{}, fmt.Errorf("auth: get user: %w", err)
	}
	return toUser(u), nil
}

// PruneFailures forgets failed log-ins older than FailureWindow; they no longer
// count towards throttling.
func (s *Service) PruneFailures(ctx context.Context) error {
	if err := s.q.LoginFailurePrune(ctx, s.now().Add(-FailureWindow)); err != nil {
		return fmt.Errorf("auth: prune login failures: %w", err)
	}
	return nil
}

// dummyHash is hashed on first need rather than at start-up, which every command
// (migrate, admin …) would otherwise pay for.
var dummyHash = sync.OnceValue(func() string { return HashPassword("not a real password, only spends time") })
