package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// refusedAt asserts that b's session is refused on a replica (sent to log in).
func refusedAt(t *testing.T, b *servertest.Browser, base string) {
	t.Helper()
	resp, err := b.Client.Get(base + "/dashboard/settings")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("the ended session: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// browserOn returns a browser logged in as email on replica inst.
func browserOn(t *testing.T, inst *servertest.Instance, email, password string) *servertest.Browser {
	b := inst.NewBrowser(t)
	b.LogIn(email, password)
	return b
}

func TestSettingsPasswordChangeEndsOtherSessions(t *testing.T) {
	smtp := mailtest.Start(t)
	reps := servertest.StartMany(t, 2, dbtest.New(t), map[string]string{"SMTP_URL": smtp.SMTPURL()})
	acct := reps[0].NewAccount(t, plan.Free)
	here := browserOn(t, reps[0], acct.Email, servertest.Password)
	there := browserOn(t, reps[1], acct.Email, servertest.Password)

	page, path := "/dashboard/settings", "/dashboard/settings/password"
	for _, c := range []struct {
		name, current, next, want string
	}{
		{"WrongCurrent", "not my password at all", newPassword, "is not your current password"},
		{"NoCurrent", "", newPassword, "enter your current password"},
		{"WeakNew", servertest.Password, "1234567890", "too easy to guess"},
		{"ShortNew", servertest.Password, "short", "at least 10 characters"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := here.Submit(page, path, url.Values{"current_password": {c.current}, "new_password": {c.next}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Fatalf("%d, want 400 saying %q", resp.StatusCode, c.want)
			}
		})
	}
	if status, _ := there.Get("/dashboard"); status != http.StatusOK {
		t.Fatalf("a refused change ended the other session: %d", status)
	}
	resp, _ := here.Submit(page, path, url.Values{"current_password": {servertest.Password}, "new_password": {newPassword}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password = %d", resp.StatusCode)
	}
	t.Run("OtherReplicaRefused", func(t *testing.T) { refusedAt(t, there, reps[1].URL) })
	t.Run("ThisSessionStays", func(t *testing.T) {
		if status, body := here.Get("/dashboard/settings"); status != http.StatusOK || !strings.Contains(body, "Your password was changed") {
			t.Fatalf("this browser after the change: %d", status)
		}
	})
	t.Run("NewPasswordOnly", func(t *testing.T) {
		b := reps[1].NewBrowser(t)
		if resp, _ := b.Submit("/login", "/login", url.Values{"email": {acct.Email}, "password": {servertest.Password}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the old password = %d", resp.StatusCode)
		}
		b.LogIn(acct.Email, newPassword)
	})
	t.Run("Notice", func(t *testing.T) {
		m := smtp.WaitFor(acct.Email, "Your Cairn password was changed", 30*time.Second)
		if strings.Contains(m.Text, newPassword) || !strings.Contains(m.Text, "changed from the Settings page") {
			t.Fatalf("notice:\n%s", m.Text)
		}
	})
}

func TestSettingsEmailChange(t *testing.T) {
	smtp := mailtest.Start(t)
	inst := servertest.Start(t, map[string]string{"SMTP_URL": smtp.SMTPURL()})
	acct := inst.NewAccount(t, plan.Free)
	other := inst.NewAccount(t, plan.Free)
	b := browserOn(t, inst, acct.Email, servertest.Password)
	page, path := "/dashboard/settings", "/dashboard/settings/email"
	for _, c := range []struct {
		name, email, current, want string
	}{
		{"TakenAddress", strings.ToUpper(other.Email), servertest.Password, "belongs to another account"},
		{"SameAddress", acct.Email, servertest.Password, "is already your address"},
		{"NotAnAddress", "ada at example", servertest.Password, "is not an email address"},
		{"WrongPassword", "ada.new@example.com", "not my password at all", "is not your current password"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := b.Submit(page, path, url.Values{"email": {c.email}, "current_password": {c.current}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Fatalf("%d, want 400 saying %q", resp.StatusCode, c.want)
			}
		})
	}
	resp, body := b.Submit(page, path, url.Values{"email": {"ada.new@example.com"}, "current_password": {servertest.Password}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-testid="email-sent"`) {
		t.Fatalf("change email = %d", resp.StatusCode)
	}
	m := smtp.WaitFor("ada.new@example.com", "Confirm your new email address", 30*time.Second)
	t.Run("NothingChangesBeforeTheLink", func(t *testing.T) {
		b2 := inst.NewBrowser(t)
		if resp, _ := b2.Submit("/login", "/login", url.Values{"email": {"ada.new@example.com"}, "password": {servertest.Password}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the new address before the link: %d, want 401", resp.StatusCode)
		}
		b2.LogIn(acct.Email, servertest.Password)
	})
	u, _ := url.Parse(m.Link(t, "/verify-email/"))
	if resp, _ := b.Client.Get(inst.URL + u.Path); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the link = %d", resp.StatusCode)
	}
	t.Run("NewAddressLogsIn", func(t *testing.T) {
		inst.NewBrowser(t).LogIn("ada.new@example.com", servertest.Password)
		if _, body := b.Get("/dashboard/settings"); !strings.Contains(body, "ada.new@example.com") {
			t.Fatal("the settings page does not show the new address")
		}
	})
	t.Run("OldAddressTold", func(t *testing.T) {
		n := smtp.WaitFor(acct.Email, "email address of your Cairn account was changed", 30*time.Second)
		if !strings.Contains(n.Text, "ada.new@example.com") || strings.Contains(n.Text, "/verify-email/") {
			t.Fatalf("notice to the old address:\n%s", n.Text)
		}
	})
}

func TestSettingsRenameWorkspace(t *testing.T) {
	inst := servertest.Start(t, nil)
	owner := inst.NewAccount(t, plan.Enterprise)
	ob := browserOn(t, inst, owner.Email, servertest.Password)
	page, path := "/dashboard/settings", "/dashboard/settings/workspace"

	if _, body := ob.Get(page); !strings.Contains(body, `data-testid="embedder-link"`) || !strings.Contains(body, `data-testid="your-data"`) {
		t.Fatal("the owner's settings page lacks the embedder link or the Your data section")
	}
	for _, c := range []struct{ name, value, want string }{
		{"Empty", "   ", "give the workspace a name"},
		{"TooLong", strings.Repeat("w", 101), "at most 100 characters"},
		{"Control", "a\x07b", "must be printable text"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := ob.Submit(page, path, url.Values{"name": {c.value}})
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Fatalf("%d, want 400 saying %q", resp.StatusCode, c.want)
			}
		})
	}
	if resp, _ := ob.Submit(page, path, url.Values{"name": {"  Research  "}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner renames = %d", resp.StatusCode)
	}
	servertest.Eventually(t, func() bool {
		return strings.Contains(servertest.ReadBody(t, inst.Do(t, http.MethodGet, "/v1/me", owner.Key, "")), `"name":"Research"`)
	}, "GET /v1/me does not show the new name")

	for _, role := range []string{"admin", "member", "viewer"} {
		t.Run(role, func(t *testing.T) {
			acct := inst.NewAccount(t, plan.Free)
			inst.Join(t, acct, owner.WorkspaceID, role)
			b := browserOn(t, inst, acct.Email, servertest.Password)
			b.SwitchTo(owner.WorkspaceID)
			_, body := b.Get(page)
			resp, _ := b.Submit(page, path, url.Values{"name": {"By " + role}})
			if role == "admin" {
				if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, `data-testid="settings-workspace"`) {
					t.Fatalf("admin renames = %d", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s renames = %d, want 403", role, resp.StatusCode)
			}
			if strings.Contains(body, `data-testid="settings-workspace"`) {
				t.Fatalf("the %s's settings page offers the rename form", role)
			}
		})
	}
}

func TestSettingsSessions(t *testing.T) {
	reps := servertest.StartMany(t, 2, dbtest.New(t), nil)
	acct := reps[0].NewAccount(t, plan.Free)
	first := browserOn(t, reps[0], acct.Email, servertest.Password)
	second := browserOn(t, reps[1], acct.Email, servertest.Password)
	third := browserOn(t, reps[1], acct.Email, servertest.Password)
	stranger := inst2Account(t, reps[0])

	_, page := first.Get("/dashboard/settings")
	rows := regexp.MustCompile(`data-session="([0-9a-f-]{36})"`).FindAllStringSubmatch(page, -1)
	if len(rows) != 3 || strings.Count(page, `data-testid="current-session"`) != 1 || !strings.Contains(page, "Go program") || !strings.Contains(page, "127.0.0.1") {
		t.Fatalf("the sessions list shows %d rows (want 3, one marked current, with device and address):\n%s", len(rows), page)
	}
	current := currentSession(t, page)
	t.Run("NotThisOne", func(t *testing.T) {
		if resp, _ := first.Submit("/dashboard/settings", "/dashboard/settings/sessions/"+current+"/end", nil); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("ending this browser's session = %d, want 400", resp.StatusCode)
		}
	})
	t.Run("NotSomeoneElses", func(t *testing.T) {
		for _, id := range []string{rows[1][1], rows[2][1]} {
			if resp, _ := stranger.Submit("/dashboard/settings", "/dashboard/settings/sessions/"+id+"/end", nil); resp.StatusCode != http.StatusNotFound {
				t.Fatalf("a stranger ending the session = %d, want 404", resp.StatusCode)
			}
		}
		for _, b := range []*servertest.Browser{second, third} {
			if status, _ := b.Get("/dashboard"); status != http.StatusOK {
				t.Fatal("a stranger ended a session")
			}
		}
	})
	// Find the second browser's session: the one its own page marks current.
	_, secondPage := second.Get("/dashboard/settings")
	secondID := currentSession(t, secondPage)
	if secondID == current {
		t.Fatal("two browsers are marked as the same session")
	}
	if resp, _ := first.Submit("/dashboard/settings", "/dashboard/settings/sessions/"+secondID+"/end", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end one = %d", resp.StatusCode)
	}
	t.Run("EndOneOnTheOtherReplica", func(t *testing.T) {
		refusedAt(t, second, reps[1].URL)
		if status, _ := third.Get("/dashboard"); status != http.StatusOK {
			t.Fatal("ending one session ended another")
		}
	})
	if resp, _ := first.Submit("/dashboard/settings", "/dashboard/settings/sessions/end-others", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("end others = %d", resp.StatusCode)
	}
	t.Run("EndOthers", func(t *testing.T) {
		refusedAt(t, third, reps[1].URL)
		_, page := first.Get("/dashboard/settings")
		if status, _ := first.Get("/dashboard"); status != http.StatusOK || strings.Count(page, "data-session=") != 1 {
			t.Fatalf("after ending the others: %d, %d sessions listed", status, strings.Count(page, "data-session="))
		}
	})
	t.Run("LogOutEndsTheIndexedSession", func(t *testing.T) {
		if resp, _ := first.Submit("/dashboard/settings", "/logout", nil); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("log out = %d", resp.StatusCode)
		}
		var n int
		if err := reps[0].Server.Pool().QueryRow(t.Context(), "SELECT count(*) FROM user_sessions WHERE user_id = $1", acct.UserID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d sessions left in the index after logging out (%v)", n, err)
		}
	})
}

// currentSession returns the id of the session the settings page marks as this
// browser's.
func currentSession(t *testing.T, page string) string {
	t.Helper()
	for _, row := range strings.Split(page, `<tr data-session="`)[1:] {
		row = row[:strings.Index(row, "</tr>")]
		if strings.Contains(row, `data-testid="current-session"`) {
			return row[:36]
		}
	}
	t.Fatal("no session is marked as this browser's")
	return ""
}

// inst2Account returns a browser logged in as a new account of its own.
func inst2Account(t *testing.T, inst *servertest.Instance) *servertest.Browser {
	a := inst.NewAccount(t, plan.Free)
	return browserOn(t, inst, a.Email, servertest.Password)
}

// TestSettingsCurrentPasswordGuessesAreThrottled: a borrowed session cannot be used
// to guess the password through the settings forms; the owner elsewhere can. (The
// guesses count as failed log-ins too, so browsers new to the account are locked
// out of logging in for a while, as after guesses at the log-in form.)
func TestSettingsCurrentPasswordGuessesAreThrottled(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	acct := inst.NewAccount(t, plan.Free)
	owner := browserOn(t, inst, acct.Email, servertest.Password)
	thief := browserOn(t, inst, acct.Email, servertest.Password)
	change := func(b *servertest.Browser, ip, current string) int {
		resp, _ := from(b, ip, "/dashboard/settings", "/dashboard/settings/email", url.Values{"email": {"thief@example.com"}, "current_password": {current}})
		return resp.StatusCode
	}
	for i := range auth.MaxFailures {
		if got := change(thief, "203.0.113.66", fmt.Sprintf("guess %d", i)); got != http.StatusBadRequest {
			t.Fatalf("guess %d = %d, want 400", i+1, got)
		}
	}
	// A refusal of the moment comes back to the form's page with its message.
	if got := change(thief, "203.0.113.66", servertest.Password); got != http.StatusSeeOther {
		t.Fatalf("after %d wrong guesses the right password = %d, want 303 back to Settings", auth.MaxFailures, got)
	}
	if _, page := thief.Get("/dashboard/settings"); !strings.Contains(page, "Too many wrong passwords") {
		t.Fatal("the settings page does not say why the change was refused")
	}
	var pending int
	if err := inst.Server.Pool().QueryRow(t.Context(), "SELECT count(*) FROM river_job WHERE args->'data'->>'email' = 'thief@example.com'").Scan(&pending); err != nil || pending != 0 {
		t.Fatalf("a refused change queued %d emails (%v)", pending, err)
	}
	if got := change(owner, "198.51.100.5", servertest.Password); got != http.StatusOK {
		t.Fatalf("the owner from another address = %d, want 200", got)
	}
}
