package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mailtest"
)

// token returns the token of the newest link to pathPrefix sent to address.
func token(t *testing.T, rec *mailtest.Recorder, address, subject, pathPrefix string) string {
	t.Helper()
	link := mailtest.Link(t, rec.WaitFor(t, address, subject), pathPrefix)
	return link[strings.LastIndex(link, "/")+1:]
}

func TestEmailVerification(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	outbox, rec := mailtest.Outbox(t, pool)
	s := NewService(pool, WithMail(outbox, "http://cairn.test"))
	ctx := context.Background()

	u, _, err := s.SignUp(ctx, "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if u.EmailVerified || u.RequireVerified() == nil {
		t.Fatalf("a new account is verified: %+v", u)
	}
	m := rec.WaitFor(t, "ada@example.com", "Verify your email address")
	link := mailtest.Link(t, m, "/verify-email/")
	if !strings.HasPrefix(link, "http://cairn.test/verify-email/") {
		t.Fatalf("link %q does not lead to BASE_URL/verify-email/", link)
	}
	tok := link[strings.LastIndex(link, "/")+1:]
	var stored int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM account_tokens WHERE position(convert_to($1, 'UTF8') in hash) > 0 OR email = $1", tok).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("the token is stored in plain text (%d rows, %v)", stored, err)
	}

	t.Run("LinkVerifies", func(t *testing.T) {
		v, err := s.VerifyEmail(ctx, tok)
		if err != nil || v.Changed || !v.User.EmailVerified {
			t.Fatalf("VerifyEmail = %+v, %v", v, err)
		}
		got, _ := s.Get(ctx, u.ID)
		if !got.EmailVerified || got.RequireVerified() != nil {
			t.Fatalf("after the link the user is %+v", got)
		}
	})
	t.Run("LinkWorksOnce", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, tok); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("second use = %v, want not_found", err)
		}
	})
	t.Run("NoResendOnceVerified", func(t *testing.T) {
		before := len(rec.To("ada@example.com"))
		if err := s.ResendVerification(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if got := len(rec.To("ada@example.com")); got != before {
			t.Fatalf("a verified account was sent %d more emails", got-before)
		}
	})
}

func TestVerificationLinkExpiresAndIsReplaced(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	outbox, rec := mailtest.Outbox(t, pool)
	s := NewService(pool, WithMail(outbox, "http://cairn.test"))
	ctx := context.Background()
	u, _, err := s.SignUp(ctx, "grace@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	first := token(t, rec, "grace@example.com", "Verify", "/verify-email/")

	t.Run("Expired", func(t *testing.T) {
		s.now = func() time.Time { return time.Now().Add(VerifyTTL + time.Minute) }
		defer func() { s.now = time.Now }()
		_, err := s.VerifyEmail(ctx, first)
		if e := apperr.As(err); e == nil || e.Code != apperr.Invalid || !strings.Contains(e.Message, "expired") {
			t.Fatalf("an expired link = %v, want invalid_request saying it expired", err)
		}
	})
	if err := s.ResendVerification(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(rec.To("grace@example.com")) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	second := token(t, rec, "grace@example.com", "Verify", "/verify-email/")
	if second == first {
		t.Fatal("the resent link repeats the first")
	}
	t.Run("ResendKillsTheOlderLink", func(t *testing.T) {
		if _, err := s.VerifyEmail(ctx, first); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("the first link after a resend = %v, want not_found", err)
		}
		if _, err := s.VerifyEmail(ctx, second); err != nil {
			t.Fatalf("the resent link = %v", err)
		}
	})
	t.Run("ResendIsThrottled", func(t *testing.T) {
		v, _, err := s.SignUp(ctx, "hopper@example.com", "correct horse battery")
		if err != nil {
			t.Fatal(err)
		}
		rec.WaitFor(t, "hopper@example.com", "Verify")
		for range 5 {
			if err := s.ResendVerification(ctx, v.ID); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second)
		// One for the sign-up, one for the resends (two if they straddled a minute).
		if got := len(rec.To("hopper@example.com")); got > 3 {
			t.Fatalf("five resends in a row sent %d emails, want at most one a minute", got)
		}
	})
}

func TestSignUpWithATakenEmailTellsTheOwner(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	outbox, rec := mailtest.Outbox(t, pool)
	s := NewService(pool, WithMail(outbox, "http://cairn.test"))
	ctx := context.Background()
	if _, _, err := s.SignUp(ctx, "Owner@Example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _, err := s.SignUp(ctx, "owner@example.com", "another long password")
		if e := apperr.As(err); e == nil || e.Code != apperr.Conflict || e.Field != "email" {
			t.Fatalf("sign-up with a taken email = %v, want conflict on email", err)
		}
	}
	m := rec.WaitFor(t, "Owner@Example.com", "Someone tried to sign up")
	if !strings.Contains(m.Text, "/password/forgot") {
		t.Fatalf("the notice does not offer a reset:\n%s", m.Text)
	}
	time.Sleep(500 * time.Millisecond)
	n := 0
	for _, m := range rec.To("owner@example.com") {
		if strings.Contains(m.Subject, "Someone tried") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("three attempts sent %d notices, want 1 (at most one an hour)", n)
	}
}
