package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func TestDocumentsPage(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[
		{"id":"tea/1","title":"Green tea","url":"https://example.com/tea","text":"Green tea steeps for two minutes at 80 degrees."},
		{"id":"bread","title":"Bread","text":"Sourdough needs a lively starter."}]}`)
	if body := servertest.ReadBody(t, resp); resp.StatusCode != 200 {
		t.Fatalf("store: %d %s", resp.StatusCode, body)
	}
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, "correct horse battery")

	t.Run("ListsTheWorkspacesDocuments", func(t *testing.T) {
		status, page := b.Get("/dashboard/documents")
		if status != 200 || !strings.Contains(page, "Green tea") || !strings.Contains(page, `data-document-id="bread"`) || !strings.Contains(page, "2 of 50,000") {
			t.Fatalf("status %d:\n%s", status, page)
		}
	})
	t.Run("HtmxSearchReturnsTheResultsBlock", func(t *testing.T) {
		req, _ := http.NewRequest("GET", inst.URL+"/dashboard/documents/search?q="+url.QueryEscape("how long does tea steep"), nil)
		req.Header.Set("HX-Request", "true")
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(strings.TrimSpace(body), `<div id="search-results"`) || !strings.Contains(body, "two minutes") {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("HostileSearchIsExplainedNotA500", func(t *testing.T) {
		for q, want := range map[string]string{
			"tea\x00":                    "must not contain NUL characters",
			"tea\xff":                    "must be valid UTF-8",
			strings.Repeat("tea ", 1001): "at most 4000 characters",
		} {
			status, page := b.Get("/dashboard/documents/search?q=" + url.QueryEscape(q))
			if status != 200 || !strings.Contains(page, want) {
				t.Fatalf("query %.20q: status %d, want 200 saying %q", q, status, want)
			}
		}
	})
	t.Run("DeletingAnImpossibleIDIs404", func(t *testing.T) {
		for _, id := range []string{"a\x00b", "a\xffb", strings.Repeat("i", 300)} {
			resp, _ := b.Submit("/dashboard/documents", "/dashboard/documents/delete", url.Values{"id": {id}})
			if resp.StatusCode != 404 {
				t.Fatalf("delete %.20q: status %d, want 404", id, resp.StatusCode)
			}
		}
	})
	t.Run("AnotherUserCannotDelete", func(t *testing.T) {
		other := inst.NewAccount(t, plan.Pro)
		ob := inst.NewBrowser(t)
		ob.LogIn(other.Email, "correct horse battery")
		resp, _ := ob.Submit("/dashboard/documents", "/dashboard/documents/delete", url.Values{"id": {"bread"}})
		if resp.StatusCode != 404 {
			t.Fatalf("status %d, want 404", resp.StatusCode)
		}
		if r := inst.Do(t, "GET", "/v1/documents/bread", acct.Key, ""); r.StatusCode != 200 {
			t.Fatalf("the owner's document is gone: %d", r.StatusCode)
		}
	})
	t.Run("DeleteRemovesItEverywhere", func(t *testing.T) {
		resp, _ := b.Submit("/dashboard/documents", "/dashboard/documents/delete", url.Values{"id": {"tea/1"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if r := inst.Do(t, "GET", "/v1/documents/"+url.PathEscape("tea/1"), acct.Key, ""); r.StatusCode != 404 {
			t.Fatalf("deleted document still served: %d", r.StatusCode)
		}
		_, page := b.Get("/dashboard/documents")
		if strings.Contains(page, "Green tea") || !strings.Contains(page, "Deleted") {
			t.Fatalf("page after delete:\n%s", page)
		}
	})
}

func TestDashboardSearchFollowsThePlansRate(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_RATE_PER_MINUTE": "3"})
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, "correct horse battery")
	for i := range 3 {
		if status, page := b.Get("/dashboard/documents/search?q=tea"); status != 200 || strings.Contains(page, "Too many searches") {
			t.Fatalf("search %d within the rate: %d", i+1, status)
		}
	}
	status, page := b.Get("/dashboard/documents/search?q=tea")
	if status != 200 || !strings.Contains(page, "Too many searches this minute for the Free plan") {
		t.Fatalf("search over the rate: %d, no rate-limit message:\n%s", status, page)
	}
}

func TestDashboardSearchCountsAgainstTheMonthlyQuota(t *testing.T) {
	inst := servertest.Start(t, map[string]string{"CAIRN_PLAN_FREE_REQUESTS_PER_MONTH": "3", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "100000"})

	t.Run("FreeWorkspaceStopsAtItsQuota", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Free)
		if resp := inst.Do(t, "POST", "/v1/documents", acct.Key, `{"documents":[{"text":"Green tea steeps for two minutes."}]}`); resp.StatusCode != 200 {
			t.Fatalf("store: %d", resp.StatusCode)
		}
		b := inst.NewBrowser(t)
		b.LogIn(acct.Email, servertest.Password)
		if _, page := b.Get("/dashboard/documents/search?q=" + url.QueryEscape("tea\x00")); !strings.Contains(page, "NUL") {
			t.Fatal("a malformed query was not refused")
		}
		if status, page := b.Get("/dashboard/documents/search?q=tea"); status != 200 || !strings.Contains(page, "two minutes") {
			t.Fatalf("search within the quota: %d, no result", status)
		}
		if n := usedRequests(t, inst, acct.Key); n != 2 {
			t.Fatalf("used = %d after one stored batch, a refused and a good dashboard search; want 2", n)
		}
		if resp := inst.Do(t, "POST", "/v1/search", acct.Key, `{"query":"tea"}`); resp.StatusCode != 200 {
			t.Fatalf("the third billable request: %d", resp.StatusCode)
		}
		for range 5 {
			status, page := b.Get("/dashboard/documents/search?q=tea")
			if status != 200 || strings.Contains(page, "two minutes") || !strings.Contains(page, "used its 3 billable requests") {
				t.Fatalf("search over the quota: %d, want the quota message and no results:\n%s", status, page)
			}
		}
		if n := usedRequests(t, inst, acct.Key); n != 3 {
			t.Fatalf("used = %d after searches over the quota, want it to stay 3", n)
		}
	})

	t.Run("UnlimitedWorkspaceSeesItsSearchesInItsUsage", func(t *testing.T) {
		acct := inst.NewAccount(t, plan.Pro)
		b := inst.NewBrowser(t)
		b.LogIn(acct.Email, servertest.Password)
		for range 2 {
			b.Get("/dashboard/documents/search?q=tea")
		}
		deadline := time.Now().Add(5 * time.Second)
		for usedRequests(t, inst, acct.Key) != 2 {
			if time.Now().After(deadline) {
				t.Fatalf("used = %d, want the 2 dashboard searches", usedRequests(t, inst, acct.Key))
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, page := b.Get("/dashboard/usage"); !strings.Contains(page, "Dashboard") {
			t.Fatal("the usage page does not show the dashboard's searches")
		}
	})
}

func TestDocumentsPageRefusesAForgedCursor(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Free)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	// The timestamp in this cursor is out of PostgreSQL's range.
	status, page := b.Get("/dashboard/documents?cursor=__________9_eno")
	if status != http.StatusBadRequest || !strings.Contains(page, "cursor") {
		t.Fatalf("status %d, want 400 naming the cursor:\n%.500s", status, page)
	}
}
