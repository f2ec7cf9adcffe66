package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestEveryDashboardChangeNeedsTheCSRFToken posts to every state-changing dashboard
// route without the token and with a wrong one (as a field and as htmx's header):
// each is 403 and changes nothing.
func TestEveryDashboardChangeNeedsTheCSRFToken(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	resp := inst.Do(t, http.MethodPost, "/v1/documents", acct.Key, `{"documents":[{"id":"bread","text":"Sourdough needs a lively starter."}]}`)
	if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusOK {
		t.Fatalf("store: %d %s", resp.StatusCode, body)
	}
	resp = inst.Do(t, http.MethodGet, "/v1/me", acct.Key, "")
	var me struct{ Key struct{ ID string } }
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &me); err != nil || me.Key.ID == "" {
		t.Fatalf("GET /v1/me: %v", err)
	}
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	routes := []struct {
		path string
		form url.Values
	}{
		{"/logout", nil},
		{"/signup", url.Values{"email": {"csrf-victim@example.com"}, "password": {"correct horse battery"}}},
		{"/login", url.Values{"email": {acct.Email}, "password": {servertest.Password}}},
		{"/dashboard/keys", url.Values{"name": {"forged"}}},
		{"/dashboard/keys/" + me.Key.ID + "/revoke", nil},
		{"/dashboard/documents/delete", url.Values{"id": {"bread"}}},
		{"/dashboard/billing/checkout", url.Values{"plan": {"enterprise"}}},
		{"/dashboard/billing/portal", nil},
	}
	right := b.CSRF("/dashboard/keys")
	forgeries := []struct {
		name   string
		field  string // the _csrf field, "" for none
		header string // X-CSRF-Token, "" for none
		query  string // _csrf in the URL, which leaks into logs and Referer: never accepted
	}{
		{"Missing", "", "", ""},
		{"WrongField", "forged-token", "", ""},
		{"WrongHeader", "", "forged-token", ""},
		{"RightTokenInTheQuery", "", "", right},
	}
	for _, r := range routes {
		for _, f := range forgeries {
			t.Run(f.name+strings.ReplaceAll(r.path, "/", "_"), func(t *testing.T) {
				form := url.Values{}
				for k, v := range r.form {
					form[k] = v
				}
				if f.field != "" {
					form.Set("_csrf", f.field)
				}
				target := inst.URL + r.path
				if f.query != "" {
					target += "?" + url.Values{"_csrf": {f.query}}.Encode()
				}
				req, _ := http.NewRequest(http.MethodPost, target, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if f.header != "" {
					req.Header.Set("X-CSRF-Token", f.header)
					req.Header.Set("HX-Request", "true")
				}
				resp, err := b.Client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, csrfMessage) {
					t.Fatalf("status %d, want 403: %.300s", resp.StatusCode, body)
				}
			})
		}
	}

	t.Run("NothingChanged", func(t *testing.T) {
		status, page := b.Get("/dashboard/keys")
		if status != http.StatusOK {
			t.Fatalf("the forged log-out ended the session: GET /dashboard/keys is %d", status)
		}
		if strings.Contains(page, "forged") || strings.Contains(page, "is-revoked") {
			t.Fatalf("a forged form changed the keys:\n%s", page)
		}
		if r := inst.Do(t, http.MethodGet, "/v1/documents/bread", acct.Key, ""); r.StatusCode != http.StatusOK {
			t.Fatalf("a forged form deleted the document: %d", r.StatusCode)
		}
		if resp, _ := inst.NewBrowser(t).Submit("/login", "/login", url.Values{"email": {"csrf-victim@example.com"}, "password": {"correct horse battery"}}); resp.StatusCode == http.StatusSeeOther {
			t.Fatal("a forged sign-up created an account")
		}
	})
	t.Run("TheRightHeaderIsAccepted", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, inst.URL+"/dashboard/documents/delete", strings.NewReader(url.Values{"id": {"bread"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", b.CSRF("/dashboard/documents"))
		req.Header.Set("HX-Request", "true")
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303: %.300s", resp.StatusCode, body)
		}
	})
}

// TestLogInMakesANewCSRFToken: the token a visitor's session had before logging in
// (which a page or a proxy in between may have seen) stops working at log-in.
func TestLogInMakesANewCSRFToken(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	before := b.CSRF("/login")
	resp, body := b.Post("/login", url.Values{"_csrf": {before}, "email": {acct.Email}, "password": {servertest.Password}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log in: %d %.300s", resp.StatusCode, body)
	}
	if after := b.CSRF("/dashboard/keys"); after == before {
		t.Fatal("the CSRF token is the same after log-in")
	}
	resp, body = b.Post("/dashboard/keys", url.Values{"_csrf": {before}, "name": {"with the old token"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, csrfMessage) {
		t.Fatalf("a form with the token from before log-in: %d, want 403", resp.StatusCode)
	}
}
