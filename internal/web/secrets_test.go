package web_test

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/servertest"
)

// TestDatabaseHoldsNoPlainSecrets signs up with a known password, mints and uses a
// key, then dumps every table and searches the dump for either secret, in plain
// text and hex (bytea columns dump as hex). The logs are searched too.
func TestDatabaseHoldsNoPlainSecrets(t *testing.T) {
	inst := servertest.Start(t, nil)
	const password = "Plain-Password-To-Find-42"
	b := inst.NewBrowser(t)
	b.SignUp("ada@example.com", password)
	inst.VerifyEmail(t, "ada@example.com")
	// Log out and in again so the login path has touched the password too.
	b.Submit("/dashboard", "/logout", nil)
	if resp, body := b.Submit("/login", "/login", url.Values{"email": {"ada@example.com"}, "password": {password}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	// The new key waits in the session for the page after the redirect: the
	// database must not hold it in plain text even then.
	resp, page := b.Submit("/dashboard/keys", "/dashboard/keys", url.Values{"name": {"laptop"}})
	waiting := dumpTables(t, inst.DatabaseURL)
	_, page = b.Follow(resp, page)
	key := servertest.KeyRe.FindString(page)
	if key == "" {
		t.Fatalf("no key on the page")
	}
	if !strings.Contains(waiting, hex.EncodeToString([]byte("reveal"))) {
		t.Fatalf("the dump taken before the redirect was followed has no waiting key: it proves nothing")
	}
	for _, form := range []string{key[len("ck_live_"):], hex.EncodeToString([]byte(key[len("ck_live_"):]))} {
		if strings.Contains(waiting, form) {
			t.Errorf("the database holds the new key in plain text while it waits to be shown")
		}
	}
	resp = inst.Do(t, http.MethodGet, "/v1/me", key, "")
	resp.Body.Close()
	inst.Stop() // flushes last-used times, so every table holds what it will

	dump := dumpTables(t, inst.DatabaseURL)
	if !strings.Contains(dump, "ada@example.com") || !strings.Contains(dump, key[:12]) {
		t.Fatalf("the dump misses rows it should have (email, key prefix); dump is incomplete")
	}
	secrets := map[string]string{"password": password, "key": key, "key's random part": key[len("ck_live_"):]}
	for what, s := range secrets {
		for _, form := range []string{s, strings.ToLower(s), hex.EncodeToString([]byte(s))} {
			if strings.Contains(strings.ToLower(dump), strings.ToLower(form)) {
				t.Errorf("the database holds the plain %s", what)
			}
		}
		if strings.Contains(inst.Logs(), s) {
			t.Errorf("the logs hold the plain %s", what)
		}
	}
	if pgDump, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.Command(pgDump, "--data-only", inst.DatabaseURL).CombinedOutput()
		if err == nil {
			for what, s := range secrets {
				if strings.Contains(string(out), s) || strings.Contains(string(out), hex.EncodeToString([]byte(s))) {
					t.Errorf("pg_dump shows the plain %s", what)
				}
			}
		}
	}
}

// dumpTables returns every row of every table in the public schema as JSON text.
func dumpTables(t *testing.T, databaseURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, "SELECT row_to_json(t)::text FROM "+pgx.Identifier{table}.Sanitize()+" t")
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		sb.WriteString(table + "\n" + strings.Join(lines, "\n") + "\n")
	}
	return sb.String()
}
