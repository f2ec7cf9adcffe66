package team_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cairn-dev/cairn/internal/mailtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// team is an Enterprise workspace on a replica that mails through mailpit, with its
// owner logged in.
type team struct {
	inst  *servertest.Instance
	mail  *mailtest.Server
	owner servertest.Account
	b     *servertest.Browser
}

func setup(t *testing.T, env map[string]string) team {
	t.Helper()
	mp := mailtest.Start(t)
	vars := map[string]string{"SMTP_URL": mp.SMTPURL()}
	for k, v := range env {
		vars[k] = v
	}
	inst := servertest.Start(t, vars)
	owner := inst.NewAccount(t, plan.Enterprise)
	b := inst.NewBrowser(t)
	b.LogIn(owner.Email, servertest.Password)
	return team{inst: inst, mail: mp, owner: owner, b: b}
}

// invite invites email from the Team page and returns the link its email carries.
func (tm team) invite(t *testing.T, email, role string) string {
	t.Helper()
	before := len(tm.mail.To(email))
	resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/invitations", url.Values{"email": {email}, "role": {role}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("invite %s: %d %.400s", email, resp.StatusCode, page)
	}
	return tm.nextLink(t, email, before)
}

// nextLink waits for the email to address after the before-th one and returns its
// invitation link.
func (tm team) nextLink(t *testing.T, address string, before int) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if got := tm.mail.To(address); len(got) > before {
			if !strings.Contains(got[0].Subject, "invited") {
				t.Fatalf("email to %s: subject %q", address, got[0].Subject)
			}
			link := got[0].Link(t, "/invitations/")
			u, _ := url.Parse(link)
			return u.Path
		}
		if time.Now().After(deadline) {
			t.Fatalf("no invitation email to %s within 15s", address)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (tm team) invitationID(t *testing.T, email string) uuid.UUID {
	t.Helper()
	var id uuid.UUID
	if err := tm.inst.Server.Pool().QueryRow(context.Background(),
		`SELECT id FROM invitations WHERE workspace_id = $1 AND lower(email) = lower($2) ORDER BY created_at DESC LIMIT 1`,
		tm.owner.WorkspaceID, email).Scan(&id); err != nil {
		t.Fatalf("invitation of %s: %v", email, err)
	}
	return id
}

// members lists the workspace's memberships as "email:role", the state every
// refused acceptance must leave alone.
func (tm team) members(t *testing.T) string {
	t.Helper()
	var s string
	if err := tm.inst.Server.Pool().QueryRow(context.Background(), `
		SELECT string_agg(u.email || ':' || m.role, ',' ORDER BY u.email) FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.workspace_id = $1`, tm.owner.WorkspaceID).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// accept signs up as email (or logs in when the account exists) in a fresh browser
// and accepts the invitation at path.
func accept(t *testing.T, inst *servertest.Instance, path, email string, signUp bool) (int, string) {
	t.Helper()
	b := inst.NewBrowser(t)
	if signUp {
		resp, page := b.Submit("/signup?next="+url.QueryEscape(path), "/signup?next="+url.QueryEscape(path),
			url.Values{"email": {email}, "password": {servertest.Password}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != path {
			t.Fatalf("sign up from the invitation: %d to %q, want 303 to %s: %.300s", resp.StatusCode, resp.Header.Get("Location"), path, page)
		}
	} else {
		b.LogIn(email, servertest.Password)
	}
	resp, page := b.Submit(path, path+"/accept", nil)
	return resp.StatusCode, page
}

// TestInvitationAbuseIsRefused tries every way an invitation must not work and
// checks each is refused with a message that says why, and that the workspace's
// members are what they were.
func TestInvitationAbuseIsRefused(t *testing.T) {
	tm := setup(t, map[string]string{"CAIRN_PLAN_ENTERPRISE_MEMBERS": "5"})
	ctx := context.Background()
	pool := tm.inst.Server.Pool()
	refused := 0

	cases := []struct {
		name   string
		run    func(t *testing.T, mark func()) (int, string)
		status int
		says   string
	}{
		{"Expired", func(t *testing.T, mark func()) (int, string) {
			link := tm.invite(t, "late@example.com", "member")
			if _, err := pool.Exec(ctx, `UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE id = $1`, tm.invitationID(t, "late@example.com")); err != nil {
				t.Fatal(err)
			}
			mark()
			return accept(t, tm.inst, link, "late@example.com", true)
		}, http.StatusConflict, "expired"},
		{"Reused", func(t *testing.T, mark func()) (int, string) {
			link := tm.invite(t, "once@example.com", "member")
			if status, page := accept(t, tm.inst, link, "once@example.com", true); status != http.StatusSeeOther {
				t.Fatalf("first acceptance: %d %.300s", status, page)
			}
			mark()
			return accept(t, tm.inst, link, "once@example.com", false)
		}, http.StatusConflict, "already been used"},
		{"ResentThenOldLink", func(t *testing.T, mark func()) (int, string) {
			old := tm.invite(t, "resent@example.com", "viewer")
			before := len(tm.mail.To("resent@example.com"))
			id := tm.invitationID(t, "resent@example.com")
			if resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/invitations/"+id.String()+"/resend", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("resend: %d %.300s", resp.StatusCode, page)
			}
			fresh := tm.nextLink(t, "resent@example.com", before)
			if fresh == old {
				t.Fatal("the resent email carries the old link")
			}
			mark()
			return accept(t, tm.inst, old, "resent@example.com", true)
		}, http.StatusNotFound, "only the link in the newest email works"},
		{"WrongEmail", func(t *testing.T, mark func()) (int, string) {
			link := tm.invite(t, "intended@example.com", "member")
			other := tm.inst.NewAccount(t, plan.Free)
			mark()
			return accept(t, tm.inst, link, other.Email, false)
		}, http.StatusForbidden, "This invitation is for intended@example.com"},
		{"Revoked", func(t *testing.T, mark func()) (int, string) {
			link := tm.invite(t, "withdrawn@example.com", "member")
			id := tm.invitationID(t, "withdrawn@example.com")
			if resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/invitations/"+id.String()+"/revoke", nil); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("revoke: %d %.300s", resp.StatusCode, page)
			}
			mark()
			return accept(t, tm.inst, link, "withdrawn@example.com", true)
		}, http.StatusConflict, "withdrawn"},
		{"OnProAfterADowngrade", func(t *testing.T, mark func()) (int, string) {
			link := tm.invite(t, "toolate@example.com", "member")
			ws := workspace.NewService(pool, tm.inst.Config.Plans)
			if err := ws.SetPlan(ctx, tm.owner.WorkspaceID, plan.Pro, nil, "test"); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := ws.SetPlan(ctx, tm.owner.WorkspaceID, plan.Enterprise, nil, "test"); err != nil {
					t.Fatal(err)
				}
			}()
			mark()
			return accept(t, tm.inst, link, "toolate@example.com", true)
		}, http.StatusForbidden, "must upgrade before anyone can join"},
		{"OverTheMemberLimit", func(t *testing.T, mark func()) (int, string) {
			// Five seats: the owner and once@, who joined above; resent@,
			// intended@ and toolate@ pending.
			mark()
			resp, page := tm.b.Submit("/dashboard/team", "/dashboard/team/invitations", url.Values{"email": {"fifth@example.com"}, "role": {"member"}})
			return resp.StatusCode, page
		}, http.StatusForbidden, "allows 5 members, and this workspace has 2 members and 3 pending invitations"},
		{"OnFree", func(t *testing.T, mark func()) (int, string) {
			free := tm.inst.NewAccount(t, plan.Free)
			b := tm.inst.NewBrowser(t)
			b.LogIn(free.Email, servertest.Password)
			mark()
			resp, page := b.Submit("/dashboard/team", "/dashboard/team/invitations", url.Values{"email": {"friend@example.com"}, "role": {"member"}})
			if !strings.Contains(page, `href="/dashboard/billing"`) {
				t.Errorf("the refusal on Free has no upgrade link: %.600s", page)
			}
			if n := len(tm.mail.To("friend@example.com")); n != 0 {
				t.Errorf("%d emails sent for a refused invitation", n)
			}
			return resp.StatusCode, page
		}, http.StatusForbidden, "part of the Enterprise plan"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before string
			status, page := tc.run(t, func() { before = tm.members(t) })
			if status != tc.status || !strings.Contains(page, tc.says) {
				t.Fatalf("status %d, want %d with %q: %.600s", status, tc.status, tc.says, page)
			}
			if before == "" {
				t.Fatal("the case never marked the state before its refused step")
			}
			if after := tm.members(t); after != before {
				t.Fatalf("a refused step changed the members:\nbefore %s\nafter  %s", before, after)
			}
			refused++
		})
	}
	t.Logf("%d abusive invitation cases refused", refused)
}

