package web_test

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/web"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// TestEveryRouteForEveryRole walks the running server's own routes and calls each
// as the owner, an admin, a member and a viewer of an Enterprise workspace, as a
// person who belongs to it not at all, and as a member removed a moment before.
// A role below the route's rule gets 403 naming the role it needs and changes
// nothing; a role at or above it is let through. The outsider, given the
// workspace's real ids, changes nothing in it; the removed member is refused on
// the very next request. A route added without a rule fails here.
func TestEveryRouteForEveryRole(t *testing.T) {
	inst := servertest.Start(t, nil)
	ctx := context.Background()
	pool := inst.Server.Pool()
	owner := inst.NewAccount(t, plan.Enterprise)
	ws := owner.WorkspaceID
	accounts := map[string]servertest.Account{workspace.RoleOwner: owner}
	browsers := map[string]*servertest.Browser{}
	for _, role := range []string{workspace.RoleAdmin, workspace.RoleMember, workspace.RoleViewer} {
		acct := inst.NewAccount(t, plan.Free)
		inst.Join(t, acct, ws, role)
		accounts[role] = acct
	}
	open := func(role string) {
		b := inst.NewBrowser(t)
		b.LogIn(accounts[role].Email, servertest.Password)
		if role != workspace.RoleOwner {
			b.SwitchTo(ws)
		}
		browsers[role] = b
	}
	for role := range accounts {
		open(role)
	}
	outsider := inst.NewAccount(t, plan.Enterprise)
	outsiderBrowser := inst.NewBrowser(t)
	outsiderBrowser.LogIn(outsider.Email, servertest.Password)
	removed := inst.NewAccount(t, plan.Free)
	removedBrowser := inst.NewBrowser(t)
	removedBrowser.LogIn(removed.Email, servertest.Password)

	// The workspace's real objects, which the outsider is pointed at.
	if r := inst.Do(t, "POST", "/v1/documents", owner.Key, `{"documents":[{"id":"kept","text":"Something the team keeps."}]}`); r.StatusCode != 200 {
		t.Fatalf("store a document: %d %s", r.StatusCode, servertest.ReadBody(t, r))
	}
	var memberKeyID, invitationID uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT id FROM api_keys WHERE workspace_id = $1 AND created_by = $2`, ws, accounts[workspace.RoleMember].UserID).Scan(&memberKeyID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO invitations (workspace_id, email, role, expires_at) VALUES ($1, 'pending@example.com', 'member', now() + interval '7 days') RETURNING id`, ws).Scan(&invitationID); err != nil {
		t.Fatal(err)
	}
	real := map[string]string{
		"/dashboard/keys/:id":           memberKeyID.String(),
		"/dashboard/team/invitations/:": invitationID.String(),
		"/dashboard/workspaces/:id":     ws.String(),
		":user_id":                      accounts[workspace.RoleMember].UserID.String(),
	}
	// state sums up everything a request could change in the workspace.
	state := func() string {
		var s string
		err := pool.QueryRow(ctx, `SELECT
			(SELECT string_agg(user_id::text || ':' || role || ':' || (suspended_at IS NULL)::text, ',' ORDER BY user_id) FROM memberships WHERE workspace_id = $1) || '|' ||
			(SELECT count(*) FROM api_keys WHERE workspace_id = $1 AND revoked_at IS NULL) || '|' ||
			(SELECT string_agg(id::text || ':' || coalesce(revoked_at::text, '') || coalesce(accepted_at::text, '') || encode(coalesce(token_hash, ''), 'hex'), ',') FROM invitations WHERE workspace_id = $1) || '|' ||
			(SELECT count(*) FROM documents WHERE workspace_id = $1) || '|' ||
			(SELECT plan FROM workspaces WHERE id = $1)`, ws).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// rejoin puts the fixture's memberships back after a request that may have
	// ended one (a role leaving the workspace).
	rejoin := func(role string) {
		if _, err := pool.Exec(ctx, `INSERT INTO memberships (workspace_id, user_id, role) VALUES ($1, $2, $3)
			ON CONFLICT (workspace_id, user_id) DO UPDATE SET role = excluded.role`, ws, accounts[role].UserID, role); err != nil {
			t.Fatal(err)
		}
	}

	var routes []*echo.Route
	for _, r := range inst.Server.Handler().(*echo.Echo).Routes() {
		if r.Method == echo.RouteNotFound || strings.HasPrefix(r.Path, "/v1") || strings.HasPrefix(r.Path, "/webhooks/") ||
			strings.HasPrefix(r.Path, "/static") || !strings.HasPrefix(r.Path, "/") || isOpsPath(r.Path) {
			continue
		}
		routes = append(routes, r)
	}
	sort.Slice(routes, func(i, j int) bool { return routes[i].Method+routes[i].Path < routes[j].Method+routes[j].Path })
	if len(routes) < 25 {
		t.Fatalf("walked only %d dashboard routes", len(routes))
	}

	// What the roles are for, as the product promises it: the table may be
	// stricter, never looser.
	policy := map[string]string{
		"POST /dashboard/billing/checkout":             workspace.RoleOwner,
		"POST /dashboard/billing/portal":               workspace.RoleOwner,
		"POST /dashboard/team/transfer":                workspace.RoleOwner,
		"POST /dashboard/team/invitations":             workspace.RoleAdmin,
		"POST /dashboard/team/invitations/:id/resend":  workspace.RoleAdmin,
		"POST /dashboard/team/invitations/:id/revoke":  workspace.RoleAdmin,
		"POST /dashboard/team/members/:user_id/role":   workspace.RoleAdmin,
		"POST /dashboard/team/members/:user_id/remove": workspace.RoleAdmin,
		"GET /dashboard/audit":                         workspace.RoleAdmin,
		"GET /dashboard/audit.csv":                     workspace.RoleAdmin,
		"GET /dashboard/keys":                          workspace.RoleMember,
		"POST /dashboard/keys":                         workspace.RoleMember,
		"POST /dashboard/documents/delete":             workspace.RoleMember,
	}
	for key, least := range policy {
		if got := web.RouteAccess[key]; workspace.RoleRank(got) < workspace.RoleRank(least) {
			t.Errorf("%s is open to %q; it must need at least %s", key, got, least)
		}
	}

	checks := 0
	for _, r := range routes {
		key := r.Method + " " + r.Path
		rule, ok := web.RouteAccess[key]
		if !ok {
			t.Errorf("%s has no access rule", key)
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			for _, role := range []string{workspace.RoleOwner, workspace.RoleAdmin, workspace.RoleMember, workspace.RoleViewer} {
				before := state()
				status, page := request(t, browsers[role], r.Method, fill(r.Path, nil))
				checks++
				refused := status == http.StatusForbidden && strings.Contains(page, "needs the "+rule+" role")
				mayUse := rule == "anyone" || rule == "signed-in" || workspace.Allows(role, rule)
				switch {
				case mayUse && refused:
					t.Errorf("%s as %s: refused, but the rule is %s: %.300s", key, role, rule, page)
				case !mayUse && !refused:
					t.Errorf("%s as %s: %d, want 403 naming the %s role: %.300s", key, role, status, rule, page)
				case !mayUse && state() != before:
					t.Errorf("%s as %s was refused but changed the workspace", key, role)
				}
				// Put back what an allowed request may have ended.
				if key == "POST /logout" {
					open(role)
				}
				if key == "POST /dashboard/team/leave" && role != workspace.RoleOwner {
					rejoin(role)
					browsers[role].SwitchTo(ws)
				}
			}

			t.Run("NonMember", func(t *testing.T) {
				before := state()
				status, page := request(t, outsiderBrowser, r.Method, fill(r.Path, real))
				checks++
				if state() != before {
					t.Errorf("%s by a non-member given the workspace's ids changed it (%d %.300s)", key, status, page)
				}
				if strings.Contains(page, "Something the team keeps") || strings.Contains(page, accounts[workspace.RoleMember].Email) {
					t.Errorf("%s shows a non-member the workspace's data", key)
				}
				if key == "POST /logout" {
					outsiderBrowser.LogIn(outsider.Email, servertest.Password)
				}
			})

			t.Run("RemovedMember", func(t *testing.T) {
				inst.Join(t, removed, ws, workspace.RoleMember)
				removedBrowser.SwitchTo(ws)
				csrf := removedBrowser.CSRF("/dashboard/team")
				if _, err := pool.Exec(ctx, `DELETE FROM memberships WHERE workspace_id = $1 AND user_id = $2`, ws, removed.UserID); err != nil {
					t.Fatal(err)
				}
				before := state()
				status, page := requestWith(t, removedBrowser, r.Method, fill(r.Path, real), csrf)
				checks++
				refused := status == http.StatusForbidden && strings.Contains(page, "no longer a member")
				if workspaceRule(rule) && !refused {
					t.Errorf("%s by a member removed a moment ago: %d, want 403 saying they are no longer a member: %.300s", key, status, page)
				}
				if state() != before {
					t.Errorf("%s by a removed member changed the workspace", key)
				}
				if key == "POST /logout" {
					removedBrowser.LogIn(removed.Email, servertest.Password)
				}
			})
		})
	}
	t.Logf("%d routes × 6 callers: %d requests checked", len(routes), checks)
}

