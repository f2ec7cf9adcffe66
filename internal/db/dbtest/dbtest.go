// Package dbtest gives each test its own migrated PostgreSQL database, cloned from a
// template so that test packages running in parallel never collide.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/db/schema"
	"github.com/cairn-dev/cairn/internal/db"
)

// ServerURL is the PostgreSQL server tests use: $CAIRN_TEST_DATABASE_URL, or the local default.
func ServerURL() string {
	if u := os.Getenv("CAIRN_TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// New creates a fresh migrated database for tb, dropped when the test ends, and
// returns its URL.
func New(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		tb.Fatalf("dbtest: PostgreSQL is not reachable at %s (start it with `make db`): %v", ServerURL(), err)
	}
	defer admin.Close(ctx)
	tmpl := "cairn_tmpl_" + schemaHash()
	if err := ensureTemplate(ctx, admin, tmpl); err != nil {
		tb.Fatalf("dbtest: template: %v", err)
	}
	name := "cairn_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		tb.Fatalf("dbtest: create %s: %v", name, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return db.WithDatabase(ServerURL(), name)
}

// Missing returns the URL of a database that does not exist yet, for tests of
// start-up on an empty server; it is dropped when the test ends if anything made it.
func Missing(tb testing.TB) string {
	tb.Helper()
	name := "cairn_missing_" + randomHex(6)
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return db.WithDatabase(ServerURL(), name)
}

// NewPool is New plus an open pool, closed when the test ends.
func NewPool(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	url := New(tb)
	pool, err := pgxpool.New(context.Background(), url)
	if err != nil {
		tb.Fatalf("dbtest: open: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool, url
}

// ensureTemplate migrates a template database once per schema version; an advisory
// lock serialises test binaries that start at the same moment.
func ensureTemplate(ctx context.Context, admin *pgx.Conn, tmpl string) error {
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(72946101)"); err != nil {
		return err
	}
	defer admin.Exec(context.Background(), "SELECT pg_advisory_unlock(72946101)")
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := tmpl + "_build"
	_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+building+" WITH (FORCE)")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+building); err != nil {
		return err
	}
	pool, err := pgxpool.New(ctx, db.WithDatabase(ServerURL(), building))
	if err != nil {
		return err
	}
	err = db.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return err
	}
	_, err = admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", building, tmpl))
	return err
}

// schemaHash names the template after the migrations' content, so a changed
// migration gets a new template instead of a stale one.
func schemaHash() string {
	h := sha256.New()
	names, _ := fs.Glob(schema.FS, "*.sql")
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(schema.FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	fmt.Fprintf(h, "river %d", db.RiverSchemaVersion())
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
