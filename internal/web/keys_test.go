package web_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

var keyIDRe = regexp.MustCompile(`data-key-id="([0-9a-f-]{36})"`)

// apiStatus sends an API request without a body and returns its status.
func apiStatus(t *testing.T, inst *servertest.Instance, method, path, key string) int {
	t.Helper()
	resp := inst.Do(t, method, path, key, "")
	servertest.ReadBody(t, resp)
	return resp.StatusCode
}

func TestKeyScopesExpiryAndRoll(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)

	runFormCases(t, b, "/dashboard/keys", "/dashboard/keys", []formCase{
		{"UnknownScope", url.Values{"name": {"x"}, "scopes": {"search", "admin"}}, "", 400, `unknown scope &#34;admin&#34;`},
		{"ExpiryNotANumber", url.Values{"name": {"x"}, "expires_in_days": {"soon"}}, "", 400, "expires_in_days: a whole number of days"},
		{"ExpiryZero", url.Values{"name": {"x"}, "expires_in_days": {"0"}}, "", 400, "expires_in_days"},
		{"ExpiryTooLong", url.Values{"name": {"x"}, "expires_in_days": {"3651"}}, "", 400, "from 1 to 3650"},
		{"SearchOnlyFor30Days", url.Values{"name": {"search only"}, "scopes": {"search"}, "expires_in_days": {"30"}}, "", 303, "Scopes: search. Expires: "},
	})
	t.Run("RefusedFormKeepsTheTickedScopes", func(t *testing.T) {
		_, body := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {""}, "scopes": {"answer"}})
		if !regexp.MustCompile(`value="answer" checked`).MatchString(body) || regexp.MustCompile(`value="search" checked`).MatchString(body) {
			t.Fatalf("the refused form forgot which scopes were ticked:\n%s", body)
		}
	})

	// A key limited to search: search works, usage does not.
	_, body := b.Follow(b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"narrow"}, "scopes": {"usage:read"}}))
	secret := servertest.KeyRe.FindString(body)
	if secret == "" {
		t.Fatalf("no key shown:\n%s", body)
	}
	if got := apiStatus(t, inst, "GET", "/v1/usage", secret); got != 200 {
		t.Fatalf("usage:read key on /v1/usage: %d", got)
	}
	if got := apiStatus(t, inst, "GET", "/v1/documents", secret); got != 403 {
		t.Fatalf("usage:read key on GET /v1/documents: %d, want 403", got)
	}

	_, page := b.Get("/dashboard/keys")
	if !strings.Contains(page, "usage:read") || !strings.Contains(page, "all scopes") {
		t.Fatalf("the keys page does not show the keys' scopes:\n%s", page)
	}
	if !strings.Contains(page, "from 127.0.0.1") {
		// Last use is flushed every 2 s; give it a moment.
		servertest.Eventually(t, func() bool { _, page = b.Get("/dashboard/keys"); return strings.Contains(page, "from 127.0.0.1") },
			"the keys page never showed where a key was last used from")
	}
	if !strings.Contains(page, "Go-http-client") {
		t.Fatalf("the keys page does not show the last user agent:\n%s", page)
	}

	t.Run("Roll", func(t *testing.T) {
		var m struct{ Key struct{ ID string } }
		resp := inst.Do(t, "GET", "/v1/me", secret, "")
		if err := json.Unmarshal([]byte(servertest.ReadBody(t, resp)), &m); err != nil {
			t.Fatal(err)
		}
		path := "/dashboard/keys/" + m.Key.ID + "/roll"
		runFormCases(t, b, "/dashboard/keys", path, []formCase{
			{"NoGraceChosen", url.Values{}, "", 400, "grace_hours"},
			{"GraceTooLong", url.Values{"grace_hours": {"25"}}, "", 400, "0 to 24 hours"},
			{"MissingCSRF", url.Values{"grace_hours": {"1"}}, "none", 403, csrfMessage},
		})
		status, body := b.Follow(b.Submit("/dashboard/keys", path, url.Values{"grace_hours": {"1"}}))
		if status != http.StatusOK || !strings.Contains(body, "The old secret keeps working until") {
			t.Fatalf("roll: %d\n%s", status, body)
		}
		rolled := servertest.KeyRe.FindString(body)
		if rolled == "" || rolled == secret {
			t.Fatalf("roll showed no new secret")
		}
		for _, s := range []string{secret, rolled} {
			if got := apiStatus(t, inst, "GET", "/v1/usage", s); got != 200 {
				t.Fatalf("a secret during the grace: %d", got)
			}
		}
		_, page := b.Get("/dashboard/keys")
		if !strings.Contains(page, "previous "+secret[:12]+"… works until") {
			t.Fatalf("the keys page does not show the old secret's grace:\n%s", page)
		}
		// Rolling again with no grace ends the newest old secret at once.
		_, body = b.Follow(b.Submit("/dashboard/keys", path, url.Values{"grace_hours": {"0"}}))
		if !strings.Contains(body, "The old secret no longer works.") {
			t.Fatalf("roll without grace:\n%s", body)
		}
		if got := apiStatus(t, inst, "GET", "/v1/usage", rolled); got != 401 {
			t.Fatalf("secret rolled without grace: %d, want 401", got)
		}
	})
	t.Run("RollAnotherWorkspacesKey", func(t *testing.T) {
		other := inst.NewAccount(t, plan.Pro)
		ob := inst.NewBrowser(t)
		ob.LogIn(other.Email, servertest.Password)
		_, page := ob.Get("/dashboard/keys")
		otherID := keyIDRe.FindStringSubmatch(page)[1]
		resp, _ := b.Submit("/dashboard/keys", "/dashboard/keys/"+otherID+"/roll", url.Values{"grace_hours": {"1"}})
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("rolling another workspace's key: %d, want 404", resp.StatusCode)
		}
		if got := apiStatus(t, inst, "GET", "/v1/me", other.Key); got != 200 {
			t.Fatalf("the other workspace's key after the attempt: %d", got)
		}
	})
}

