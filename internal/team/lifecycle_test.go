package team_test

import (
	"context"
	"encoding/csv"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// eventually polls check until it returns "" or two seconds pass, the time a
// change has to reach every replica.
func eventually(t *testing.T, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		msg := check()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s after 2s", what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func status(t *testing.T, inst *servertest.Instance, method, path, key, body string) (int, string) {
	t.Helper()
	resp := inst.Do(t, method, path, key, body)
	return resp.StatusCode, servertest.ReadBody(t, resp)
}

// TestDowngradeSuspendsThenUpgradeRestores moves an Enterprise team to Pro and
// back: every member but the owner is suspended (their sessions cannot open the
// workspace, their keys answer 403 plan_limit saying why), nothing is deleted,
// and the upgrade brings back members, roles and keys as they were.
func TestDowngradeSuspendsThenUpgradeRestores(t *testing.T) {
	tm := setup(t, nil)
	ctx := context.Background()
	pool := tm.inst.Server.Pool()
	ws := tm.owner.WorkspaceID
	admin, member := tm.inst.NewAccount(t, plan.Free), tm.inst.NewAccount(t, plan.Free)
	adminKey, memberKey := tm.inst.Join(t, admin, ws, workspace.RoleAdmin), tm.inst.Join(t, member, ws, workspace.RoleMember)
	mb := tm.inst.NewBrowser(t)
	mb.LogIn(member.Email, servertest.Password)
	mb.SwitchTo(ws)
	if s, body := status(t, tm.inst, "POST", "/v1/documents", memberKey, `{"documents":[{"id":"team-doc","text":"Shared notes on tea."}]}`); s != 200 {
		t.Fatalf("store as member: %d %s", s, body)
	}
	snapshot := func() string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT
			(SELECT string_agg(user_id::text || ':' || role, ',' ORDER BY user_id) FROM memberships WHERE workspace_id = $1) || '|' ||
			(SELECT string_agg(id::text, ',' ORDER BY id) FROM api_keys WHERE workspace_id = $1 AND revoked_at IS NULL) || '|' ||
			(SELECT count(*) FROM documents WHERE workspace_id = $1)`, ws).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := snapshot()
	// Warm every cache first: the downgrade must reach keys already verified.
	for _, k := range []string{tm.owner.Key, adminKey, memberKey} {
		if s, body := status(t, tm.inst, "GET", "/v1/me", k, ""); s != 200 {
			t.Fatalf("GET /v1/me: %d %s", s, body)
		}
	}

	wss := workspace.NewService(pool, tm.inst.Config.Plans)
	if err := wss.SetPlan(ctx, ws, plan.Pro, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	t.Run("SuspendedKeysAnswerPlanLimit", func(t *testing.T) {
		for _, k := range []string{adminKey, memberKey} {
			eventually(t, "a suspended member's key", func() string {
				s, body := status(t, tm.inst, "GET", "/v1/me", k, "")
				if s == http.StatusForbidden && strings.Contains(body, `"code":"plan_limit"`) &&
					strings.Contains(body, "suspended") && strings.Contains(body, "the Pro plan allows 1 member") && strings.Contains(body, "upgrading to Enterprise") {
					return ""
				}
				return body
			})
		}
		if s, body := status(t, tm.inst, "POST", "/v1/search", memberKey, `{"query":"tea"}`); s != http.StatusForbidden {
			t.Fatalf("search with a suspended member's key: %d %s", s, body)
		}
	})
	t.Run("OwnerKeepsWorking", func(t *testing.T) {
		if s, body := status(t, tm.inst, "POST", "/v1/search", tm.owner.Key, `{"query":"tea"}`); s != 200 || !strings.Contains(body, "team-doc") {
			t.Fatalf("owner's search after the downgrade: %d %s", s, body)
		}
	})
	t.Run("SuspendedSessionCannotOpenTheWorkspace", func(t *testing.T) {
		s, page := mb.Get("/dashboard/documents")
		if s != http.StatusForbidden || !strings.Contains(page, "suspended") || strings.Contains(page, "team-doc") {
			t.Fatalf("a suspended member opening the workspace: %d %.500s", s, page)
		}
		resp, page := mb.Submit("/dashboard/settings", "/dashboard/workspaces/"+ws.String()+"/switch", nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "suspended") {
			t.Fatalf("switching back into it: %d %.500s", resp.StatusCode, page)
		}
	})
	t.Run("TeamPageSaysSo", func(t *testing.T) {
		_, page := tm.b.Get("/dashboard/team")
		if !strings.Contains(page, "2 members are suspended because the Pro plan allows 1 member") || !strings.Contains(page, "Nothing was deleted") {
			t.Fatalf("the Team page after the downgrade: %.3000s", page)
		}
	})
	t.Run("NothingDeleted", func(t *testing.T) {
		if after := snapshot(); after != before {
			t.Fatalf("the downgrade changed members, keys or documents:\nbefore %s\nafter  %s", before, after)
		}
	})

	if err := wss.SetPlan(ctx, ws, plan.Enterprise, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	t.Run("UpgradeRestoresKeys", func(t *testing.T) {
		for _, k := range []string{adminKey, memberKey} {
			eventually(t, "a restored member's key", func() string {
				if s, body := status(t, tm.inst, "GET", "/v1/me", k, ""); s != 200 {
					return body
				}
				return ""
			})
		}
		_, m, _ := me(t, tm.inst, adminKey)
		if m.Role != workspace.RoleAdmin || m.Workspace.Plan != "enterprise" {
			t.Fatalf("the admin's key after the upgrade: %+v", m)
		}
	})
	t.Run("UpgradeRestoresSessions", func(t *testing.T) {
		mb.SwitchTo(ws)
		s, page := mb.Get("/dashboard/documents")
		if s != 200 || !strings.Contains(page, "team-doc") {
			t.Fatalf("the member back in the workspace: %d %.500s", s, page)
		}
		if after := snapshot(); after != before {
			t.Fatalf("members, keys or documents differ after the round trip:\nbefore %s\nafter  %s", before, after)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action IN ('members.suspended', 'members.restored')`, ws).Scan(&n); err != nil || n != 2 {
			t.Fatalf("%d suspension entries, want 2 (%v)", n, err)
		}
	})
}