// TestInvitationStory follows an invitation from the Team page through the email
// to a new account that joins with the invited role, is recorded in the log, and
// counts against the plan.
func TestInvitationStory(t *testing.T) {
	tm := setup(t, nil)
	link := tm.invite(t, "Grace@Example.com", "admin")
	_, page := tm.b.Get("/dashboard/team")
	if !strings.Contains(page, "2 of 25 seats used (1 member, 1 pending invitation)") {
		t.Fatalf("the Team page does not count the pending invitation: %.2000s", page)
	}
	// Only the token's SHA-256 is stored; neither the invitation nor the queued
	// email holds the token itself.
	token := strings.TrimPrefix(link, "/invitations/")
	var hashed, inQueue int
	pool := tm.inst.Server.Pool()
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM invitations WHERE token_hash = sha256(convert_to($1, 'UTF8'))`, token).Scan(&hashed); err != nil || hashed != 1 {
		t.Fatalf("%d invitations hold the token's hash (%v)", hashed, err)
	}
	if err := pool.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE args::text LIKE '%' || $1 || '%'`, token).Scan(&inQueue); err != nil || inQueue != 0 {
		t.Fatalf("%d queued jobs hold the plain token (%v)", inQueue, err)
	}

	visitor := tm.inst.NewBrowser(t)
	status, page := visitor.Get(link)
	if status != http.StatusOK || !strings.Contains(page, "Grace@Example.com") || !strings.Contains(page, "Sign up as") {
		t.Fatalf("the link signed out: %d %.800s", status, page)
	}
	if status, page := accept(t, tm.inst, link, "grace@example.com", true); status != http.StatusSeeOther {
		t.Fatalf("accept: %d %.500s", status, page)
	}
	if got := tm.members(t); !strings.Contains(got, "grace@example.com:admin") {
		t.Fatalf("members after accepting: %s", got)
	}
	var joined int
	if err := tm.inst.Server.Pool().QueryRow(context.Background(),
		`SELECT count(*) FROM audit_log WHERE workspace_id = $1 AND action = 'member.joined' AND actor_kind = 'user'`, tm.owner.WorkspaceID).Scan(&joined); err != nil || joined != 1 {
		t.Fatalf("%d member.joined entries (%v)", joined, err)
	}
}

// meBody is GET /v1/me's answer.
type meBody struct {
	Workspace struct{ ID, Name, Plan string }
	Key       struct {
		ID, Name, Prefix string
		CreatedBy        *struct{ ID, Email string } `json:"created_by"`
	}
	Role string
}

func me(t *testing.T, inst *servertest.Instance, key string) (int, meBody, string) {
	t.Helper()
	resp := inst.Do(t, "GET", "/v1/me", key, "")
	body := servertest.ReadBody(t, resp)
	var m meBody
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("GET /v1/me: %v: %s", err, body)
		}
	}
	return resp.StatusCode, m, body
}
