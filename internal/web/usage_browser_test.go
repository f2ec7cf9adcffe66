package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// chartFacts is what the test reads off the rendered usage chart.
type chartFacts struct {
	Bars          int     `json:"bars"`
	LastDay       string  `json:"lastDay"`
	LastRequests  string  `json:"lastRequests"`
	LastBillable  string  `json:"lastBillable"`
	TotalHeight   float64 `json:"totalHeight"`
	BillHeight    float64 `json:"billHeight"`
	EmptyHeight   float64 `json:"emptyHeight"`
	ChartWidth    float64 `json:"chartWidth"`
	KeyTable      string  `json:"keyTable"`
	EndpointTable string  `json:"endpointTable"`
	StatusTable   string  `json:"statusTable"`
}

const readChart = `(() => {
	const svg = document.querySelector('[data-testid=usage-chart]');
	const bars = [...svg.querySelectorAll('g.bar')];
	const last = bars[bars.length - 1];
	const box = (g, cls) => { const r = g.querySelector('rect.' + cls); return r ? r.getBBox().height : 0; };
	return {
		bars: bars.length,
		lastDay: last.dataset.day,
		lastRequests: last.dataset.requests,
		lastBillable: last.dataset.billable,
		totalHeight: box(last, 'total'),
		billHeight: box(last, 'billable'),
		emptyHeight: box(bars[0], 'total'),
		chartWidth: svg.getBoundingClientRect().width,
		keyTable: document.querySelector('[data-testid=usage-by-key]').innerText,
		endpointTable: document.querySelector('[data-testid=usage-by-endpoint]').innerText,
		statusTable: document.querySelector('[data-testid=usage-by-status]').innerText,
	};
})()`

// TestBrowserUsagePage makes real API requests, logs in through the form in
// Chromium and checks that the usage page draws them: one bar per day, today's
// bar as tall as its traffic, and the breakdowns by key, endpoint and status.
func TestBrowserUsagePage(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	for i := 0; i < 3; i++ {
		call(t, inst, "POST", "/v1/search", acct.Key, `{"query":"tides"}`, http.StatusOK)
	}
	call(t, inst, "GET", "/v1/me", acct.Key, "", http.StatusOK)
	call(t, inst, "GET", "/v1/me", acct.Key, "", http.StatusOK)
	call(t, inst, "POST", "/v1/search", acct.Key, `{"query":""}`, http.StatusBadRequest)
	// The roll-up trails requests by up to a second.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := inst.Server.Pool().QueryRow(t.Context(), "SELECT coalesce(sum(requests), 0) FROM usage_daily WHERE workspace_id = $1", acct.WorkspaceID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("roll-up holds %d requests, want 6", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	ctx := servertest.NewChrome(t, 60*time.Second)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(inst.URL+"/login"),
		chromedp.SendKeys(chromedp.CSS(`#email`), acct.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), "correct horse battery"),
		chromedp.Click(chromedp.CSS(`form[action^="/login"] button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=workspace-name]`)),
		chromedp.Navigate(inst.URL+"/dashboard/usage"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=usage-chart]`)),
	); err != nil {
		t.Fatalf("log in and open the usage page: %v", err)
	}
	servertest.Shot(t, ctx, "usage")
	f, err := chromedp.Run(ctx, chromedp.Evaluate[chartFacts](readChart))
	if err != nil {
		t.Fatal(err)
	}
	if f.Bars != 30 || f.LastDay != time.Now().UTC().Format(time.DateOnly) || f.LastRequests != "6" || f.LastBillable != "3" {
		t.Fatalf("chart %+v: want 30 days ending today with 6 requests, 3 billable", f)
	}
	// Drawn, not just present: today's bar has height, the billable part is half
	// of it, and an empty day has none.
	if f.TotalHeight <= 0 || f.BillHeight <= 0 || f.BillHeight*2 > f.TotalHeight+1 || f.EmptyHeight != 0 || f.ChartWidth < 300 {
		t.Fatalf("chart geometry %+v", f)
	}
	if !strings.Contains(f.KeyTable, "test key") || !strings.Contains(f.EndpointTable, "POST /v1/search") ||
		!strings.Contains(f.StatusTable, "400") || !strings.Contains(f.StatusTable, "200") {
		t.Fatalf("breakdowns:\n%s\n%s\n%s", f.KeyTable, f.EndpointTable, f.StatusTable)
	}
	requests, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=requests-used]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(strings.TrimSpace(requests), "3") {
		t.Fatalf("billable this month shows %q, want 3", requests)
	}
}

func call(t *testing.T, inst *servertest.Instance, method, path, key, body string, want int) {
	t.Helper()
	resp := inst.Do(t, method, path, key, body)
	b := servertest.ReadBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
}
