package team_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestBrowserTeamStory is the story in Chromium over real SMTP, on two
// replicas: an Enterprise owner invites a member from the Team page; the email
// arrives through mailpit; the member signs up from its link, switches to the
// team's workspace, creates a key and searches; the owner removes them, confirming
// a dialog that lists the key; then the member's session and key are refused on
// both replicas within two seconds.
func TestBrowserTeamStory(t *testing.T) {
	tm := setup(t, nil)
	a := tm.inst
	b := servertest.StartOn(t, a.DatabaseURL, map[string]string{"SMTP_URL": tm.mail.SMTPURL()})
	const invitee = "marie@example.com"
	if s, body := status(t, a, "POST", "/v1/documents", tm.owner.Key,
		`{"documents":[{"id":"radium","title":"Notes on radium","text":"Radium glows faintly blue in the dark."}]}`); s != 200 {
		t.Fatalf("store: %d %s", s, body)
	}
	var teamName string
	if err := a.Server.Pool().QueryRow(context.Background(), `SELECT name FROM workspaces WHERE id = $1`, tm.owner.WorkspaceID).Scan(&teamName); err != nil {
		t.Fatal(err)
	}

	// The owner, on replica A, in a browser of their own.
	owner := servertest.NewChrome(t, 3*time.Minute)
	if err := chromedp.Do(owner,
		chromedp.Navigate(a.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#email`), tm.owner.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), servertest.Password),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
		chromedp.Navigate(a.URL+"/dashboard/team"),
		chromedp.SendKeys(chromedp.CSS(`#invite-email`), invitee),
		chromedp.SetValue(chromedp.CSS(`#invite-role`), "member"),
		chromedp.Click(chromedp.CSS(`form[action="/dashboard/team/invitations"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-invitation="`+invitee+`"]`)),
	); err != nil {
		t.Fatalf("owner invites: %v", err)
	}
	servertest.Shot(t, owner, "team-01-invited")

	msg := tm.mail.WaitFor(invitee, "invited", 15*time.Second)
	link, err := url.Parse(msg.Link(t, "/invitations/"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, teamName) || !strings.Contains(msg.Text, "expires on") {
		t.Fatalf("the invitation email does not say what it is: %s", msg.Text)
	}

	// The member, on replica B, in another browser: signs up from the link.
	member := servertest.NewChrome(t, 3*time.Minute)
	if err := chromedp.Do(member,
		chromedp.Navigate(b.URL+link.Path),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=signup]`)),
	); err != nil {
		t.Fatalf("open the link: %v", err)
	}
	servertest.Shot(t, member, "team-02-link")
	if err := chromedp.Do(member,
		chromedp.Click(chromedp.CSS(`[data-testid=signup]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=invitation-note]`)),
	); err != nil {
		t.Fatalf("go to sign-up: %v", err)
	}
	prefilled, err := chromedp.Run(member, chromedp.Value(chromedp.CSS(`#email`)))
	if err != nil || prefilled != invitee {
		t.Fatalf("the sign-up form holds %q (%v), want the invited address", prefilled, err)
	}
	if err := chromedp.Do(member,
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long enough password"),
		chromedp.Click(chromedp.CSS(`form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=accept]`)),
	); err != nil {
		t.Fatalf("sign up: %v", err)
	}
	servertest.Shot(t, member, "team-03-accept")
	if err := chromedp.Do(member,
		chromedp.Click(chromedp.CSS(`[data-testid=accept]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-switcher]`)),
	); err != nil {
		t.Fatalf("accept: %v", err)
	}

	// Through the switcher: to the personal workspace and back to the team's.
	var personal uuid.UUID
	if err := a.Server.Pool().QueryRow(context.Background(), `SELECT m.workspace_id FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE u.email = $1 AND m.role = 'owner'`, invitee).Scan(&personal); err != nil {
		t.Fatal(err)
	}
	switchTo := func(id uuid.UUID, name string) {
		t.Helper()
		if err := chromedp.Do(member,
			chromedp.Click(chromedp.CSS(`[data-testid=workspace-switcher] summary`)),
			chromedp.Click(chromedp.CSS(`[data-testid=workspace-switcher] button[data-workspace-id="`+id.String()+`"]`)),
		); err != nil {
			t.Fatalf("switch to %s: %v", name, err)
		}
		// The form posts and the browser follows the redirect to a new page.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := chromedp.Run(member, chromedp.Text(chromedp.CSS(`[data-testid=workspace-name]`)))
			if err == nil && got == name {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after switching the sidebar names %q (%v), want %q", got, err, name)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	switchTo(personal, "marie's workspace")
	servertest.Shot(t, member, "team-04-personal")
	switchTo(tm.owner.WorkspaceID, teamName)
	servertest.Shot(t, member, "team-05-team")

	if err := chromedp.Do(member,
		chromedp.Navigate(b.URL+"/dashboard/keys"),
		chromedp.SendKeys(chromedp.CSS(`#key-name`), "Marie's laptop"),
		chromedp.Click(chromedp.CSS(`form[action="/dashboard/keys"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#new-key-secret`)),
	); err != nil {
		t.Fatalf("create key: %v", err)
	}
	key, err := chromedp.Run(member, chromedp.Value(chromedp.CSS(`#new-key-secret`)))
	if err != nil || !servertest.KeyRe.MatchString(key) {
		t.Fatalf("the new key %q (%v)", key, err)
	}
	if err := chromedp.Do(member,
		chromedp.Navigate(b.URL+"/dashboard/documents"),
		chromedp.SendKeys(chromedp.CSS(`#doc-query`), "what glows blue"),
		chromedp.Submit(chromedp.CSS(`#doc-query`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=search-results] .result`)),
	); err != nil {
		t.Fatalf("search in the dashboard: %v", err)
	}
	if found, err := chromedp.Run(member, chromedp.Text(chromedp.CSS(`[data-testid=search-results]`))); err != nil || !strings.Contains(found, "Radium glows") {
		t.Fatalf("the dashboard's search found %q (%v)", found, err)
	}
	servertest.Shot(t, member, "team-06-search")
	for _, r := range []*servertest.Instance{a, b} {
		if s, body := status(t, r, "POST", "/v1/search", key, `{"query":"what glows blue"}`); s != 200 || !strings.Contains(body, "radium") {
			t.Fatalf("search with the member's key through %s: %d %s", r.URL, s, body)
		}
	}

	// The owner removes the member; the confirmation lists the key first.
	if err := chromedp.Do(owner,
		chromedp.Navigate(a.URL+"/dashboard/team"),
		chromedp.Click(chromedp.CSS(`tr[data-member="`+invitee+`"] [data-testid=remove]`)),
	); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if m := servertest.ConfirmInPage(t, owner); !strings.Contains(m, invitee) || !strings.Contains(m, "Marie's laptop") || !strings.Contains(m, key[:12]) {
		t.Fatalf("the removal's confirmation does not list the key: %q", m)
	}
	if err := chromedp.Do(owner, chromedp.WaitVisible(chromedp.CSS(`.alert.ok`))); err != nil {
		t.Fatalf("remove: %v", err)
	}
	servertest.Shot(t, owner, "team-07-removed")

	for _, r := range []*servertest.Instance{a, b} {
		eventually(t, "the removed member's key on "+r.URL, func() string {
			if s, body := status(t, r, "POST", "/v1/search", key, `{"query":"radium"}`); s != http.StatusUnauthorized {
				return body
			}
			return ""
		})
	}
	// The session: refused in the team's workspace on B; A then serves only the
	// member's own workspace.
	if err := chromedp.Do(member, chromedp.Navigate(b.URL+"/dashboard/documents")); err != nil {
		t.Fatal(err)
	}
	servertest.Shot(t, member, "team-08-refused-on-b")
	text, err := chromedp.Run(member, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil || !strings.Contains(text, "no longer a member") || strings.Contains(text, "Notes on radium") {
		t.Fatalf("the removed member's session on B: %v %.400s", err, text)
	}
	if err := chromedp.Do(member, chromedp.Navigate(a.URL+"/dashboard/documents"), chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`))); err != nil {
		t.Fatal(err)
	}
	text, err = chromedp.Run(member, chromedp.Text(chromedp.CSS(`body`)))
	if err != nil || strings.Contains(text, "Notes on radium") || strings.Contains(text, teamName) {
		t.Fatalf("the removed member's session on A still shows the team: %v %.400s", err, text)
	}
	servertest.Shot(t, member, "team-09-own-workspace-on-a")
}
