package web_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// formCase is one submission and what the page must answer.
type formCase struct {
	name   string
	form   url.Values
	csrf   string // "" = the page's token, "none" = no field, anything else is sent as is
	status int
	want   string // substring of the rendered page
}

func runFormCases(t *testing.T, b *servertest.Browser, page, path string, cases []formCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range tc.form {
				form[k] = v
			}
			switch tc.csrf {
			case "":
				form.Set("_csrf", b.CSRF(page))
			case "none":
			default:
				form.Set("_csrf", tc.csrf)
			}
			resp, body := b.Post(path, form)
			if resp.StatusCode >= 500 {
				t.Fatalf("POST %s: %d (a 5xx): %s", path, resp.StatusCode, body)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("POST %s: status %d, want %d; body:\n%s", path, resp.StatusCode, tc.status, body)
			}
			if resp.StatusCode == http.StatusSeeOther {
				_, body = b.Follow(resp, body) // what it says, it says on the page it sends to
			}
			if !strings.Contains(body, tc.want) {
				t.Fatalf("POST %s: page does not say %q:\n%s", path, tc.want, body)
			}
		})
	}
}

const csrfMessage = "This form has expired or did not come from Cairn"

func TestSignUpBadInputs(t *testing.T) {
	inst := servertest.Start(t, nil)
	b := inst.NewBrowser(t)
	b.SignUp("Taken@Example.com", "correct horse battery")
	b = inst.NewBrowser(t) // a visitor without a session

	pw := "correct horse battery"
	runFormCases(t, b, "/signup", "/signup", []formCase{
		{"EmptyEmail", url.Values{"email": {""}, "password": {pw}}, "", 400, "enter your email address"},
		{"BlankEmail", url.Values{"email": {"   "}, "password": {pw}}, "", 400, "enter your email address"},
		{"TooLongEmail", url.Values{"email": {strings.Repeat("a", 250) + "@example.com"}, "password": {pw}}, "", 400, "at most 254 characters"},
		{"MalformedEmail", url.Values{"email": {"not-an-email"}, "password": {pw}}, "", 400, "is not an email address"},
		{"EmailWithoutDomainDot", url.Values{"email": {"a@localhost"}, "password": {pw}}, "", 400, "is not an email address"},
		{"EmailWithDisplayName", url.Values{"email": {"Ada <ada@example.com>"}, "password": {pw}}, "", 400, "is not an email address"},
		{"NulInEmail", url.Values{"email": {"new\x00@example.com"}, "password": {pw}}, "", 400, "is not an email address"},
		{"EmptyPassword", url.Values{"email": {"new@example.com"}, "password": {""}}, "", 400, "use at least 10 characters"},
		{"ShortPassword", url.Values{"email": {"new@example.com"}, "password": {"123456789"}}, "", 400, "use at least 10 characters"},
		{"TooLongPassword", url.Values{"email": {"new@example.com"}, "password": {strings.Repeat("p", 513)}}, "", 400, "use at most 512 characters"},
		{"DigitsOnly", url.Values{"email": {"new@example.com"}, "password": {"1234567890"}}, "", 400, "is too easy to guess: it is one of the most common passwords"},
		{"TenSpaces", url.Values{"email": {"new@example.com"}, "password": {"          "}}, "", 400, "is too easy to guess"},
		{"PasswordIsTheEmail", url.Values{"email": {"new.person@example.com"}, "password": {"new.person@example.com"}}, "", 400, "must not be your email address"},
		{"PasswordIsTheProduct", url.Values{"email": {"new@example.com"}, "password": {"cairncairn"}}, "", 400, "the name Cairn"},
		{"DuplicateEmailOtherCase", url.Values{"email": {"taken@EXAMPLE.com"}, "password": {pw}}, "", 409, "An account with this email already exists"},
		{"DuplicateEmailOffersAReset", url.Values{"email": {"taken@example.com"}, "password": {pw}}, "", 409, `<a href="/password/forgot" data-testid="taken-reset">`},
		{"MissingCSRF", url.Values{"email": {"new@example.com"}, "password": {pw}}, "none", 403, csrfMessage},
		{"WrongCSRF", url.Values{"email": {"new@example.com"}, "password": {pw}}, "forged-token", 403, csrfMessage},
	})
	t.Run("NothingCreated", func(t *testing.T) {
		resp, body := b.Submit("/login", "/login", url.Values{"email": {"new@example.com"}, "password": {pw}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a rejected sign-up left an account behind: login = %d %s", resp.StatusCode, body)
		}
	})
}

func TestLogInBadInputs(t *testing.T) {
	inst := servertest.Start(t, nil)
	inst.NewBrowser(t).SignUp("ada@example.com", "correct horse battery")
	b := inst.NewBrowser(t)
	runFormCases(t, b, "/login", "/login", []formCase{
		{"EmptyEmail", url.Values{"email": {""}, "password": {"x"}}, "", 400, "enter your email address"},
		{"EmptyPassword", url.Values{"email": {"ada@example.com"}, "password": {""}}, "", 400, "enter your password"},
		{"WrongPassword", url.Values{"email": {"ada@example.com"}, "password": {"wrong password"}}, "", 401, "Wrong email or password."},
		{"UnknownEmail", url.Values{"email": {"nobody@example.com"}, "password": {"whatever pw"}}, "", 401, "Wrong email or password."},
		{"TooLongEmail", url.Values{"email": {strings.Repeat("a", 300) + "@example.com"}, "password": {"x"}}, "", 401, "Wrong email or password."},
		{"NulInEmail", url.Values{"email": {"ada\x00@example.com"}, "password": {"x"}}, "", 400, "is not an email address"},
		{"InvalidUTF8Email", url.Values{"email": {"ada\xff@example.com"}, "password": {"x"}}, "", 400, "is not an email address"},
		{"MissingCSRF", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}, "none", 403, csrfMessage},
	})
	t.Run("RightPasswordAnyCase", func(t *testing.T) {
		resp, body := b.Submit("/login", "/login", url.Values{"email": {"ADA@example.com"}, "password": {"correct horse battery"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard" {
			t.Fatalf("login = %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
	})
}

func TestLogInThrottling(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"TRUSTED_PROXIES": "127.0.0.1/32"})
	inst.NewBrowser(t).SignUp("ada@example.com", "correct horse battery")

	login := func(b *servertest.Browser, ip, email, password string) (*http.Response, string) {
		t.Helper()
		form := url.Values{"_csrf": {b.CSRF("/login")}, "email": {email}, "password": {password}}
		req, _ := http.NewRequest(http.MethodPost, inst.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", ip) // the test stands in for a trusted proxy
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp, servertest.ReadBody(t, resp)
	}

	b := inst.NewBrowser(t)
	for i := range 5 {
		// Each failure from a different address: the per-email count still adds up.
		if resp, body := login(b, "203.0.113."+string(rune('1'+i)), "ada@example.com", "wrong password"); resp.StatusCode != 401 {
			t.Fatalf("failure %d: %d %s", i+1, resp.StatusCode, body)
		}
	}
	t.Run("SixthAttemptPerEmailIs429", func(t *testing.T) {
		resp, body := login(b, "203.0.113.99", "ada@example.com", "correct horse battery")
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("after 5 failures: %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		if !strings.Contains(body, "Too many failed log-in attempts") {
			t.Fatalf("429 page does not explain itself:\n%s", body)
		}
	})
	t.Run("PerIP", func(t *testing.T) {
		for i := range auth.MaxFailuresPerIP {
			login(b, "198.51.100.1", fmt.Sprintf("nobody%d@example.com", i), "wrong password")
		}
		resp, _ := login(b, "198.51.100.1", "someone@example.com", "wrong password")
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("attempt %d from one IP: %d, want 429", auth.MaxFailuresPerIP+1, resp.StatusCode)
		}
		resp, _ = login(b, "198.51.100.2", "someone@example.com", "wrong password")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("another IP, another email: %d, want 401", resp.StatusCode)
		}
	})
}

func TestKeyCreationBadInputs(t *testing.T) {
	inst := servertest.Start(t, nil)
	b := inst.NewBrowser(t)
	b.SignUp("ada@example.com", "correct horse battery")
	runFormCases(t, b, "/dashboard/keys", "/dashboard/keys", []formCase{
		{"UnverifiedEmail", url.Values{"name": {"early"}}, "", 403, "Verify your email address first"},
	})
	inst.VerifyEmail(t, "ada@example.com")
	runFormCases(t, b, "/dashboard/keys", "/dashboard/keys", []formCase{
		{"EmptyName", url.Values{"name": {""}}, "", 400, "give the key a name"},
		{"BlankName", url.Values{"name": {"   "}}, "", 400, "give the key a name"},
		{"TooLongName", url.Values{"name": {strings.Repeat("n", 101)}}, "", 400, "at most 100 characters"},
		{"ControlCharacters", url.Values{"name": {"a\x07b"}}, "", 400, "must be printable text"},
		{"MissingCSRF", url.Values{"name": {"ok"}}, "none", 403, csrfMessage},
		{"WrongCSRF", url.Values{"name": {"ok"}}, "nope", 403, csrfMessage},
		{"First", url.Values{"name": {"one"}}, "", 303, "Copy it now"},
		{"Second", url.Values{"name": {"two"}}, "", 303, "Copy it now"},
		{"OverFreeCap", url.Values{"name": {"three"}}, "", 403, "The Free plan allows 2 active API keys"},
	})
	t.Run("NoKeyShownAfterwards", func(t *testing.T) {
		_, body := b.Get("/dashboard/keys")
		if servertest.KeyRe.MatchString(body) {
			t.Fatalf("the keys page shows a whole key after creation")
		}
	})
	t.Run("LoggedOutIsSentToLogin", func(t *testing.T) {
		anon := inst.NewBrowser(t)
		resp, _ := anon.Submit("/login", "/dashboard/keys", url.Values{"name": {"x"}})
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("anonymous key creation: %d to %q, want 303 to /login", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
}

func TestLogInReturnsToThePageThatAskedForIt(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, "free")
	b := inst.NewBrowser(t)
	resp, err := b.Client.Get(inst.URL + "/dashboard/usage")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || loc != "/login?next=%2Fdashboard%2Fusage" {
		t.Fatalf("logged out: %d to %q", resp.StatusCode, loc)
	}
	_, page := b.Get(loc)
	if !strings.Contains(page, `action="/login?next=%2Fdashboard%2Fusage"`) {
		t.Fatalf("the log-in form drops the destination:\n%s", page)
	}
	resp, body := b.Post("/login?next=%2Fdashboard%2Fusage", url.Values{
		"_csrf": {b.CSRF(loc)}, "email": {acct.Email}, "password": {"correct horse battery"},
	})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/usage" {
		t.Fatalf("log in: %d to %q: %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	t.Run("ForeignDestinationIsDropped", func(t *testing.T) {
		_, page := inst.NewBrowser(t).Get("/login?next=" + url.QueryEscape("//evil.example/dashboard"))
		if strings.Contains(page, "evil.example") || !strings.Contains(page, `action="/login"`) {
			t.Fatalf("a foreign destination reached the form:\n%s", page)
		}
	})
}
