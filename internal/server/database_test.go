package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apikey"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/servertest"
	"github.com/cairn-dev/cairn/internal/workspace"
)

// TestReplicasStartTogetherOnMissingDatabase starts three replicas at the same
// moment on a database that does not exist: they race to create and migrate it, and
// every one must come up ready.
func TestReplicasStartTogetherOnMissingDatabase(t *testing.T) {
	replicas := servertest.StartMany(t, 3, dbtest.Missing(t), nil)
	for i, r := range replicas {
		resp, err := http.Get(r.URL + "/readyz")
		if err != nil {
			t.Fatalf("replica %d: %v", i+1, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("replica %d: /readyz = %d, want 200", i+1, resp.StatusCode)
		}
	}
	// They share one database: an account made through one is known to another.
	acct := replicas[0].NewAccount(t, plan.Free)
	if status := status(t, replicas[2].Do(t, "GET", "/v1/me", acct.Key, "")); status != http.StatusOK {
		t.Fatalf("GET /v1/me on the third replica = %d, want 200", status)
	}
}

// TestBehindPgBouncerInTransactionMode runs two replicas whose queries go through
// PgBouncer in transaction mode and whose LISTEN and migrations use the direct
// URL: the API works, and a revocation through one replica still reaches the other.
func TestBehindPgBouncerInTransactionMode(t *testing.T) {
	direct := dbtest.New(t)
	pooled := dbtest.PgBouncer(t, direct)
	env := map[string]string{"DATABASE_DIRECT_URL": direct}
	first := servertest.StartOn(t, pooled, env)
	second := servertest.StartOn(t, pooled, env)

	acct := first.NewAccount(t, plan.Pro)
	for _, step := range []struct{ method, path, body string }{
		{"POST", "/v1/documents", `{"documents":[{"id":"kites","title":"Kites","text":"Kites fly best on windy beaches in spring."}]}`},
		{"POST", "/v1/search", `{"query":"windy beaches"}`},
		{"GET", "/v1/usage", ""},
	} {
		for _, r := range []*servertest.Instance{first, second} {
			resp := r.Do(t, step.method, step.path, acct.Key, step.body)
			if body := servertest.ReadBody(t, resp); resp.StatusCode != http.StatusOK {
				t.Fatalf("%s %s through PgBouncer = %d: %s", step.method, step.path, resp.StatusCode, body)
			}
		}
	}

	// Revoke through the first replica (its NOTIFY goes through PgBouncer, in the
	// transaction); the second hears it on its direct LISTEN connection.
	keys := apikey.NewService(first.Server.Pool(), first.Config.Plans, slog.New(slog.DiscardHandler))
	list, err := keys.List(context.Background(), acct.WorkspaceID)
	if err != nil || len(list) != 1 {
		t.Fatalf("list keys: %v %v", list, err)
	}
	if err := keys.Revoke(context.Background(), workspace.Workspace{ID: acct.WorkspaceID, Role: workspace.RoleOwner}, list[0].ID, acct.UserID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for status(t, second.Do(t, "GET", "/v1/me", acct.Key, "")) != http.StatusUnauthorized {
		if time.Now().After(deadline) {
			t.Fatal("the second replica still accepts a key revoked 2s ago: LISTEN is not working")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The queries really went through PgBouncer, pooled per transaction.
	admin, err := pgx.Connect(context.Background(), dbtest.PgBouncerAdminURL(pooled))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	rows, err := admin.Query(context.Background(), "SHOW POOLS")
	if err != nil {
		t.Fatal(err)
	}
	pools, err := pgx.CollectRows(rows, pgx.RowToMap)
	if err != nil {
		t.Fatal(err)
	}
	var served bool
	for _, p := range pools {
		if p["database"] == dbName(direct) {
			if p["pool_mode"] != "transaction" {
				t.Fatalf("PgBouncer pool mode %v, want transaction", p["pool_mode"])
			}
			served = true
		}
	}
	if !served {
		t.Fatalf("PgBouncer has no pool for the test database: %v", pools)
	}
}

// status returns a response's status code, closing its body.
func status(t *testing.T, resp *http.Response) int {
	t.Helper()
	servertest.ReadBody(t, resp)
	return resp.StatusCode
}

// dbName is the database a URL names.
func dbName(databaseURL string) string {
	u, _ := url.Parse(databaseURL)
	return strings.TrimPrefix(u.Path, "/")
}
