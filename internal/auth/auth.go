// Package auth signs people up and logs them in: argon2id hashes, case-insensitive
// unique emails and login throttling shared by every replica.
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
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// Login throttling: after MaxFailures failed attempts within FailureWindow, for one
// email or from one IP, further attempts get 429 until the window moves on.
const (
	MaxFailures   = 5
	FailureWindow = 15 * time.Minute
)

// Password length bounds; the upper one keeps hashing cheap for hostile input.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 512
)

// User is a signed-up person.
type User struct {
	ID    uuid.UUID
	Email string
}

// Service signs people up and logs them in.
type Service struct {
	pool *pgxpool.Pool
	q    *dbq.Queries
	now  func() time.Time
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool) *Service {
	return &Service{pool: pool, q: dbq.New(pool), now: time.Now}
}

// NormalizeEmail validates an email address and returns it trimmed.
func NormalizeEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return "", apperr.Field("email", "enter your email address")
	}
	if len(email) > 254 {
		return "", apperr.Field("email", "at most 254 characters")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return "", apperr.Field("email", "%q is not an email address like name@example.com", email)
	}
	return email, nil
}

func validatePassword(password string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < MinPasswordLen:
		return apperr.Field("password", "use at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return apperr.Field("password", "use at most %d characters", MaxPasswordLen)
	}
	return nil
}

// SignUp creates a user and their personal workspace (plan free, user as owner).
// A taken email gets a conflict error.
func (s *Service) SignUp(ctx context.Context, email, password string) (User, workspace.Workspace, error) {
	email, err := NormalizeEmail(email)
	if err != nil {
		return User{}, workspace.Workspace{}, err
	}
	if err := validatePassword(password); err != nil {
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
		ws, err = workspace.CreatePersonal(ctx, q, u.ID, email)
		return err
	})
	if db.IsUniqueViolation(err, "users_email_lower_key") {
		return User{}, workspace.Workspace{}, &apperr.Error{Code: apperr.Conflict, Field: "email", Message: "An account with this email already exists. Log in instead."}
	}
	if err != nil {
		return User{}, workspace.Workspace{}, fmt.Errorf("auth: sign up: %w", err)
	}
	return User{ID: u.ID, Email: u.Email}, ws, nil
}

// Login checks credentials. It returns rate_limited once an email or IP has failed
// MaxFailures times within FailureWindow, and unauthorized for a wrong email or password.
func (s *Service) Login(ctx context.Context, email, password, ip string) (User, error) {
	email = strings.TrimSpace(email)
	if email == "" {
		return User{}, apperr.Field("email", "enter your email address")
	}
	if password == "" {
		return User{}, apperr.Field("password", "enter your password")
	}
	if len(email) > 254 || len(password) > 4*MaxPasswordLen {
		return User{}, apperr.New(apperr.Unauthorized, "Wrong email or password.")
	}
	// PostgreSQL refuses NUL and invalid UTF-8 in text; no account has such an email.
	if strings.ContainsRune(email, 0) || !utf8.ValidString(email) {
		return User{}, apperr.Field("email", "is not an email address like name@example.com")
	}
	counts, err := s.q.LoginFailureCount(ctx, dbq.LoginFailureCountParams{Email: email, Ip: ip, Since: s.now().Add(-FailureWindow)})
	if err != nil {
		return User{}, fmt.Errorf("auth: login: %w", err)
	}
	if counts.ByEmail >= MaxFailures || counts.ByIp >= MaxFailures {
		return User{}, &apperr.Error{Code: apperr.RateLimited, RetryAfter: int(FailureWindow.Seconds()),
			Message: "Too many failed log-in attempts. Wait 15 minutes and try again."}
	}
	u, err := s.q.UserGetByEmail(ctx, email)
	ok := false
	switch {
	case err == nil:
		if ok, err = CheckPassword(u.PasswordHash, password); err != nil {
			return User{}, fmt.Errorf("auth: login: %w", err)
		}
	case errors.Is(err, pgx.ErrNoRows):
		// Spend the same time as a real check so response times don't reveal accounts.
		_, _ = CheckPassword(dummyHash(), password)
	default:
		return User{}, fmt.Errorf("auth: login: %w", err)
	}
	if !ok {
		if err := s.q.LoginFailureInsert(ctx, dbq.LoginFailureInsertParams{Email: email, Ip: ip}); err != nil {
			return User{}, fmt.Errorf("auth: login: %w", err)
		}
		return User{}, apperr.New(apperr.Unauthorized, "Wrong email or password.")
	}
	if err := s.q.LoginFailureClear(ctx, email); err != nil {
		return User{}, fmt.Errorf("auth: login: %w", err)
	}
	return User{ID: u.ID, Email: u.Email}, nil
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
	return User{ID: u.ID, Email: u.Email}, nil
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
