package auth

import (
	"context"
	"fmt"
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
		got, err := s.Login(ctx, Attempt{Email: "ADA.LOVELACE@example.com", Password: "correct horse battery", IP: "192.0.2.1"})
		if err != nil || got.User.ID != u.ID || got.Device == "" {
			t.Fatalf("Login = %+v, %v", got, err)
		}
	})
}

func TestLoginThrottling(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	s := NewService(pool)
	ctx := context.Background()
	for _, email := range []string{"grace@example.com", "hopper@example.com", "lin@example.com"} {
		if _, _, err := s.SignUp(ctx, email, "correct horse battery"); err != nil {
			t.Fatal(err)
		}
	}
	// The owner's browser logs in once before the attack, and keeps its token.
	first, err := s.Login(ctx, Attempt{Email: "grace@example.com", Password: "correct horse battery", IP: "192.0.2.200"})
	if err != nil || first.Device == "" {
		t.Fatalf("first log-in = %+v, %v; want a known-device token", first, err)
	}
	now := time.Now()
	s.now = func() time.Time { return now }
	fail := func(email, ip string) {
		t.Helper()
		if _, err := s.Login(ctx, Attempt{Email: email, Password: "wrong password!", IP: ip}); !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("failure for %s from %s = %v, want unauthorized", email, ip, err)
		}
	}
	limited := func(err error) bool {
		e := apperr.As(err)
		return e != nil && e.Code == apperr.RateLimited && e.RetryAfter > 0
	}
	// Strangers fail from five addresses.
	for i := range MaxFailures {
		fail("grace@example.com", fmt.Sprintf("203.0.113.%d", i+1))
	}
	t.Run("PerEmailLocksUnknownBrowsers", func(t *testing.T) {
		_, err := s.Login(ctx, Attempt{Email: "GRACE@example.com", Password: "correct horse battery", IP: "198.51.100.7"})
		if !limited(err) {
			t.Fatalf("log-in after %d failures = %v, want rate_limited with Retry-After", MaxFailures, err)
		}
	})
	t.Run("AnotherAccountsDeviceDoesNotUnlock", func(t *testing.T) {
		other, err := s.Login(ctx, Attempt{Email: "lin@example.com", Password: "correct horse battery", IP: "198.51.100.8"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Login(ctx, Attempt{Email: "grace@example.com", Password: "correct horse battery", IP: "198.51.100.8", Device: other.Device})
		if !limited(err) {
			t.Fatalf("with lin's device token = %v, want rate_limited", err)
		}
	})
	t.Run("KnownBrowserGetsIn", func(t *testing.T) {
		got, err := s.Login(ctx, Attempt{Email: "grace@example.com", Password: "correct horse battery", IP: "198.51.100.9", Device: first.Device})
		if err != nil || got.Device != "" {
			t.Fatalf("the owner's browser = %+v, %v; want in, keeping its token", got, err)
		}
	})
	t.Run("KnownBrowserStillNeedsThePassword", func(t *testing.T) {
		_, err := s.Login(ctx, Attempt{Email: "grace@example.com", Password: "wrong password!", IP: "198.51.100.9", Device: first.Device})
		if !apperr.Is(err, apperr.Unauthorized) {
			t.Fatalf("known browser, wrong password = %v, want unauthorized", err)
		}
	})
	t.Run("PerAddressAndEmail", func(t *testing.T) {
		for range MaxFailures {
			fail("hopper@example.com", "192.0.2.50")
		}
		_, err := s.Login(ctx, Attempt{Email: "hopper@example.com", Password: "correct horse battery", IP: "192.0.2.50"})
		if !limited(err) {
			t.Fatalf("from the guessing address = %v, want rate_limited", err)
		}
	})
	t.Run("PerAddress", func(t *testing.T) {
		for i := range MaxFailuresPerIP {
			fail(fmt.Sprintf("nobody%d@example.com", i), "192.0.2.99")
		}
		_, err := s.Login(ctx, Attempt{Email: "lin@example.com", Password: "correct horse battery", IP: "192.0.2.99"})
		if !limited(err) {
			t.Fatalf("from an address with %d failures = %v, want rate_limited", MaxFailuresPerIP, err)
		}
	})
	t.Run("ResetFreesTheEmail", func(t *testing.T) {
		for i := range MaxFailures {
			fail("lin@example.com", fmt.Sprintf("203.0.113.%d", 100+i))
		}
		if _, err := s.Login(ctx, Attempt{Email: "lin@example.com", Password: "correct horse battery", IP: "198.51.100.20"}); !limited(err) {
			t.Fatalf("before the reset = %v, want rate_limited", err)
		}
		// A password change (here: as a reset does it) moves the lock's start.
		if _, err := pool.Exec(ctx, "UPDATE users SET password_changed_at = clock_timestamp() WHERE email = 'lin@example.com'"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Login(ctx, Attempt{Email: "lin@example.com", Password: "correct horse battery", IP: "198.51.100.20"}); err != nil {
			t.Fatalf("after the reset = %v", err)
		}
	})
	t.Run("WindowMovesOn", func(t *testing.T) {
		s.now = func() time.Time { return now.Add(FailureWindow + time.Minute) }
		if _, err := s.Login(ctx, Attempt{Email: "hopper@example.com", Password: "correct horse battery", IP: "192.0.2.50"}); err != nil {
			t.Fatalf("log-in after the window = %v", err)
		}
	})
}
