package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestQuotaOnTheDashboard walks a Free workspace with a quota of 5 up to 80 %
// and 100 % and checks the overview's bar and the banners on every page.
func TestQuotaOnTheDashboard(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "5"})
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, "correct horse battery")
	search := func() { call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusOK) }

	_, page := b.Get("/dashboard")
	if !strings.Contains(page, `data-testid="requests-used">0<`) || strings.Contains(page, `class="alert warn"`) {
		t.Fatalf("fresh overview: want 0 used and no banner")
	}
	for i := 0; i < 4; i++ {
		search()
	}
	t.Run("WarnsAt80Percent", func(t *testing.T) {
		_, page := b.Get("/dashboard")
		for _, want := range []string{`data-testid="requests-used">4<`, `/ 5`, `class="progress warn"`, `width:80%`, `class="alert warn"`, "used 4 of its 5 billable API requests this month (80%)"} {
			if !strings.Contains(page, want) {
				t.Errorf("overview at 80%% lacks %q", want)
			}
		}
		if _, keys := b.Get("/dashboard/keys"); !strings.Contains(keys, `class="alert warn"`) {
			t.Error("the banner is not on the keys page")
		}
	})
	search()
	t.Run("FullAt100Percent", func(t *testing.T) {
		_, page := b.Get("/dashboard/usage")
		for _, want := range []string{`class="alert error"`, "used all 5 billable API requests", "Pro plan includes unlimited requests", `class="progress full"`} {
			if !strings.Contains(page, want) {
				t.Errorf("usage page at 100%% lacks %q", want)
			}
		}
	})
	t.Run("OneEmailPerThreshold", func(t *testing.T) {
		// Without SMTP_URL the emails go to the log; one each for 80 % and 100 %,
		// however many requests come after.
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusTooManyRequests)
		deadline := time.Now().Add(10 * time.Second)
		for {
			logs := inst.Logs()
			n80 := strings.Count(logs, "has used 80% of its Cairn API requests for this month")
			n100 := strings.Count(logs, "has used all of its Cairn API requests for this month")
			if n80 > 1 || n100 > 1 {
				t.Fatalf("%d emails at 80 %% and %d at 100 %%, want one each", n80, n100)
			}
			if n80 == 1 && n100 == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d emails at 80 %% and %d at 100 %% after 10 s, want one each", n80, n100)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(inst.Logs(), acct.Email) {
			t.Fatal("the quota email is not addressed to the owner")
		}
	})
	t.Run("UnlimitedPlansHaveNoBar", func(t *testing.T) {
		pro := inst.NewAccount(t, plan.Pro)
		pb := inst.NewBrowser(t)
		pb.LogIn(pro.Email, "correct horse battery")
		_, page := pb.Get("/dashboard")
		if strings.Contains(page, `class="progress`) || strings.Contains(page, `class="alert`) || !strings.Contains(page, "/ Unlimited") {
			t.Fatal("a Pro overview shows a quota bar or banner")
		}
	})
}

func TestUsageCSVExport(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	other := inst.NewAccount(t, plan.Free)
	call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusOK)
	call(t, inst, "GET", "/v1/me", other.Key, "", http.StatusOK)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, "correct horse battery")
	var rows [][]string
	for i := 0; i < 200 && len(rows) < 2; i++ { // the roll-up trails by up to a second
		resp, err := b.Client.Get(inst.URL + "/dashboard/usage.csv")
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("export: Content-Type %q, Content-Disposition %q", ct, resp.Header.Get("Content-Disposition"))
		}
		rows, err = csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) < 2 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(rows) != 2 || rows[0][0] != "day" || rows[1][4] != "POST /v1/search" || rows[1][6] != "1" || rows[1][7] != "1" {
		t.Fatalf("csv = %q, want the header and this workspace's one search", rows)
	}
	t.Run("AFailedReadIsAnErrorPageNotAnEmptyFile", func(t *testing.T) {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, inst.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		// The roll-up table going missing stands in for any failed read.
		if _, err := conn.Exec(ctx, "ALTER TABLE usage_daily RENAME TO usage_daily_away"); err != nil {
			t.Fatal(err)
		}
		defer func() { _, _ = conn.Exec(ctx, "ALTER TABLE usage_daily_away RENAME TO usage_daily") }()
		resp, err := b.Client.Get(inst.URL + "/dashboard/usage.csv")
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode < 500 || strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") || !strings.Contains(body, "<html") {
			t.Fatalf("export with the read failing: %d, Content-Disposition %q; want the error page, not a download", resp.StatusCode, resp.Header.Get("Content-Disposition"))
		}
	})
	t.Run("NeedsALogIn", func(t *testing.T) {
		resp, err := inst.NewBrowser(t).Client.Get(inst.URL + "/dashboard/usage.csv")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("anonymous export: %d, want a redirect to log in", resp.StatusCode)
		}
	})
}

// TestFormsAreRateLimitedPerIP floods the log-in form from one address with good
// credentials (so auth's per-IP failure throttle stays out of it): past the
// per-IP budget the form answers 429 with Retry-After and says to wait.
func TestFormsAreRateLimitedPerIP(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	token := b.CSRF("/login")
	form := url.Values{"_csrf": {token}, "email": {acct.Email}, "password": {"correct horse battery"}}
	var last *http.Response
	var body string
	passed := 0
	// The budget refills one log-in every 2 s, so on a slow machine more than the
	// burst pass; keep going until the limit answers, and bound what may pass by
	// the time taken.
	start := time.Now()
	for i := 0; i < 200; i++ {
		last, body = b.Post("/login", form)
		if last.StatusCode != http.StatusSeeOther {
			break
		}
		passed++
		// Logging in renews the session, and with it the CSRF token.
		form.Set("_csrf", b.CSRF("/dashboard"))
	}
	if last.StatusCode != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" || !strings.Contains(body, "Too many attempts from your network") {
		t.Fatalf("after %d log-ins the form answers %d (Retry-After %q)", passed, last.StatusCode, last.Header.Get("Retry-After"))
	}
	if most := 30 + int(time.Since(start)/(2*time.Second)) + 1; passed < 30 || passed > most {
		t.Fatalf("%d log-ins passed before the limit, want the burst of 30 plus one per 2 s (at most %d)", passed, most)
	}
}

// TestPricingFollowsThePlanTable overrides limits and finds them on the pricing
// cards and in /v1/usage: one table drives both.
func TestPricingFollowsThePlanTable(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "1234", "CAIRN_PLAN_PRO_RATE_PER_MINUTE": "321"})
	_, page := inst.NewBrowser(t).Get("/")
	for _, want := range []string{"1,234 API requests per month", "321 requests per minute per key"} {
		if !strings.Contains(page, want) {
			t.Errorf("pricing lacks %q", want)
		}
	}
	acct := inst.NewAccount(t, plan.Free)
	resp := inst.Do(t, "GET", "/v1/usage", acct.Key, "")
	if body := servertest.ReadBody(t, resp); !strings.Contains(body, `"limit":1234`) {
		t.Errorf("/v1/usage = %s, want the overridden limit", body)
	}
}
