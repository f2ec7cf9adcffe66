package account_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/retrieval/pinecone/pineconetest"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/stripetest"
)

const pineconeKey = "pcsk-delete-test"

// roomy lifts rate limits so the test measures deletion, not limits.
var roomy = map[string]string{"CAIRN_PLAN_ENTERPRISE_RATE_PER_MINUTE": "100000", "CAIRN_PLAN_FREE_RATE_PER_MINUTE": "100000"}

func withEnv(extra map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{roomy, extra} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// keptTables may keep rows naming a deleted account's workspace or id: the usage
// records and the audit log, which hold ids only (never the email), and the job
// queue, whose jobs for the deletion itself run after it commits (River prunes
// them a day after they complete).
var keptTables = map[string]bool{"usage_events": true, "usage_daily": true, "audit_log": true, "river_job": true}

// deletionJobs are the jobs a deletion leaves in river_job.
var deletionJobs = map[string]bool{"mail.send": true, "billing.cancel_subscription": true, "retrieval.drop_workspace": true}

// traces lists, for every column of every table of the schema (read from
// information_schema, so a table added later is walked too), the rows that hold
// any of needles: a uuid column equal to one, or a text, json, array or bytea
// column containing one.
func traces(t *testing.T, pool *pgxpool.Pool, needles ...string) map[string]int {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
		JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
		WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
		ORDER BY c.table_name, c.ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ table, name, typ string }
	var cols []column
	tables := map[string]bool{}
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.typ); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
		tables[c.table] = true
	}
	if rows.Err() != nil {
		t.Fatal(rows.Err())
	}
	for _, must := range []string{"users", "workspaces", "documents", "chunks", "chunk_vectors", "api_keys", "sessions", "subscriptions", "audit_log", "river_job"} {
		if !tables[must] {
			t.Fatalf("information_schema lists no table %s: the walk is broken", must)
		}
	}
	found := map[string]int{}
	for _, c := range cols {
		var cond string
		switch c.typ {
		case "uuid":
			cond = fmt.Sprintf("%q::text = ANY($1)", c.name)
		case "text", "character varying", "jsonb", "json", "ARRAY":
			cond = fmt.Sprintf("EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE position(lower(n) IN lower(%q::text)) > 0)", c.name)
		case "bytea":
			cond = fmt.Sprintf("EXISTS (SELECT 1 FROM unnest($1::text[]) n WHERE position(convert_to(n, 'UTF8') IN %q) > 0)", c.name)
		default:
			continue
		}
		var n int
		if err := pool.QueryRow(ctx, fmt.Sprintf("SELECT count(*) FROM %q WHERE %s", c.table, cond), needles).Scan(&n); err != nil {
			t.Fatalf("%s.%s: %v", c.table, c.name, err)
		}
		if n > 0 {
			found[c.table+"."+c.name] += n
		}
	}
	return found
}

// TestDeletingAnAccountLeavesNothing deletes an account that owns a workspace full
// of data (documents, vectors, keys, a subscription, usage, an invitation) and is
// a member of another, with two replicas serving it, once with the builtin vector
// index and once with Pinecone (the in-process fake that speaks its protocol).
func TestDeletingAnAccountLeavesNothing(t *testing.T) {
	for _, index := range []string{"builtin", "pinecone"} {
		t.Run(index, func(t *testing.T) { testDeletion(t, index) })
	}
}

