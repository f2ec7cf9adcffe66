package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestVerifyEmailFromTheLink follows the sign-up's email through a real SMTP
// server: until the link is opened the dashboard asks for it and refuses keys;
// the link verifies once, and then keys can be made.
func TestVerifyEmailFromTheLink(t *testing.T) {
	smtp := mailtest.Start(t)
	inst := servertest.Start(t, map[string]string{"SMTP_URL": smtp.SMTPURL()})
	b := inst.NewBrowser(t)
	b.SignUp("ada@example.com", "correct horse battery")

	if _, page := b.Get("/dashboard"); !strings.Contains(page, `data-testid="verify-banner"`) {
		t.Fatal("the dashboard of an unverified account shows no verification banner")
	}
	if resp, page := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"early"}}); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Verify your email address first") {
		t.Fatalf("creating a key unverified: %d, want 403 asking to verify", resp.StatusCode)
	}

	m := smtp.WaitFor("ada@example.com", "Verify your email address", 30*time.Second)
	link := m.Link(t, "/verify-email/")
	if !strings.HasPrefix(link, inst.URL+"/verify-email/") {
		t.Fatalf("the link %s does not lead to this deployment", link)
	}
	path := strings.TrimPrefix(link, inst.URL)

	// Another browser (a phone's mail app, say) can open it without a session.
	other := inst.NewBrowser(t)
	resp, _ := other.Client.Get(link)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
		t.Fatalf("GET %s = %d to %q, want 303 to /dashboard", path, resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, page := b.Get("/dashboard"); strings.Contains(page, `data-testid="verify-banner"`) {
		t.Fatal("the banner is still shown after verifying")
	}
	if status, page := b.Follow(b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"verified"}})); status != http.StatusOK || !servertest.KeyRe.MatchString(page) {
		t.Fatalf("creating a key after verifying: %d", status)
	}
	t.Run("LinkWorksOnce", func(t *testing.T) {
		status, page := b.Get(path)
		if status != http.StatusNotFound || !strings.Contains(page, "This link is not valid") {
			t.Fatalf("the used link answers %d", status)
		}
	})
	t.Run("UnknownLink", func(t *testing.T) {
		if status, _ := b.Get("/verify-email/" + strings.Repeat("A", 43)); status != http.StatusNotFound {
			t.Fatalf("an unknown link answers %d, want 404", status)
		}
	})
}

// TestResendVerification sends a new link from the banner; the old one stops working.
func TestResendVerification(t *testing.T) {
	smtp := mailtest.Start(t)
	inst := servertest.Start(t, map[string]string{"SMTP_URL": smtp.SMTPURL()})
	b := inst.NewBrowser(t)
	b.SignUp("grace@example.com", "correct horse battery")
	first := smtp.WaitFor("grace@example.com", "Verify", 30*time.Second).Link(t, "/verify-email/")

	resp, _ := b.Submit("/dashboard/usage", "/verify-email/resend", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("resend: %d, want 303", resp.StatusCode)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(smtp.To("grace@example.com")) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no second verification email")
		}
		time.Sleep(100 * time.Millisecond)
	}
	second := smtp.WaitFor("grace@example.com", "Verify", time.Second).Link(t, "/verify-email/")
	if second == first {
		t.Fatal("the new email repeats the old link")
	}
	if status, _ := b.Get(strings.TrimPrefix(first, inst.URL)); status != http.StatusNotFound {
		t.Fatalf("the replaced link answers %d, want 404", status)
	}
	if status, _ := b.Get(strings.TrimPrefix(second, inst.URL)); status != http.StatusSeeOther {
		t.Fatalf("the new link answers %d, want 303 to the dashboard", status)
	}
	if _, page := b.Get("/dashboard"); strings.Contains(page, `data-testid="verify-banner"`) || !strings.Contains(page, "grace@example.com is verified") {
		t.Fatal("after the new link the dashboard does not say the address is verified")
	}
}
