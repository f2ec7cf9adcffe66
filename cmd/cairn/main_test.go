package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/plan"
	"github.com/cairn-dev/cairn/internal/retrieval"
	"github.com/cairn-dev/cairn/internal/server"
	"github.com/cairn-dev/cairn/internal/servertest"
)

func runWith(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	err := run(context.Background(), args, func(k string) string { return env[k] }, environ, &out)
	return out.String(), err
}

func TestVersionAndHelp(t *testing.T) {
	if out, err := runWith(t, nil, "version"); err != nil || !strings.HasPrefix(out, "cairn ") {
		t.Fatalf("version: %q %v", out, err)
	}
	if out, err := runWith(t, nil, "help"); err != nil || !strings.Contains(out, "admin create-key") {
		t.Fatalf("help: %q %v", out, err)
	}
	if _, err := runWith(t, nil, "frobnicate"); err == nil || !strings.Contains(err.Error(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %v", err)
	}
}

func TestBadConfigurationListsEveryProblem(t *testing.T) {
	_, err := runWith(t, map[string]string{"BASE_URL": "nope", "LISTEN_ADDR": "8080"}, "serve")
	if err == nil {
		t.Fatal("serve with bad configuration succeeded")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "BASE_URL") || !strings.HasPrefix(lines[2], "LISTEN_ADDR") {
		t.Fatalf("error = %q; want a heading and one line per problem", err)
	}
}

func TestMigrateCreatesDatabase(t *testing.T) {
	name := "cairn_cmdtest_" + strings.ToLower(rand.Text()[:10])
	url := db.WithDatabase(dbtest.ServerURL(), name)
	t.Cleanup(func() { dropDatabase(t, name) })
	out, err := runWith(t, map[string]string{"DATABASE_URL": url}, "migrate")
	if err != nil || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %q %v", out, err)
	}
}

func TestAdminCommands(t *testing.T) {
	url := dbtest.New(t)
	env := map[string]string{"DATABASE_URL": url}
	pool, err := db.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, ws, err := auth.NewService(pool).SignUp(context.Background(), "Owner@Example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("CreateKeyPrintsOnlyTheKey", func(t *testing.T) {
		out, err := runWith(t, env, "admin", "create-key", "--workspace", "owner@example.com", "--name", "script")
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^ck_live_[0-9A-Za-z]{38}\n$`).MatchString(out) {
			t.Fatalf("create-key printed %q, want the key alone on a line", out)
		}
	})
	t.Run("SetPlanByID", func(t *testing.T) {
		out, err := runWith(t, env, "admin", "set-plan", "--workspace", ws.ID.String(), "--plan", "Enterprise")
		if err != nil || !strings.Contains(out, "free → enterprise") {
			t.Fatalf("set-plan: %q %v", out, err)
		}
	})
	t.Run("ReindexWritesTheStoredVectors", func(t *testing.T) {
		cfg, err := config.Load(func(k string) string { return env[k] }, nil)
		if err != nil {
			t.Fatal(err)
		}
		rs, closeIndex, err := server.NewRetrieval(cfg, pool, nil, nil, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer closeIndex()
		if _, err := rs.Upsert(context.Background(), retrieval.Caller{WorkspaceID: ws.ID, Plan: plan.Pro},
			[]retrieval.DocumentInput{{ID: "a", Text: "Kites fly on windy beaches."}}); err != nil {
			t.Fatal(err)
		}
		out, err := runWith(t, env, "admin", "reindex", "--workspace", "owner@example.com")
		if err != nil || !strings.Contains(out, ": 1 vectors written") {
			t.Fatalf("reindex: %q %v", out, err)
		}
	})
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"NoSubcommand", []string{"admin"}, "want a subcommand"},
		{"UnknownSubcommand", []string{"admin", "delete-everything", "--workspace", "owner@example.com"}, "unknown subcommand"},
		{"NoWorkspace", []string{"admin", "create-key", "--name", "x"}, "--workspace is required"},
		{"UnknownWorkspace", []string{"admin", "create-key", "--workspace", "nobody@example.com", "--name", "x"}, "No workspace with id or owner email"},
		{"BadPlan", []string{"admin", "set-plan", "--workspace", "owner@example.com", "--plan", "gold"}, "--plan must be free, pro or enterprise"},
		{"EmptyKeyName", []string{"admin", "create-key", "--workspace", "owner@example.com"}, "name: give the key a name"},
		{"SyncBillingWithBillingOff", []string{"admin", "sync-billing", "--workspace", "owner@example.com"}, "Billing is off"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runWith(t, env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v: %v, want %q", tc.args, err, tc.want)
			}
		})
	}
}

func dropDatabase(t *testing.T, name string) {
	pool, err := db.Open(context.Background(), dbtest.ServerURL())
	if err != nil {
		return
	}
	defer pool.Close()
	_, _ = pool.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
}

// TestHealthcheck: `cairn healthcheck` (Docker's HEALTHCHECK) exits 0 only while the
// replica on LISTEN_ADDR is ready.
func TestHealthcheck(t *testing.T) {
	replica := servertest.Start(t, nil)
	addr := strings.TrimPrefix(replica.URL, "http://")
	if out, err := runWith(t, map[string]string{"LISTEN_ADDR": addr}, "healthcheck"); err != nil || out != "ready\n" {
		t.Fatalf("healthcheck on a ready replica: %q %v", out, err)
	}
	// LISTEN_ADDR ":port" (every interface) is probed through loopback.
	_, port, _ := strings.Cut(addr, ":")
	if _, err := runWith(t, map[string]string{"LISTEN_ADDR": ":" + port}, "healthcheck"); err != nil {
		t.Fatalf("healthcheck on :%s: %v", port, err)
	}
	// A replica that is not ready (draining, database gone) answers 503 on /readyz.
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			t.Errorf("healthcheck asked for %s, want /readyz", r.URL.Path)
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer notReady.Close()
	if _, err := runWith(t, map[string]string{"LISTEN_ADDR": strings.TrimPrefix(notReady.URL, "http://")}, "healthcheck"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("healthcheck on a replica answering 503: %v, want an error naming 503", err)
	}
	replica.Stop()
	if _, err := runWith(t, map[string]string{"LISTEN_ADDR": addr}, "healthcheck"); err == nil {
		t.Fatal("healthcheck succeeded with the replica stopped")
	}
}