// TestNewKeyIsShownOnceAfterARedirect: creating a key answers 303 to the keys
// page, which shows the secret once; reloading shows it no more and makes no
// second key; another session of the same person never sees it; the revoked key
// is listed behind its toggle.
func TestNewKeyIsShownOnceAfterARedirect(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	other := inst.NewBrowser(t)
	other.LogIn(acct.Email, servertest.Password)
	rows := func(page string) int { return strings.Count(page, "data-key-id=") }
	_, before := b.Get("/dashboard/keys")

	resp, body := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"once"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/keys" || servertest.KeyRe.MatchString(body) {
		t.Fatalf("create: %d to %q, want 303 to /dashboard/keys with no key in the answer", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, page := other.Get("/dashboard/keys"); servertest.KeyRe.MatchString(page) {
		t.Fatal("another session of the same person was shown the new key")
	}
	_, page := b.Get("/dashboard/keys")
	secret := servertest.KeyRe.FindString(page)
	if secret == "" || !strings.Contains(page, `data-testid="new-key"`) || !strings.Contains(page, `autofocus`) {
		t.Fatalf("the page after the redirect does not show the key in its panel:\n%s", page)
	}
	if got := apiStatus(t, inst, "GET", "/v1/me", secret); got != http.StatusOK {
		t.Fatalf("the shown key: %d", got)
	}
	_, again := b.Get("/dashboard/keys")
	if servertest.KeyRe.MatchString(again) || strings.Contains(again, `data-testid="new-key"`) {
		t.Fatal("a reload shows the key again")
	}
	if got, want := rows(again), rows(before)+1; got != want {
		t.Fatalf("%d keys listed after one creation and two loads, want %d", got, want)
	}

	t.Run("RevokedBehindAToggle", func(t *testing.T) {
		resp, _ := b.Submit("/dashboard/keys", "/dashboard/keys/"+keyIDOf(t, inst, secret)+"/revoke", nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		_, page := b.Get("/dashboard/keys")
		details := page[strings.Index(page, `data-testid="revoked-keys"`):]
		if !strings.Contains(page, `<details class="revoked-keys"`) || !strings.Contains(details, "<summary>Revoked keys (1)</summary>") || !strings.Contains(details, secret[:12]) {
			t.Fatalf("the revoked key is not behind the toggle:\n%s", page)
		}
		if active := page[:strings.Index(page, `data-testid="revoked-keys"`)]; strings.Contains(active, secret[:12]) {
			t.Fatal("the revoked key is also listed with the active ones")
		}
	})
}

// keyIDOf is the id of the key secret, from GET /v1/me.
func keyIDOf(t *testing.T, inst *servertest.Instance, secret string) string {
	t.Helper()
	var m struct{ Key struct{ ID string } }
	if err := json.Unmarshal([]byte(servertest.ReadBody(t, inst.Do(t, "GET", "/v1/me", secret, ""))), &m); err != nil {
		t.Fatal(err)
	}
	return m.Key.ID
}
