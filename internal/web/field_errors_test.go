package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/onetime"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

var (
	tagRe  = regexp.MustCompile(`<(input|select|textarea|fieldset)\b[^>]*>`)
	attrRe = func(name string) *regexp.Regexp { return regexp.MustCompile(`\s` + name + `="([^"]*)"`) }
)

// fieldAtFault finds the one form field of page marked aria-invalid and checks
// that it is the field with id wantID, that it takes the focus (autofocus), and
// that every element its aria-describedby names exists, the first holding want.
func fieldAtFault(t *testing.T, page, wantID, want string) {
	t.Helper()
	var bad []string
	for _, tag := range tagRe.FindAllString(page, -1) {
		if strings.Contains(tag, `aria-invalid="true"`) {
			bad = append(bad, tag)
		}
	}
	if len(bad) != 1 {
		t.Fatalf("%d fields are marked aria-invalid, want 1: %v", len(bad), bad)
	}
	tag := bad[0]
	if m := attrRe("id").FindStringSubmatch(tag); m == nil || m[1] != wantID {
		t.Fatalf("the field at fault is %s, want #%s", tag, wantID)
	}
	if !strings.Contains(tag, " autofocus") {
		t.Errorf("the field at fault does not take the focus: %s", tag)
	}
	m := attrRe("aria-describedby").FindStringSubmatch(tag)
	if m == nil {
		t.Fatalf("the field at fault names no message: %s", tag)
	}
	for i, id := range strings.Fields(m[1]) {
		el := regexp.MustCompile(`<[a-z]+\b[^>]*\sid="` + regexp.QuoteMeta(id) + `"[^>]*>`).FindStringIndex(page)
		if el == nil {
			t.Fatalf("aria-describedby names #%s, which is not on the page", id)
		}
		if i == 0 {
			text := html.UnescapeString(page[el[1]:min(len(page), el[1]+600)])
			if !strings.Contains(text, want) {
				t.Fatalf("#%s does not say %q: %.300s", id, want, text)
			}
		}
	}
}

