package auth

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mailtest"
)

func TestPasswordResetLinks(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	outbox, rec := mailtest.Outbox(t, pool)
	s := NewService(pool, WithMail(outbox, "http://cairn.test"))
	ctx := context.Background()
	u, _, err := s.SignUp(ctx, "Grace@Example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	rec.WaitFor(t, "Grace@Example.com", "Verify")
	ask := func() string {
		t.Helper()
		before := len(rec.To("Grace@Example.com"))
		// Another case than the account's: the address is the same.
		if err := s.RequestReset(ctx, "grace@EXAMPLE.com"); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(20 * time.Second)
		for len(rec.To("Grace@Example.com")) == before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return token(t, rec, "Grace@Example.com", "Reset your Cairn password", "/password/reset/")
	}

	t.Run("UnknownAddressGetsNothing", func(t *testing.T) {
		if err := s.RequestReset(ctx, "nobody@example.com"); err != nil {
			t.Fatalf("RequestReset for no account = %v, want the same nil as for one", err)
		}
		time.Sleep(300 * time.Millisecond)
		if got := rec.To("nobody@example.com"); len(got) != 0 {
			t.Fatalf("an address without an account was sent %d emails", len(got))
		}
	})
	t.Run("NotAnAddress", func(t *testing.T) {
		if err := s.RequestReset(ctx, "grace at example"); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("RequestReset(not an address) = %v, want invalid_request", err)
		}
	})

	first := ask()
	t.Run("ExpiresAfterAnHour", func(t *testing.T) {
		s.now = func() time.Time { return time.Now().Add(ResetTTL + time.Minute) }
		defer func() { s.now = time.Now }()
		if err := s.CheckResetLink(ctx, first); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("CheckResetLink after an hour = %v, want invalid_request", err)
		}
		if _, err := s.ResetPassword(ctx, first, "violet kestrel under copper"); !apperr.Is(err, apperr.Invalid) {
			t.Fatalf("ResetPassword after an hour = %v, want invalid_request", err)
		}
	})
	t.Run("PolicyApplies", func(t *testing.T) {
		_, err := s.ResetPassword(ctx, first, "grace.example")
		if e := apperr.As(err); e == nil || e.Field != "password" {
			t.Fatalf("a weak new password = %v, want invalid on password", err)
		}
		if err := s.CheckResetLink(ctx, first); err != nil {
			t.Fatalf("a refused password used the link up: %v", err)
		}
	})
	t.Run("UsedOnce", func(t *testing.T) {
		got, err := s.ResetPassword(ctx, first, "violet kestrel under copper")
		if err != nil || got.ID != u.ID || !got.EmailVerified {
			t.Fatalf("ResetPassword = %+v, %v; want the account, verified", got, err)
		}
		var logged int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM audit_log WHERE action = 'user.password_reset' AND target_id = $1", u.ID.String()).Scan(&logged); err != nil || logged != 1 {
			t.Fatalf("%d password_reset audit entries (%v), want 1", logged, err)
		}
		if _, err := s.ResetPassword(ctx, first, "another violet kestrel"); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("second use = %v, want not_found", err)
		}
		if _, err := s.Login(ctx, Attempt{Email: "grace@example.com", Password: "violet kestrel under copper", IP: "192.0.2.1"}); err != nil {
			t.Fatalf("log-in with the new password = %v", err)
		}
	})
}
