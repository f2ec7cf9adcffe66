package web_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/servertest"
)

func sessionCookie(t *testing.T, resp *http.Response) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == "cairn_session" {
			return c
		}
	}
	t.Fatalf("no cairn_session cookie in %v", resp.Header.Values("Set-Cookie"))
	return nil
}

func TestSessionCookie(t *testing.T) {
	t.Run("HTTP", func(t *testing.T) {
		inst := servertest.Start(t, nil)
		b := inst.NewBrowser(t)
		resp, body := b.Submit("/signup", "/signup", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign up: %d %s", resp.StatusCode, body)
		}
		c := sessionCookie(t, resp)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure {
			t.Fatalf("cookie = %+v; want HttpOnly, SameSite=Lax, not Secure on http", c)
		}
	})
	t.Run("SecureWhenBaseURLIsHTTPS", func(t *testing.T) {
		inst := servertest.Start(t, map[string]string{"BASE_URL": "https://cairn.example.com"})
		resp, err := http.Get(inst.URL + "/login")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if c := sessionCookie(t, resp); !c.Secure || !c.HttpOnly {
			t.Fatalf("cookie = %+v; want Secure and HttpOnly", c)
		}
	})
}

func TestSessionTokenRenewedAtLoginAndLogout(t *testing.T) {
	inst := servertest.Start(t, nil)
	inst.NewBrowser(t).SignUp("ada@example.com", "correct horse battery")
	b := inst.NewBrowser(t)
	u, _ := url.Parse(inst.URL)
	b.CSRF("/login") // an anonymous session exists before logging in
	before := cookieValue(b.Client.Jar, u)
	resp, _ := b.Submit("/login", "/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	loggedIn := cookieValue(b.Client.Jar, u)
	if before == "" || loggedIn == "" || loggedIn == before {
		t.Fatalf("session token not renewed at login (before %q, after %q)", before, loggedIn)
	}

	resp, _ = b.Submit("/dashboard", "/logout", nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("logout: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := b.Get("/dashboard"); code != http.StatusSeeOther {
		t.Fatalf("dashboard after logout: %d, want a redirect to log in", code)
	}
	// The old token must be dead in the store too, not only forgotten by this browser.
	replay := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodGet, inst.URL+"/dashboard", nil)
	req.AddCookie(&http.Cookie{Name: "cairn_session", Value: loggedIn})
	resp, err := replay.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("replaying the logged-out token: %d, want a redirect to log in", resp.StatusCode)
	}
}

func cookieValue(jar http.CookieJar, u *url.URL) string {
	for _, c := range jar.Cookies(u) {
		if c.Name == "cairn_session" {
			return c.Value
		}
	}
	return ""
}

// TestSessionSurvivesRestart logs in on one replica, stops it, and uses the same
// cookie on a replica started afterwards on the same database.
func TestSessionSurvivesRestart(t *testing.T) {
	a := servertest.Start(t, nil)
	b := a.NewBrowser(t)
	b.SignUp("ada@example.com", "correct horse battery")
	a.Stop()

	replica := servertest.StartOn(t, a.DatabaseURL, nil)
	jar := b.Client.Jar.(*cookiejar.Jar)
	u, _ := url.Parse(replica.URL)
	if len(jar.Cookies(u)) == 0 {
		t.Fatalf("no cookie to carry over")
	}
	resp, err := b.Client.Get(replica.URL + "/dashboard")
	if err != nil {
		t.Fatal(err)
	}
	body := servertest.ReadBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "ada@example.com") {
		t.Fatalf("dashboard on the new replica: %d; want the logged-in page", resp.StatusCode)
	}
}

func TestReadingPublicPagesStoresNoSession(t *testing.T) {
	inst := servertest.Start(t, nil)
	count := func() int {
		var n int
		if err := inst.Server.Pool().QueryRow(context.Background(), "SELECT count(*) FROM sessions").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 3 {
		resp, err := http.Get(inst.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) != 0 {
			t.Fatalf("GET /: %d, Set-Cookie %v; want 200 and no cookie", resp.StatusCode, resp.Header.Values("Set-Cookie"))
		}
	}
	if n := count(); n != 0 {
		t.Fatalf("reading the home page stored %d sessions", n)
	}
	// A page with a form needs its token, and so a session.
	resp, err := http.Get(inst.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sessionCookie(t, resp)
	if n := count(); n != 1 {
		t.Fatalf("the log-in page stored %d sessions, want 1", n)
	}
}