// TestRemovalReachesEveryReplica removes a member through one replica and checks
// that their key and their session are refused through both within two seconds,
// that GET /v1/me named them as the key's creator before, and that a demoted
// member's key reads but no longer writes.
func TestRemovalReachesEveryReplica(t *testing.T) {
	tm := setup(t, nil)
	other := servertest.StartOn(t, tm.inst.DatabaseURL, map[string]string{"SMTP_URL": tm.mail.SMTPURL()})
	ws := tm.owner.WorkspaceID
	member := tm.inst.NewAccount(t, plan.Free)
	key := tm.inst.Join(t, member, ws, workspace.RoleMember)
	replicas := []*servertest.Instance{tm.inst, other}

	for _, r := range replicas {
		s, m, body := me(t, r, key)
		if s != 200 || m.Role != workspace.RoleMember || m.Key.CreatedBy == nil || m.Key.CreatedBy.Email != member.Email ||
			m.Key.CreatedBy.ID != member.UserID.String() || m.Workspace.ID != ws.String() {
			t.Fatalf("GET /v1/me through %s: %d %s", r.URL, s, body)
		}
	}
	t.Run("OperatorKeyHasNoCreator", func(t *testing.T) {
		created, err := apikey.NewService(tm.inst.Server.Pool(), tm.inst.Config.Plans, slog.New(slog.DiscardHandler)).Create(context.Background(), ws, nil, "ci")
		if err != nil {
			t.Fatal(err)
		}
		s, m, body := me(t, tm.inst, created.Secret)
		if s != 200 || m.Key.CreatedBy != nil || m.Role != workspace.RoleOwner || !strings.Contains(body, `"created_by":null`) {
			t.Fatalf("GET /v1/me with an operator's key: %d %s", s, body)
		}
	})

	t.Run("DemotedToViewerReadsButCannotWrite", func(t *testing.T) {
		resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/members/"+member.UserID.String()+"/role", url.Values{"role": {"viewer"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("change role: %d %.300s", resp.StatusCode, page)
		}
		for _, r := range replicas {
			eventually(t, "the demotion on "+r.URL, func() string {
				if _, m, body := me(t, r, key); m.Role != workspace.RoleViewer {
					return body
				}
				return ""
			})
		}
		if s, body := status(t, other, "POST", "/v1/documents", key, `{"documents":[{"text":"sneaky"}]}`); s != http.StatusForbidden || !strings.Contains(body, "viewer") {
			t.Fatalf("a viewer's key writing: %d %s", s, body)
		}
		if s, body := status(t, other, "GET", "/v1/documents", key, ""); s != 200 {
			t.Fatalf("a viewer's key reading: %d %s", s, body)
		}
		resp, page = tm.b.Submit("/dashboard/team", "/dashboard/team/members/"+member.UserID.String()+"/role", url.Values{"role": {"member"}})
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("change role back: %d %.300s", resp.StatusCode, page)
		}
	})

	mb := other.NewBrowser(t)
	mb.LogIn(member.Email, servertest.Password)
	mb.SwitchTo(ws)
	if s, page := mb.Get("/dashboard/documents"); s != 200 {
		t.Fatalf("the member's session before removal: %d %.300s", s, page)
	}
	_, page := tm.b.Get("/dashboard/team")
	if !strings.Contains(page, "member&#39;s key") && !strings.Contains(page, "member's key") {
		t.Fatalf("the removal's confirmation does not list the member's key: %.3000s", page)
	}
	resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/members/"+member.UserID.String()+"/remove", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d %.300s", resp.StatusCode, page)
	}
	for _, r := range replicas {
		eventually(t, "the removed member's key on "+r.URL, func() string {
			if s, body := status(t, r, "GET", "/v1/me", key, ""); s != http.StatusUnauthorized {
				return body
			}
			return ""
		})
	}
	if s, page := mb.Get("/dashboard/documents"); s != http.StatusForbidden || !strings.Contains(page, "no longer a member") {
		t.Fatalf("the removed member's session: %d %.300s", s, page)
	}
	var revoked int
	if err := tm.inst.Server.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'api_key.revoked'`, ws).Scan(&revoked); err != nil || revoked != 1 {
		t.Fatalf("%d key revocations recorded for the removal (%v)", revoked, err)
	}
}

// TestDeletedAccountsKeysStopWorking deletes a member's account outright (as
// account deletion does) and checks that their key is refused on every replica
// within two seconds, rather than living on as a key without a creator.
func TestDeletedAccountsKeysStopWorking(t *testing.T) {
	tm := setup(t, nil)
	other := servertest.StartOn(t, tm.inst.DatabaseURL, nil)
	member := tm.inst.NewAccount(t, plan.Free)
	key := tm.inst.Join(t, member, tm.owner.WorkspaceID, workspace.RoleMember)
	for _, r := range []*servertest.Instance{tm.inst, other} {
		if s, body := status(t, r, "GET", "/v1/me", key, ""); s != 200 {
			t.Fatalf("before: %d %s", s, body)
		}
	}
	if _, err := tm.inst.Server.Pool().Exec(context.Background(), `DELETE FROM users WHERE id = $1`, member.UserID); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*servertest.Instance{tm.inst, other} {
		eventually(t, "a deleted account's key on "+r.URL, func() string {
			if s, body := status(t, r, "GET", "/v1/me", key, ""); s != http.StatusUnauthorized {
				return body
			}
			return ""
		})
	}
}

// TestOwnershipAndLeaving: the last owner can neither leave nor be demoted; the
// owner transfers ownership and becomes an admin; then the old owner can leave.
func TestOwnershipAndLeaving(t *testing.T) {
	tm := setup(t, nil)
	ws := tm.owner.WorkspaceID
	admin := tm.inst.NewAccount(t, plan.Free)
	tm.inst.Join(t, admin, ws, workspace.RoleAdmin)
	ab := tm.inst.NewBrowser(t)
	ab.LogIn(admin.Email, servertest.Password)
	ab.SwitchTo(ws)

	resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/leave", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "only owner") {
		t.Fatalf("the last owner leaving: %d %.500s", resp.StatusCode, page)
	}
	resp, page = ab.Submit("/dashboard/team", "/dashboard/team/members/"+tm.owner.UserID.String()+"/role", url.Values{"role": {"member"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("an admin demoting the owner: %d %.500s", resp.StatusCode, page)
	}
	resp, page = ab.Submit("/dashboard/team", "/dashboard/team/members/"+tm.owner.UserID.String()+"/remove", nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "cannot be removed") {
		t.Fatalf("an admin removing the owner: %d %.500s", resp.StatusCode, page)
	}
	resp, page = ab.Submit("/dashboard/team", "/dashboard/team/transfer", url.Values{"user_id": {admin.UserID.String()}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "needs the owner role") {
		t.Fatalf("an admin transferring ownership: %d %.500s", resp.StatusCode, page)
	}

	resp, page = tm.b.Submit("/dashboard/team", "/dashboard/team/transfer", url.Values{"user_id": {admin.UserID.String()}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("transfer: %d %.500s", resp.StatusCode, page)
	}
	roles := map[uuid.UUID]string{}
	rows, err := tm.inst.Server.Pool().Query(context.Background(), `SELECT user_id, role FROM memberships WHERE workspace_id = $1`, ws)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id uuid.UUID
		var role string
		if err := rows.Scan(&id, &role); err != nil {
			t.Fatal(err)
		}
		roles[id] = role
	}
	if roles[admin.UserID] != workspace.RoleOwner || roles[tm.owner.UserID] != workspace.RoleAdmin {
		t.Fatalf("roles after the transfer: %v", roles)
	}
	// The old owner, now an admin, may leave; the new owner may not.
	resp, page = ab.Submit("/dashboard/team", "/dashboard/team/leave", nil)
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("the new (only) owner leaving: %d %.300s", resp.StatusCode, page)
	}
	resp, page = tm.b.Submit("/dashboard/team", "/dashboard/team/leave", nil)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "your only workspace") {
		t.Fatalf("leaving one's only workspace: %d %.300s", resp.StatusCode, page)
	}
	elsewhere := tm.inst.NewAccount(t, plan.Free)
	tm.inst.Join(t, tm.owner, elsewhere.WorkspaceID, workspace.RoleMember)
	resp, page = tm.b.Submit("/dashboard/team", "/dashboard/team/leave", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the old owner leaving: %d %s", resp.StatusCode, page[strings.Index(page, "<h1>"):])
	}
	var still int
	if err := tm.inst.Server.Pool().QueryRow(context.Background(), `SELECT count(*) FROM memberships WHERE workspace_id = $1 AND user_id = $2`, ws, tm.owner.UserID).Scan(&still); err != nil || still != 0 {
		t.Fatalf("the old owner is still a member after leaving (%d, %v)", still, err)
	}
	if s, _ := tm.b.Get("/dashboard"); s != 200 {
		t.Fatalf("after leaving, the dashboard answers %d", s)
	}
}

// TestEveryListedActionIsAudited performs each action the issue lists (those of
// this workspace's team; the billing portal is checked by the billing tests) and
// finds its entry on the audit page, through its filters and in the CSV export.
func TestEveryListedActionIsAudited(t *testing.T) {
	tm := setup(t, nil)
	ctx := context.Background()
	pool := tm.inst.Server.Pool()
	ws := tm.owner.WorkspaceID

	// Log-ins: a failed one and a good one, through the form.
	lb := tm.inst.NewBrowser(t)
	if resp, _ := lb.Submit("/login", "/login", url.Values{"email": {tm.owner.Email}, "password": {"not the password"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	lb.LogIn(tm.owner.Email, servertest.Password)
	// Keys, from the dashboard.
	if resp, _ := tm.b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"audited key"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	var keyID uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT id FROM api_keys WHERE workspace_id = $1 AND name = 'audited key'`, ws).Scan(&keyID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := tm.b.Submit("/dashboard/keys", "/dashboard/keys/"+keyID.String()+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke key: %d", resp.StatusCode)
	}
	// Members: invited, joined, role changed, removed; another joins and leaves.
	link := tm.invite(t, "ida@example.com", "member")
	if s, page := accept(t, tm.inst, link, "ida@example.com", true); s != http.StatusSeeOther {
		t.Fatalf("accept: %d %.300s", s, page)
	}
	var ida uuid.UUID
	if err := pool.QueryRow(ctx, `SELECT id FROM users WHERE email = 'ida@example.com'`).Scan(&ida); err != nil {
		t.Fatal(err)
	}
	if resp, _ := tm.b.Submit("/dashboard/team", "/dashboard/team/members/"+ida.String()+"/role", url.Values{"role": {"admin"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("change role")
	}
	if resp, _ := tm.b.Submit("/dashboard/team", "/dashboard/team/members/"+ida.String()+"/remove", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("remove")
	}
	leaver := tm.inst.NewAccount(t, plan.Free)
	tm.inst.Join(t, leaver, ws, workspace.RoleViewer)
	lvb := tm.inst.NewBrowser(t)
	lvb.LogIn(leaver.Email, servertest.Password)
	lvb.SwitchTo(ws)
	if resp, _ := lvb.Submit("/dashboard/team", "/dashboard/team/leave", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("leave")
	}
	heir := tm.inst.NewAccount(t, plan.Free)
	tm.inst.Join(t, heir, ws, workspace.RoleMember)
	// A document deleted from the dashboard.
	if s, _ := status(t, tm.inst, "POST", "/v1/documents", tm.owner.Key, `{"documents":[{"id":"gone","text":"Soon deleted."}]}`); s != 200 {
		t.Fatal("store")
	}
	if resp, page := tm.b.Submit("/dashboard/documents", "/dashboard/documents/delete", url.Values{"id": {"gone"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete document: %d %.300s", resp.StatusCode, page)
	}
	// Plan changes by the admin command (the system) — and ownership last, while
	// the owner can still read the log as an admin.
	wss := workspace.NewService(pool, tm.inst.Config.Plans)
	if err := wss.SetPlan(ctx, ws, plan.Pro, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := wss.SetPlan(ctx, ws, plan.Enterprise, nil, "admin"); err != nil {
		t.Fatal(err)
	}
	if resp, _ := tm.b.Submit("/dashboard/team", "/dashboard/team/transfer", url.Values{"user_id": {heir.UserID.String()}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatal("transfer")
	}

	want := map[audit.Action]string{ // action → who the page names as actor
		audit.Login: tm.owner.Email, audit.LoginFailed: "anonymous", audit.KeyCreated: tm.owner.Email, audit.KeyRevoked: tm.owner.Email,
		audit.MemberInvited: tm.owner.Email, audit.MemberJoined: "ida@example.com", audit.MemberRoleChanged: tm.owner.Email,
		audit.MemberRemoved: tm.owner.Email, audit.MemberLeft: leaver.Email, audit.OwnershipTransferred: tm.owner.Email,
		audit.PlanChanged: "system", audit.DocumentDeleted: tm.owner.Email,
	}
	for action, actor := range want {
		t.Run(string(action), func(t *testing.T) {
			s, page := tm.b.Get("/dashboard/audit?action=" + url.QueryEscape(string(action)))
			if s != 200 || !strings.Contains(page, `data-action="`+string(action)+`"`) {
				t.Fatalf("the audit page filtered on %s shows no entry: %d %.1500s", action, s, page)
			}
			if strings.Count(page, `data-action="`) != strings.Count(page, `data-action="`+string(action)+`"`) {
				t.Fatalf("the filter on %s lets other actions through", action)
			}
			if !strings.Contains(page, actor) {
				t.Fatalf("the %s entry does not name %s as its actor: %.1500s", action, actor, page)
			}
		})
	}
	t.Run("ActorFilter", func(t *testing.T) {
		// The leaver logged in, left, and their key went with them.
		_, page := tm.b.Get("/dashboard/audit?actor=" + url.QueryEscape(leaver.Email))
		for _, a := range []string{"user.login", "api_key.revoked", "member.left"} {
			if !strings.Contains(page, `data-action="`+a+`"`) {
				t.Errorf("filtering on the leaver lacks their %s", a)
			}
		}
		if n := strings.Count(page, `data-action="`); n != 3 {
			t.Fatalf("filtering on the leaver shows %d entries, want their 3", n)
		}
		_, page = tm.b.Get("/dashboard/audit?actor=system&action=plan.changed")
		// The account's first upgrade to Enterprise, then down and up again.
		if n := strings.Count(page, `data-action="plan.changed"`); n != 3 {
			t.Fatalf("the system's plan changes: %d entries, want 3", n)
		}
	})
	t.Run("DateRange", func(t *testing.T) {
		today := time.Now().UTC().Format(time.DateOnly)
		tomorrow := time.Now().UTC().AddDate(0, 0, 1).Format(time.DateOnly)
		if _, page := tm.b.Get("/dashboard/audit?from=" + today + "&to=" + today); !strings.Contains(page, `data-action="member.joined"`) {
			t.Fatal("today's range lacks today's entries")
		}
		if _, page := tm.b.Get("/dashboard/audit?from=" + tomorrow); strings.Contains(page, `data-action="`) {
			t.Fatal("a range from tomorrow shows entries")
		}
		if s, page := tm.b.Get("/dashboard/audit?from=yesterday"); s != http.StatusBadRequest || !strings.Contains(page, "from: use a date like") {
			t.Fatalf("a bad date: %d %.500s", s, page)
		}
	})
	t.Run("Paging", func(t *testing.T) {
		q := dbq.New(pool)
		for i := range 60 {
			if err := audit.Record(ctx, q, audit.Entry{WorkspaceID: ws, Action: audit.SettingsChanged, Detail: map[string]any{"n": i}}); err != nil {
				t.Fatal(err)
			}
		}
		_, page := tm.b.Get("/dashboard/audit")
		if n := strings.Count(page, `data-action="`); n != audit.PageSize {
			t.Fatalf("first page holds %d entries, want %d", n, audit.PageSize)
		}
		i := strings.Index(page, `data-testid="audit-older"`)
		if i < 0 {
			t.Fatal("no link to older entries")
		}
		href := page[strings.LastIndex(page[:i], `href="`)+6:]
		href = strings.ReplaceAll(href[:strings.Index(href, `"`)], "&amp;", "&")
		_, older := tm.b.Get(href)
		if !strings.Contains(older, `data-action="user.login_failed"`) || strings.Count(older, `data-action="settings.changed"`) != 10 {
			t.Fatalf("the older page does not continue the log: %.1500s", older)
		}
	})
	t.Run("CSV", func(t *testing.T) {
		resp, err := tm.b.Client.Get(tm.inst.URL + "/dashboard/audit.csv?action=member.removed")
		if err != nil {
			t.Fatal(err)
		}
		body := servertest.ReadBody(t, resp)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("CSV: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || len(records) != 2 || records[1][4] != "member.removed" || records[1][7] != "ida@example.com" || records[1][1] != tm.owner.Email {
			t.Fatalf("CSV of removals: %v %q", err, records)
		}
		resp, err = tm.b.Client.Get(tm.inst.URL + "/dashboard/audit.csv")
		if err != nil {
			t.Fatal(err)
		}
		all, _ := csv.NewReader(strings.NewReader(servertest.ReadBody(t, resp))).ReadAll()
		if len(all) < 80 {
			t.Fatalf("the full export holds %d rows", len(all))
		}
	})
	t.Run("HiddenBelowEnterprise", func(t *testing.T) {
		free := tm.inst.NewAccount(t, plan.Free)
		b := tm.inst.NewBrowser(t)
		b.LogIn(free.Email, servertest.Password)
		if _, page := b.Get("/dashboard/audit"); !strings.Contains(page, `data-testid="audit-upgrade"`) || strings.Contains(page, `data-action="`) {
			t.Fatalf("the audit page on Free: %.800s", page)
		}
		if s, _ := b.Get("/dashboard/audit.csv"); s != http.StatusForbidden {
			t.Fatalf("the export on Free: %d", s)
		}
		var kept int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'user.login'`, free.WorkspaceID).Scan(&kept); err != nil || kept != 1 {
			t.Fatalf("the Free workspace's log-in is not kept: %d %v", kept, err)
		}
	})
}