// TestFormErrorsAreTiedToTheirFields: on every dashboard form, a refused field
// is marked aria-invalid, named by aria-describedby to its message beside it, and
// takes the focus.
func TestFormErrorsAreTiedToTheirFields(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Enterprise)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	visitor := inst.NewBrowser(t)

	post := func(br *servertest.Browser, page, path string, form url.Values) string {
		t.Helper()
		_, body := br.Submit(page, path, form)
		return body
	}
	t.Run("SignUpEmail", func(t *testing.T) {
		fieldAtFault(t, post(visitor, "/signup", "/signup", url.Values{"email": {"not an email"}, "password": {"a long enough password"}}), "email", "email")
	})
	t.Run("SignUpPassword", func(t *testing.T) {
		page := post(visitor, "/signup", "/signup", url.Values{"email": {"new@example.com"}, "password": {"short"}})
		fieldAtFault(t, page, "password", "password")
		if !strings.Contains(page, `aria-describedby="password-error password-hint"`) {
			t.Error("the password field no longer names its hint")
		}
	})
	t.Run("KeyName", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/keys", "/dashboard/keys", url.Values{"name": {"  "}}), "key-name", "give the key a name")
	})
	t.Run("KeyExpiry", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/keys", "/dashboard/keys", url.Values{"name": {"x"}, "expires_in_days": {"soon"}}), "key-expiry", "a whole number of days")
	})
	t.Run("KeyScopes", func(t *testing.T) {
		page := post(b, "/dashboard/keys", "/dashboard/keys", url.Values{"name": {"x"}, "scopes": {"admin"}})
		if !strings.Contains(page, `aria-describedby="key-scopes-error"`) || !regexp.MustCompile(`id="key-scopes-error"[^>]*>[^<]*unknown scope`).MatchString(page) {
			t.Fatalf("the scopes' error is not tied to them:\n%s", page)
		}
	})
	t.Run("InviteEmail", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/team", "/dashboard/team/invitations", url.Values{"email": {"nobody"}, "role": {"member"}}), "invite-email", "email")
	})
	t.Run("InviteRole", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/team", "/dashboard/team/invitations", url.Values{"email": {"someone@example.com"}, "role": {"emperor"}}), "invite-role", "must be admin")
	})
	t.Run("EmbedderBaseURL", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/settings/embedder", "/dashboard/settings/embedder", url.Values{"provider": {"custom"}, "base_url": {"ftp://x"}, "model": {"m"}, "api_key": {"sk-x"}}), "emb-base-url", "must be an http(s) URL")
	})
	t.Run("Question", func(t *testing.T) {
		fieldAtFault(t, post(b, "/dashboard/documents", "/dashboard/documents/ask", url.Values{"question": {"tea\x00"}}), "ask-question", "must not contain NUL")
	})
	t.Run("AuditDates", func(t *testing.T) {
		_, page := b.Get("/dashboard/audit?from=2026-02-01&to=2026-01-01")
		fieldAtFault(t, page, "audit-to", "must not be before")
	})
	t.Run("DeviceCode", func(t *testing.T) {
		_, page := b.Get("/activate?code=" + url.QueryEscape("!!"))
		fieldAtFault(t, page, "user-code", "codes are")
	})

	// Settings: each form's fields, a wrong current password included (three
	// wrong ones in all, under the five that would lock this address out).
	settings := func(path string, form url.Values) string { return post(b, "/dashboard/settings", path, form) }
	t.Run("SettingsNewEmail", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/email", url.Values{"email": {"nobody"}, "current_password": {servertest.Password}}), "new-email", "is not an email address")
	})
	t.Run("SettingsEmailPassword", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/email", url.Values{"email": {"new@example.com"}, "current_password": {"not the password"}}), "email-current", "is not your current password")
	})
	t.Run("SettingsCurrentPassword", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/password", url.Values{"current_password": {"not the password"}, "new_password": {"violet kestrel under copper"}}), "pw-current", "is not your current password")
	})
	t.Run("SettingsNewPassword", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/password", url.Values{"current_password": {servertest.Password}, "new_password": {"short"}}), "pw-new", "New password")
	})
	t.Run("SettingsWorkspaceName", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/workspace", url.Values{"name": {"  "}}), "ws-name", "give the workspace a name")
	})
	t.Run("DeleteAccountPassword", func(t *testing.T) {
		page := settings("/dashboard/settings/delete", url.Values{"current_password": {"not the password"}})
		fieldAtFault(t, page, "delete-password", "is not your current password. Your account was not deleted.")
		if status, _ := b.Get("/dashboard"); status != http.StatusOK {
			t.Fatalf("a refused deletion ended the session: /dashboard = %d", status)
		}
	})
	t.Run("DeleteAccountNoPassword", func(t *testing.T) {
		fieldAtFault(t, settings("/dashboard/settings/delete", url.Values{"current_password": {""}}), "delete-password", "enter your current password")
	})

	// The password forms a visitor uses.
	t.Run("ForgotPasswordEmail", func(t *testing.T) {
		fieldAtFault(t, post(visitor, "/password/forgot", "/password/forgot", url.Values{"email": {"nobody"}}), "email", "is not an email address")
	})
	t.Run("ResetPasswordWeak", func(t *testing.T) {
		token, hash := onetime.New()
		if _, err := inst.Server.Pool().Exec(context.Background(), `INSERT INTO account_tokens (hash, user_id, purpose, email, expires_at)
			VALUES ($1, $2, 'reset_password', $3, now() + interval '1 hour')`, hash, acct.UserID, acct.Email); err != nil {
			t.Fatal(err)
		}
		page := "/password/reset/" + token
		fieldAtFault(t, post(visitor, page, page, url.Values{"password": {"1234567890"}}), "password", "New password")
	})
}
