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
		{"SearchOnlyFor30Days", url.Values{"name": {"search only"}, "scopes": {"search"}, "expires_in_days": {"30"}}, "", 200, "Scopes: search. Expires: "},
	})
	t.Run("RefusedFormKeepsTheTickedScopes", func(t *testing.T) {
		_, body := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {""}, "scopes": {"answer"}})
		if !regexp.MustCompile(`value="answer" checked`).MatchString(body) || regexp.MustCompile(`value="search" checked`).MatchString(body) {
			t.Fatalf("the refused form forgot which scopes were ticked:\n%s", body)
		}
	})

	// A key limited to search: search works, usage does not.
	_, body := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"narrow"}, "scopes": {"usage:read"}})
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
		resp2, body := b.Submit("/dashboard/keys", path, url.Values{"grace_hours": {"1"}})
		if resp2.StatusCode != http.StatusOK || !strings.Contains(body, "The old secret keeps working until") {
			t.Fatalf("roll: %d\n%s", resp2.StatusCode, body)
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
		_, body = b.Submit("/dashboard/keys", path, url.Values{"grace_hours": {"0"}})
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
