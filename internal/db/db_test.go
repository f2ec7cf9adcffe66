package db_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

func TestOpenCreatesMissingDatabase(t *testing.T) {
	ctx := context.Background()
	url := dbtest.Missing(t)
	pool, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("Open on a missing database: %v", err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Opening again finds it and does not try to create it twice.
	pool2, err := db.Open(ctx, url)
	if err != nil {
		t.Fatalf("second Open: %v", err)
	}
	pool2.Close()
}

// TestOpenRacesOnMissingDatabase opens one missing database from several replicas
// at once: some CREATE DATABASE lose the race (42P04 or 23505), and every Open
// must still succeed.
func TestOpenRacesOnMissingDatabase(t *testing.T) {
	for round := range 3 {
		url := dbtest.Missing(t)
		const replicas = 6
		var wg sync.WaitGroup
		errs := make([]error, replicas)
		start := make(chan struct{})
		for i := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				pool, err := db.Open(context.Background(), url)
				if err == nil {
					pool.Close()
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, replica %d: Open: %v", round, i, err)
			}
		}
	}
}

func TestOpenPoolSize(t *testing.T) {
	url := dbtest.New(t)
	for _, tc := range []struct {
		name  string
		url   string
		want  int32
		query string
	}{
		{"DefaultWhenUnset", url, db.DefaultMaxConns, ""},
		{"FromPoolMaxConns", url + "&pool_max_conns=3", 3, ""},
		// pool_* parameters must not reach PostgreSQL as settings (42704), also
		// on the path that creates a missing database.
		{"FromPoolMaxConnsOnMissingDatabase", dbtest.Missing(t) + "&pool_max_conns=2&pool_min_conns=1", 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pool, err := db.Open(context.Background(), tc.url)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer pool.Close()
			if got := pool.Stat().MaxConns(); got != tc.want {
				t.Fatalf("MaxConns = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestOpenUnreachableNamesURLWithoutPassword(t *testing.T) {
	// Port 1 on loopback refuses connections at once.
	_, err := db.Open(context.Background(), "postgres://cairn:hunter2secret@127.0.0.1:1/cairn?sslmode=disable")
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	msg := err.Error()
	if strings.Contains(msg, "hunter2secret") {
		t.Fatalf("error shows the password: %s", msg)
	}
	if !strings.Contains(msg, "cannot reach PostgreSQL") || !strings.Contains(msg, "postgres://cairn:xxxxx@127.0.0.1:1/cairn") {
		t.Fatalf("error %q does not name the URL with the password masked", msg)
	}
}

// TestMigrateConcurrently starts several migrations at once on an empty database,
// as replicas starting together do: the advisory lock makes them take turns, so
// all succeed and the schema is applied once.
func TestMigrateConcurrently(t *testing.T) {
	ctx := context.Background()
	url := dbtest.Missing(t)
	first, err := db.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	const replicas = 4
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = db.Migrate(ctx, pool)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Migrate: %v", i, err)
		}
	}
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var applied, distinct int
	if err := pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT version_id) FROM goose_db_version WHERE version_id > 0").Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	if applied == 0 || applied != distinct {
		t.Fatalf("goose_db_version has %d rows for %d versions: migrations ran more than once", applied, distinct)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		t.Fatalf("schema missing after concurrent migrations: %v", err)
	}
}

func TestIsUniqueViolation(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx := context.Background()
	insert := "INSERT INTO users (email, password_hash) VALUES ($1, 'x')"
	if _, err := pool.Exec(ctx, insert, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	_, err := pool.Exec(ctx, insert, "A@EXAMPLE.COM")
	if !db.IsUniqueViolation(err, "users_email_lower_key") || !db.IsUniqueViolation(err, "") {
		t.Fatalf("IsUniqueViolation(%v) = false", err)
	}
	if db.IsUniqueViolation(err, "other_key") {
		t.Fatalf("IsUniqueViolation matches another constraint")
	}
}
