package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

func TestSignUp(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	s := NewService(pool)
	ctx := context.Background()
	u, ws, err := s.SignUp(ctx, "  Ada.Lovelace@Example.com ", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != "Ada.Lovelace@Example.com" {
		t.Fatalf("email stored as %q, want it trimmed with its case kept", u.Email)
	}
	if ws.Role != workspace.RoleOwner || ws.Plan != "free" || ws.Name != "Ada.Lovelace's workspace" {
		t.Fatalf("personal workspace = %+v, want owner on free named after the user", ws)
	}
	var role string
	if err := pool.QueryRow(ctx, "SELECT role FROM memberships WHERE user_id = $1 AND workspace_id = $2", u.ID, ws.ID).Scan(&role); err != nil || role != "owner" {
		t.Fatalf("membership role = %q, %v; want owner", role, err)
	}

	t.Run("DuplicateEmailInOtherCase", func(t *testing.T) {
		_, _, err := s.SignUp(ctx, "ada.lovelace@EXAMPLE.COM", "another long password")
		e := apperr.As(err)
		if e == nil || e.Code != apperr.Conflict || e.Field != "email" || !strings.Contains(e.Message, "already exists") {
			t.Fatalf("duplicate sign-up = %v, want conflict on email saying it exists", err)
		}
	})
	t.Run("LoginIgnoresEmailCase", func(t *testing.T) {
		got, err := s.Login(ctx, "ADA.LOVELACE@example.com", "correct horse battery", "192.0.2.1")
		if err != nil || got.ID != u.ID {
			t.Fatalf("Login = %+v, %v", got, err)
		}
	})
}

func TestLoginThrottling(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	s := NewService(pool)
	ctx := context.Background()
	if _, _, err := s.SignUp(ctx, "grace@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }

	for i := range MaxFailures {
		if _, err := s.Login(ctx, "grace@example.com", "wrong password!", "192.0.2.1"); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("failure %d = %v, want unauthorized", i+1, err)
		}
	}
	t.Run("PerEmailEvenWithRightPassword", func(t *testing.T) {
		_, err := s.Login(ctx, "GRACE@example.com", "correct horse battery", "198.51.100.7")
		if e := apperr.As(err); e == nil || e.Code != apperr.RateLimited || e.RetryAfter <= 0 {
			t.Fatalf("login after %d failures = %v, want rate_limited with Retry-After", MaxFailures, err)
		}
	})
	t.Run("PerIPForOtherEmails", func(t *testing.T) {
		_, err := s.Login(ctx, "someone-else@example.com", "whatever password", "192.0.2.1")
		if !apperr.Is(err, apperr.RateLimited) {
			t.Fatalf("login from the throttled IP = %v, want rate_limited", err)
		}
	})
	t.Run("WindowMovesOn", func(t *testing.T) {
		s.now = func() time.Time { return now.Add(FailureWindow + time.Minute) }
		if _, err := s.Login(ctx, "grace@example.com", "correct horse battery", "192.0.2.1"); err != nil {
			t.Fatalf("login after the window = %v", err)
		}
	})
}