func testDeletion(t *testing.T, index string) {
	ctx := context.Background()
	stripe := stripetest.NewRecorder(t, stripetest.Start(t))
	env := withEnv(map[string]string{
		"STRIPE_SECRET_KEY": "sk_test_cairn", "STRIPE_WEBHOOK_SECRET": "whsec_cairn", "STRIPE_PRICE_PRO": "price_pro",
		"STRIPE_PRICE_ENTERPRISE": "price_ent", "STRIPE_API_BASE": stripe.URL,
	})
	var pc *pineconetest.Server
	if index == "pinecone" {
		pc = pineconetest.Start(t, pineconeKey)
		env["PINECONE_API_KEY"], env["PINECONE_INDEX_HOST"] = pineconeKey, pc.Host()
	}
	a := servertest.Start(t, env)
	b := servertest.StartOn(t, a.DatabaseURL, env)
	pool := a.Server.Pool()

	victim := a.NewAccount(t, plan.Enterprise)
	ws := victim.WorkspaceID
	other := a.NewAccount(t, plan.Enterprise)
	keyElsewhere := a.Join(t, victim, other.WorkspaceID, "member")
	var docs []string
	for i := range 30 {
		docs = append(docs, fmt.Sprintf(`{"id":"d%d","title":"Glacier %d","text":"Glacier %d carved the valley; its moraine is %d metres high.","metadata":{"n":%d}}`, i, i, i, 10+i, i))
	}
	call(t, a, "POST", "/v1/documents", victim.Key, `{"documents":[`+strings.Join(docs, ",")+`]}`, http.StatusOK)
	call(t, b, "POST", "/v1/documents", keyElsewhere, `{"documents":[{"id":"kept","text":"The other workspace keeps this."}]}`, http.StatusOK)
	for _, r := range []*servertest.Instance{a, b} { // both replicas cache the key and the vectors
		call(t, r, "POST", "/v1/search", victim.Key, `{"query":"glacier moraine","mode":"semantic"}`, http.StatusOK)
	}
	if index == "builtin" {
		for _, r := range []*servertest.Instance{a, b} {
			if builtinOf(t, r).Holds(ws) == 0 {
				t.Fatal("the builtin index holds no vector of the workspace before the deletion: the test would prove nothing")
			}
		}
	} else if len(pc.Namespace(ws.String())) == 0 {
		t.Fatal("Pinecone holds no vector of the workspace before the deletion")
	}
	subID := "sub_" + strings.ReplaceAll(uuid.NewString(), "-", "")[:14]
	exec(t, pool, `INSERT INTO stripe_customers (workspace_id, customer_id) VALUES ($1, 'cus_deleted_test')`, ws)
	exec(t, pool, `INSERT INTO subscriptions (id, customer_id, workspace_id, status, price_id, plan) VALUES ($1, 'cus_deleted_test', $2, 'active', 'price_ent', 'enterprise')`, subID, ws)
	exec(t, pool, `INSERT INTO invitations (workspace_id, email, role, invited_by, expires_at) VALUES ($1, 'friend@example.com', 'member', $2, now() + interval '7 days')`, ws, victim.UserID)
	servertest.Eventually(t, func() bool {
		var n int
		_ = pool.QueryRow(ctx, `SELECT count(*) FROM usage_daily WHERE workspace_id = $1`, ws).Scan(&n)
		return n > 0
	}, "usage to be rolled up")

	browser := a.NewBrowser(t)
	browser.LogIn(victim.Email, servertest.Password)
	elsewhere := b.NewBrowser(t)
	elsewhere.LogIn(victim.Email, servertest.Password)
	// A failed log-in keeps the address in login_failures.
	if resp, _ := a.NewBrowser(t).Submit("/login", "/login", url.Values{"email": {victim.Email}, "password": {"a wrong password"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong log-in: %d", resp.StatusCode)
	}

	t.Run("WrongPasswordDeletesNothing", func(t *testing.T) {
		resp, page := browser.Submit("/dashboard/settings", "/dashboard/settings/delete", url.Values{"current_password": {"not the password"}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "not your current password") {
			t.Fatalf("wrong password: %d, want 400 and Settings saying the password was wrong:\n%.2000s", resp.StatusCode, page)
		}
		call(t, b, "GET", "/v1/me", victim.Key, "", http.StatusOK)
	})

	resp, _ := browser.Submit("/dashboard/settings", "/dashboard/settings/delete", url.Values{"current_password": {servertest.Password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("delete: %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Keys refused on every replica, whichever workspace they were made in.
	for _, r := range []*servertest.Instance{a, b} {
		for _, key := range []string{victim.Key, keyElsewhere} {
			servertest.Eventually(t, func() bool {
				resp := r.Do(t, "GET", "/v1/me", key, "")
				servertest.ReadBody(t, resp)
				return resp.StatusCode == http.StatusUnauthorized
			}, "a deleted account's key still works on a replica")
		}
	}
	// Every session of the account ended, on every replica.
	for _, br := range []*servertest.Browser{browser, elsewhere} {
		resp, err := br.Client.Get(a.URL + "/dashboard")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
			t.Fatalf("a session of the deleted account: %d %q, want a redirect to log in", resp.StatusCode, resp.Header.Get("Location"))
		}
	}

	// Vectors: gone from every replica's cache at once, and from Pinecone by a job.
	if index == "builtin" {
		for _, r := range []*servertest.Instance{a, b} {
			servertest.Eventually(t, func() bool { return builtinOf(t, r).Holds(ws) == 0 }, "the builtin index still holds the workspace's vectors")
		}
	} else {
		servertest.Eventually(t, func() bool { return len(pc.Namespace(ws.String())) == 0 }, "Pinecone still holds the workspace's vectors")
	}
	// The subscription cancelled at Stripe, at once (not at the period's end).
	servertest.Eventually(t, func() bool { return len(stripe.Calls("DELETE", "/v1/subscriptions/"+subID)) == 1 }, "the subscription was not cancelled at Stripe")
	// The confirmation email (SMTP_URL unset: the replicas log it).
	servertest.Eventually(t, func() bool {
		logs := a.Logs() + b.Logs()
		return strings.Contains(logs, "Your Cairn account has been deleted") && strings.Contains(logs, victim.Email)
	}, "no confirmation email")

	// No row of the workspace or the person anywhere, but the kept tables, and
	// there only by id: the email is nowhere but in the confirmation email's job.
	found := traces(t, pool, ws.String(), victim.UserID.String(), victim.Email)
	for col, n := range found {
		if !keptTables[strings.Split(col, ".")[0]] {
			t.Errorf("%s: %d rows still name the deleted workspace or account", col, n)
		}
	}
	if found["usage_daily.workspace_id"] == 0 || found["audit_log.workspace_id"] == 0 {
		t.Errorf("usage roll-ups or audit rows of the workspace were not kept: %v", found)
	}
	for table, sql := range map[string]string{
		"audit_log":    `SELECT count(*) FROM audit_log WHERE position(lower($1) IN lower(detail::text || ip || user_agent || target_id)) > 0`,
		"usage_events": `SELECT count(*) FROM usage_events WHERE position(lower($1) IN lower(endpoint || request_id)) > 0`,
		"river_job": `SELECT count(*) FROM river_job WHERE position(lower($1) IN lower(args::text)) > 0
			AND NOT (kind = 'mail.send' AND args->>'template' = 'account.deleted')`,
	} {
		var n int
		if err := pool.QueryRow(ctx, sql, victim.Email).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: %d rows hold the email (%v)", table, n, err)
		}
	}
	var stray int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE (args::text LIKE '%' || $1 || '%' OR args::text LIKE '%' || $2 || '%') AND NOT kind = ANY($3)`,
		ws.String(), victim.UserID.String(), keys(deletionJobs)).Scan(&stray); err != nil || stray != 0 {
		t.Errorf("%d jobs other than the deletion's name the account (%v)", stray, err)
	}

	// The other workspace lives on without them.
	call(t, a, "GET", "/v1/documents/kept", other.Key, "", http.StatusOK)
	// The address can sign up again.
	again := a.NewBrowser(t)
	again.SignUp(victim.Email, "another long password 42")
}

// TestDeletionWaitsForOwnershipToMove: an owner whose workspace has other members
// is sent to Team, and nothing is deleted.
func TestDeletionWaitsForOwnershipToMove(t *testing.T) {
	inst := servertest.Start(t, withEnv(nil))
	owner := inst.NewAccount(t, plan.Enterprise)
	member := inst.NewAccount(t, plan.Free)
	inst.Join(t, member, owner.WorkspaceID, "member")
	call(t, inst, "POST", "/v1/documents", owner.Key, `{"documents":[{"id":"d","text":"Still here."}]}`, http.StatusOK)

	br := inst.NewBrowser(t)
	br.LogIn(owner.Email, servertest.Password)
	resp, _ := br.Submit("/dashboard/settings", "/dashboard/settings/delete", url.Values{"current_password": {servertest.Password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/settings" {
		t.Fatalf("delete: %d to %q, want 303 back to Settings", resp.StatusCode, resp.Header.Get("Location"))
	}
	_, page := br.Get("/dashboard/settings")
	if !strings.Contains(page, "Transfer ownership") || !strings.Contains(page, `href="/dashboard/team"`) {
		t.Fatalf("Settings does not say to transfer ownership first, with a link to Team: %.2000s", page)
	}
	call(t, inst, "GET", "/v1/documents/d", owner.Key, "", http.StatusOK)
	if status, _ := br.Get("/dashboard"); status != http.StatusOK {
		t.Fatalf("the owner's session ended though nothing was deleted: %d", status)
	}
}

// TestDeletionPasswordGuessesAreLimited: the deletion form asks for the password
// as the other Settings forms do, so a borrowed session cannot use it to guess the
// password: after auth.MaxFailures wrong ones from an address, even the right one
// is refused there for a while, and nothing is deleted.
func TestDeletionPasswordGuessesAreLimited(t *testing.T) {
	inst := servertest.Start(t, withEnv(nil))
	acct := inst.NewAccount(t, plan.Free)
	br := inst.NewBrowser(t)
	br.LogIn(acct.Email, servertest.Password)
	for i := range auth.MaxFailures {
		resp, _ := br.Submit("/dashboard/settings", "/dashboard/settings/delete", url.Values{"current_password": {fmt.Sprintf("guess number %d", i)}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("guess %d: %d, want 400", i, resp.StatusCode)
		}
	}
	// A refusal of the moment comes back to Settings with its message.
	resp, _ := br.Submit("/dashboard/settings", "/dashboard/settings/delete", url.Values{"current_password": {servertest.Password}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/settings" {
		t.Fatalf("the right password after %d guesses: %d to %q, want 303 back to Settings", auth.MaxFailures, resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, page := br.Get("/dashboard/settings"); !strings.Contains(page, "Too many wrong passwords") {
		t.Fatal("Settings does not say why the deletion was refused")
	}
	call(t, inst, "GET", "/v1/me", acct.Key, "", http.StatusOK)
}

func builtinOf(t *testing.T, inst *servertest.Instance) *retrieval.BuiltinIndex {
	t.Helper()
	b, ok := inst.Server.Retrieval().Index().(*retrieval.BuiltinIndex)
	if !ok {
		t.Fatalf("the replica's index is %T", inst.Server.Retrieval().Index())
	}
	return b
}

func call(t *testing.T, inst *servertest.Instance, method, path, key, body string, want int) {
	t.Helper()
	resp := inst.Do(t, method, path, key, body)
	got := servertest.ReadBody(t, resp)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, got)
	}
}

func exec(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatal(err)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
