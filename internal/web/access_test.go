package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestRolesAreEnforcedByTheServer gives a second person the viewer role in a
// workspace (and no other) and checks that reading works, that a change is refused
// with a page naming the role it needs, and that nothing changed.
func TestRolesAreEnforcedByTheServer(t *testing.T) {
	inst := servertest.Start(t, nil)
	owner := inst.NewAccount(t, plan.Enterprise)
	viewer := inst.NewAccount(t, plan.Free)
	ctx := context.Background()
	pool := inst.Server.Pool()
	if _, err := pool.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1`, viewer.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, 'viewer')`, owner.WorkspaceID, viewer.UserID); err != nil {
		t.Fatal(err)
	}
	b := inst.NewBrowser(t)
	b.LogIn(viewer.Email, servertest.Password)

	t.Run("ViewerReadsDocuments", func(t *testing.T) {
		if status, _ := b.Get("/dashboard/documents"); status != http.StatusOK {
			t.Fatalf("GET /dashboard/documents: %d, want 200", status)
		}
	})
	t.Run("ViewerSeesNoControlsTheServerWouldRefuse", func(t *testing.T) {
		if r := inst.Do(t, "POST", "/v1/documents", owner.Key, `{"documents":[{"id":"shown","text":"A document to read."}]}`); r.StatusCode != http.StatusOK {
			t.Fatalf("store: %d", r.StatusCode)
		}
		b.SwitchTo(owner.WorkspaceID)
		_, docs := b.Get("/dashboard/documents")
		if !strings.Contains(docs, "shown") || strings.Contains(docs, `action="/dashboard/documents/delete"`) {
			t.Fatalf("a viewer's Documents page offers deleting (or lacks the document): %.2000s", docs)
		}
		_, overview := b.Get("/dashboard")
		if strings.Contains(overview, `href="/dashboard/keys"`) || !strings.Contains(overview, `data-testid="viewer-note"`) {
			t.Fatalf("a viewer's overview offers API keys: %.2000s", overview)
		}
		for _, hidden := range []string{`href="/dashboard/billing"`, `href="/dashboard/audit"`} {
			if strings.Contains(overview, hidden) {
				t.Errorf("a viewer's sidebar links %s", hidden)
			}
		}
	})
	t.Run("ViewerCannotOpenKeys", func(t *testing.T) {
		status, page := b.Get("/dashboard/keys")
		if status != http.StatusForbidden || !strings.Contains(page, "needs the member role") {
			t.Fatalf("GET /dashboard/keys: %d, want 403 naming the member role: %.400s", status, page)
		}
	})
	t.Run("ViewerCannotCreateKeys", func(t *testing.T) {
		resp, page := b.Submit("/dashboard/documents", "/dashboard/keys", url.Values{"name": {"sneaky"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "needs the member role") {
			t.Fatalf("POST /dashboard/keys: %d, want 403 naming the member role: %.400s", resp.StatusCode, page)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE workspace_id = $1 AND name = 'sneaky'`, owner.WorkspaceID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a refused POST created %d keys (err %v)", n, err)
		}
	})
	t.Run("ViewerCannotChooseTheEmbedder", func(t *testing.T) {
		if status, page := b.Get("/dashboard/settings/embedder"); status != http.StatusForbidden || !strings.Contains(page, "needs the admin role") {
			t.Fatalf("GET /dashboard/settings/embedder: %d, want 403 naming the admin role: %.400s", status, page)
		}
		resp, page := b.Submit("/dashboard/documents", "/dashboard/settings/embedder", url.Values{"provider": {"builtin"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "needs the admin role") {
			t.Fatalf("POST /dashboard/settings/embedder: %d, want 403 naming the admin role: %.400s", resp.StatusCode, page)
		}
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM workspace_embedders WHERE workspace_id = $1`, owner.WorkspaceID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("a refused POST stored %d embedder rows (err %v)", n, err)
		}
	})
	t.Run("ViewerCannotOpenBilling", func(t *testing.T) {
		status, page := b.Get("/dashboard/billing")
		if status != http.StatusForbidden || !strings.Contains(page, "needs the member role") {
			t.Fatalf("GET /dashboard/billing: %d, want 403 naming the member role: %.400s", status, page)
		}
	})
}

// TestDashboardChangesAreAuditedWithTheirActor creates and revokes a key from the
// dashboard and finds both in the audit log with the person, their address and
// browser.
func TestDashboardChangesAreAuditedWithTheirActor(t *testing.T) {
	inst := servertest.Start(t, nil)
	acct := inst.NewAccount(t, plan.Pro)
	b := inst.NewBrowser(t)
	b.LogIn(acct.Email, servertest.Password)
	if resp, page := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"audited"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create key: %d %.300s", resp.StatusCode, page)
	}
	var kind, ip, ua, target string
	err := inst.Server.Pool().QueryRow(context.Background(), `
		SELECT actor_kind, ip, user_agent, target_id FROM audit_log
		WHERE workspace_id = $1 AND action = 'api_key.created' AND actor_user_id = $2 AND detail->>'name' = 'audited'`,
		acct.WorkspaceID, acct.UserID).Scan(&kind, &ip, &ua, &target)
	if err != nil {
		t.Fatalf("no audit row for the dashboard's key: %v", err)
	}
	if kind != "user" || ip != "127.0.0.1" || !strings.Contains(ua, "Go-http-client") || target == "" {
		t.Fatalf("audit row: kind %q ip %q user agent %q target %q", kind, ip, ua, target)
	}
}
