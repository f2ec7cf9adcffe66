package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/server"
)

// syncLog collects a logger's lines for a test reading them from another goroutine.
type syncLog struct {
	lines chan string
}

func (l *syncLog) Write(p []byte) (int, error) {
	select {
	case l.lines <- string(p):
	default:
	}
	return len(p), nil
}

func loadConfig(t *testing.T, env map[string]string) config.Config {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func databaseExists(t *testing.T, databaseURL string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := dbName(databaseURL)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestServeWithoutMigrateWaitsForTheSchema is Kubernetes' start-up: replicas run
// with MIGRATE=false while a Job runs `cairn migrate`. A replica neither creates nor
// migrates the database; it waits, and opens once the Job has applied the schema.
func TestServeWithoutMigrateWaitsForTheSchema(t *testing.T) {
	missing := dbtest.Missing(t)
	cfg := loadConfig(t, map[string]string{"DATABASE_URL": missing, "MIGRATE": "false", "SCHEMA_WAIT": "2m"})
	logs := &syncLog{lines: make(chan string, 100)}
	type opened struct {
		pool *pgxpool.Pool
		err  error
	}
	done := make(chan opened, 1)
	go func() {
		pool, err := server.OpenDatabase(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)))
		done <- opened{pool, err}
	}()
	select {
	case line := <-logs.lines:
		if !strings.Contains(line, "waiting for the schema") {
			t.Fatalf("first log line %q, want it to say it waits for the schema", line)
		}
	case o := <-done:
		t.Fatalf("OpenDatabase returned (%v) before any migration ran", o.err)
	case <-time.After(time.Minute):
		t.Fatal("no log line saying the replica waits for the schema")
	}
	if databaseExists(t, missing) {
		t.Fatal("with MIGRATE=false the replica created the database itself")
	}
	// The Job: `cairn migrate`.
	if err := db.EnsureDatabase(context.Background(), missing); err != nil {
		t.Fatal(err)
	}
	if !databaseExists(t, missing) {
		t.Fatal("databaseExists cannot see a database that exists")
	}
	if err := db.MigrateURL(context.Background(), missing); err != nil {
		t.Fatal(err)
	}
	select {
	case o := <-done:
		if o.err != nil {
			t.Fatalf("OpenDatabase after the migration: %v", o.err)
		}
		defer o.pool.Close()
		if why := db.SchemaPending(context.Background(), o.pool); why != "" {
			t.Fatalf("schema still pending after OpenDatabase returned: %s", why)
		}
		var n int
		if err := o.pool.QueryRow(context.Background(), "SELECT count(*) FROM workspaces").Scan(&n); err != nil {
			t.Fatalf("the schema's tables are not there: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("OpenDatabase still waiting a minute after the schema was applied")
	}
}

// TestServeWithoutMigrateGivesUp: when nobody migrates, the replica stops after
// SCHEMA_WAIT and says what to run, instead of serving on a missing schema.
func TestServeWithoutMigrateGivesUp(t *testing.T) {
	missing := dbtest.Missing(t)
	cfg := loadConfig(t, map[string]string{"DATABASE_URL": missing, "MIGRATE": "false", "SCHEMA_WAIT": "1s"})
	_, err := server.OpenDatabase(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "cairn migrate") {
		t.Fatalf("OpenDatabase on a missing schema = %v, want an error telling to run cairn migrate", err)
	}
	if databaseExists(t, missing) {
		t.Fatal("with MIGRATE=false the replica created the database itself")
	}
}

// TestSchemaPendingOnAPartlyMigratedDatabase: one migration missing counts.
func TestSchemaPendingOnAPartlyMigratedDatabase(t *testing.T) {
	url := dbtest.New(t)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if why := db.SchemaPending(context.Background(), pool); why != "" {
		t.Fatalf("migrated database: pending %q", why)
	}
	if _, err := pool.Exec(context.Background(), "DELETE FROM goose_db_version WHERE version_id = (SELECT max(version_id) FROM goose_db_version)"); err != nil {
		t.Fatal(err)
	}
	if why := db.SchemaPending(context.Background(), pool); !strings.Contains(why, "pending") {
		t.Fatalf("one migration unrecorded: SchemaPending = %q, want pending", why)
	}
}