// isOpsPath reports the operator endpoints that are not dashboard routes.
func isOpsPath(p string) bool {
	switch p {
	case "/healthz", "/readyz", "/health/detailed", "/metrics":
		return true
	}
	return false
}

// workspaceRule reports whether a rule is a role in the current workspace.
func workspaceRule(rule string) bool { return rule != "anyone" && rule != "signed-in" }

// fill puts ids into a route's parameters: random ones (nothing of the
// workspace's is touched), or those of real for paths it names.
func fill(path string, real map[string]string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if !strings.HasPrefix(p, ":") {
			continue
		}
		v := uuid.NewString()
		if p == ":token" {
			v = "not-a-real-token-" + v
		}
		for prefix, id := range real {
			if strings.HasPrefix(path, prefix) || prefix == p {
				v = id
			}
		}
		parts[i] = v
	}
	return strings.Join(parts, "/")
}

func request(t *testing.T, b *servertest.Browser, method, path string) (int, string) {
	t.Helper()
	if method == http.MethodGet {
		return b.Get(path)
	}
	return requestWith(t, b, method, path, b.CSRF("/dashboard/team"))
}

func requestWith(t *testing.T, b *servertest.Browser, method, path, csrf string) (int, string) {
	t.Helper()
	if method == http.MethodGet {
		return b.Get(path)
	}
	resp, page := b.Post(path, url.Values{"_csrf": {csrf}})
	return resp.StatusCode, page
}
