package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserAccountStory walks an account's life in Chromium, over a real SMTP
// server, on two replicas of one database: sign up on one, verify from the email,
// log out, forget the password, reset it from the email on the other replica, and
// see that a session the account had on the second replica is refused.
func TestBrowserAccountStory(t *testing.T) {
	smtp := mailtest.Start(t)
	reps := servertest.StartMany(t, 2, dbtest.New(t), map[string]string{"SMTP_URL": smtp.SMTPURL()})
	a, b := reps[0], reps[1]
	ctx := servertest.NewChrome(t, 3*time.Minute)
	const email, first = "ada@example.com", "a long enough password"
	// pathOf keeps an emailed link's path, to open it on either replica.
	pathOf := func(link string) string {
		u, err := url.Parse(link)
		if err != nil {
			t.Fatal(err)
		}
		return u.Path
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(a.URL+"/signup"),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), first),
		chromedp.Click(chromedp.CSS(`form[action="/signup"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=verify-banner]`)),
	); err != nil {
		t.Fatalf("sign up: %v", err)
	}
	servertest.Shot(t, ctx, "account-01-signed-up")

	verify := smtp.WaitFor(email, "Verify your email address", 30*time.Second).Link(t, "/verify-email/")
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.URL+pathOf(verify)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
	); err != nil {
		t.Fatalf("open the verification link: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid=verify-banner]').length`)); err != nil || n != 0 {
		t.Fatalf("the banner is still shown after verifying (%d, %v)", n, err)
	}

	// The account is also signed in elsewhere: a session on the second replica.
	elsewhere := b.NewBrowser(t)
	elsewhere.LogIn(email, first)
	if status, _ := elsewhere.Get("/dashboard"); status != http.StatusOK {
		t.Fatalf("the other session: /dashboard = %d", status)
	}

	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`form[action="/logout"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)),
		chromedp.Navigate(a.URL+"/login"),
		chromedp.Click(chromedp.CSS(`[data-testid=forgot-link]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/password/forgot"]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.Click(chromedp.CSS(`form[action="/password/forgot"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=reset-sent]`)),
	); err != nil {
		t.Fatalf("log out and ask for a reset: %v", err)
	}
	servertest.Shot(t, ctx, "account-02-reset-sent")

	reset := pathOf(smtp.WaitFor(email, "Reset your Cairn password", 30*time.Second).Link(t, "/password/reset/"))
	if err := chromedp.Do(ctx,
		chromedp.Navigate(b.URL+reset),
		chromedp.SendKeys(chromedp.CSS(`#password`), "password123"),
		chromedp.Click(chromedp.CSS(`form[action^="/password/reset/"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=password-error]`)),
	); err != nil {
		t.Fatalf("a weak new password: %v", err)
	}
	servertest.Shot(t, ctx, "account-03-weak-password")
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS(`#password`), newPassword),
		chromedp.Click(chromedp.CSS(`form[action^="/password/reset/"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=form-notice]`)),
	); err != nil {
		t.Fatalf("set the new password: %v", err)
	}
	servertest.Shot(t, ctx, "account-04-reset-done")

	t.Run("OldSessionOnTheSecondReplicaRefused", func(t *testing.T) { refusedAt(t, elsewhere, b.URL) })
	t.Run("OldPasswordRefused", func(t *testing.T) {
		resp, _ := a.NewBrowser(t).Submit("/login", "/login", url.Values{"email": {email}, "password": {first}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old password = %d, want 401", resp.StatusCode)
		}
	})
	t.Run("NewPasswordInTheBrowser", func(t *testing.T) {
		servertest.LogInChrome(t, ctx, b.URL, email, newPassword)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(a.URL+"/dashboard/settings"),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-session]`)),
		); err != nil {
			t.Fatalf("the settings page does not mark this browser's session: %v", err)
		}
		servertest.Shot(t, ctx, "account-05-settings")
	})
	t.Run("NoticeEmailed", func(t *testing.T) {
		m := smtp.WaitFor(email, "Your Cairn password was changed", 30*time.Second)
		if strings.Contains(m.Text, newPassword) || strings.Contains(m.Text, reset) {
			t.Fatalf("the notice holds a secret:\n%s", m.Text)
		}
	})
}
