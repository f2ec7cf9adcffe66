// Package db opens Cairn's PostgreSQL pool, migrates the schema and runs transactions.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/cairn-dev/cairn/db/schema"
	"github.com/cairn-dev/cairn/internal/config"
)

// DefaultMaxConns is the pool size when DATABASE_URL names no pool_max_conns. A
// replica rarely holds more than a few connections at once (queries are short and
// the usage writer batches), so ten leave room for bursts while a hundred-connection
// PostgreSQL still takes eight replicas with their listeners and River.
const DefaultMaxConns = 10

// Open connects to the database named in databaseURL, creating the database first
// if it does not exist, and returns a pool of the URL's pool_max_conns connections
// (DefaultMaxConns when unset).
func Open(ctx context.Context, databaseURL string, opts ...Option) (*pgxpool.Pool, error) {
	return open(ctx, databaseURL, databaseURL, opts)
}

// Option changes how Open and OpenPooled build the pool.
type Option func(*pgxpool.Config)

// WithTracer sets the pool's query tracer (spans, failures for health reports).
func WithTracer(t pgx.QueryTracer) Option {
	return func(c *pgxpool.Config) { c.ConnConfig.Tracer = t }
}

// OpenPooled is Open through a transaction pooler such as PgBouncer: pooledURL
// leads through the pooler, directURL to the same database without it. The database
// is created through directURL, and queries on the pool use no named prepared
// statements, which a transaction pooler would leave behind on another server
// connection: pgx's cache_describe mode (statement descriptions cached in the
// client, each query sent in one round trip), unless pooledURL names its own
// default_query_exec_mode.
func OpenPooled(ctx context.Context, pooledURL, directURL string, opts ...Option) (*pgxpool.Pool, error) {
	return open(ctx, pooledURL, directURL, opts)
}

func open(ctx context.Context, databaseURL, directURL string, opts []Option) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("db: DATABASE_URL %s: %w", config.RedactURL(databaseURL), err)
	}
	if !hasParam(databaseURL, "pool_max_conns") {
		cfg.MaxConns = DefaultMaxConns
	}
	if directURL != databaseURL && !hasParam(databaseURL, "default_query_exec_mode") {
		cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	for _, o := range opts {
		o(cfg)
	}
	if err := EnsureDatabase(ctx, directURL); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: open %s: %w", config.RedactURL(databaseURL), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: cannot reach PostgreSQL at %s: %w", config.RedactURL(databaseURL), err)
	}
	return pool, nil
}

// hasParam reports whether a postgres:// URL sets the query parameter name.
func hasParam(databaseURL, name string) bool {
	u, err := url.Parse(databaseURL)
	return err == nil && u.Query().Has(name)
}

// EnsureDatabase creates the database named in databaseURL through the maintenance
// database "postgres" when connecting to it fails with "database does not exist".
// Replicas starting together on a missing database may all try: whichever loses
// the race finds the database made by another and carries on.
func EnsureDatabase(ctx context.Context, databaseURL string) error {
	cfg, err := connConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("db: DATABASE_URL %s: %w", config.RedactURL(databaseURL), err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" {
		return fmt.Errorf("db: cannot reach PostgreSQL at %s: %w", config.RedactURL(databaseURL), err)
	}
	name := cfg.Database
	maint := cfg.Copy()
	maint.Database = "postgres"
	admin, err := pgx.ConnectConfig(ctx, maint)
	if err != nil {
		return fmt.Errorf("db: cannot reach PostgreSQL at %s to create database %q: %w", config.RedactURL(databaseURL), name, err)
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	// 42P04: created meanwhile by another replica. 23505: another replica's CREATE
	// DATABASE was still running, and pg_database's unique index stopped this one.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P04" || pgErr.Code == "23505") {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("db: create database %q: %w", name, err)
	}
	return nil
}

// connConfig parses a database URL for a single connection. It goes through the
// pool's parser so that pool_* parameters are understood rather than sent to
// PostgreSQL as settings (which it refuses with 42704).
func connConfig(databaseURL string) (*pgx.ConnConfig, error) {
	pc, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	cfg := pc.ConnConfig
	cfg.ConnectTimeout = 5 * time.Second
	return cfg, nil
}

// Connect opens one connection of its own to databaseURL, for work that needs a
// session rather than a pooled transaction: LISTEN, advisory locks.
func Connect(ctx context.Context, databaseURL string) (*pgx.Conn, error) {
	cfg, err := connConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", config.RedactURL(databaseURL), err)
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// WithDatabase returns databaseURL pointing at another database on the same server.
func WithDatabase(databaseURL, name string) string {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return databaseURL
	}
	u.Path = "/" + name
	return u.String()
}

// Migrate applies every pending migration. A PostgreSQL advisory lock makes
// replicas that start together take turns. The pool must reach PostgreSQL directly
// (or through a session pooler): the lock belongs to one session.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	if err := migrate(ctx, sqlDB); err != nil {
		return err
	}
	return migrateRiver(ctx, pool)
}

// riverLock serialises River's migrations across replicas starting together.
const riverLock = 72946102

// migrateRiver applies the job queue's own schema with River's migrator (its tables
// are River's, not ours to write by hand). River commits each of its versions
// separately (one adds an enum value that a later one uses), so a session-level
// advisory lock, held on a connection of its own, makes a second replica wait and
// then find nothing to do.
func migrateRiver(ctx context.Context, pool *pgxpool.Pool) error {
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fmt.Errorf("db: migrate river: %w", err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate river: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", riverLock); err != nil {
		return fmt.Errorf("db: migrate river: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", riverLock)
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("db: migrate river: %w", err)
	}
	return nil
}

// RiverSchemaVersion is the newest River migration this build applies; test
// templates are named after it as well as after db/schema.
func RiverSchemaVersion() int {
	m, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return 0
	}
	all := m.AllVersions()
	if len(all) == 0 {
		return 0
	}
	return all[len(all)-1].Version
}

// MigrateURL is Migrate on a short-lived pool of its own to databaseURL, for a
// replica whose main pool leads through a transaction pooler.
func MigrateURL(ctx context.Context, databaseURL string) error {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("db: migrate: %s: %w", config.RedactURL(databaseURL), err)
	}
	cfg.MaxConns = 2 // goose holds the lock on one connection and migrates on another
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	defer pool.Close()
	return Migrate(ctx, pool)
}

func migrate(ctx context.Context, sqlDB *sql.DB) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	provider, err := newProvider(sqlDB, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	return nil
}

// newProvider is goose on db/schema. Branches number their migrations in ranges of
// their own, so one that lands after a higher number has been applied somewhere
// must still be applied (and counts as pending until it is).
func newProvider(sqlDB *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	migrations, err := fs.Sub(schema.FS, ".")
	if err != nil {
		return nil, err
	}
	return goose.NewProvider(goose.DialectPostgres, sqlDB, migrations, append(opts, goose.WithAllowOutofOrder(true))...)
}

// SchemaPending reports why the database lacks the schema this build needs ("" when
// it has it): a migration of db/schema or of River's not applied yet, or the error
// met looking (no database, no goose table yet). It takes no lock, so it answers
// while `cairn migrate` runs elsewhere.
func SchemaPending(ctx context.Context, pool *pgxpool.Pool) string {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	provider, err := newProvider(sqlDB)
	if err != nil {
		return err.Error()
	}
	pending, err := provider.HasPending(ctx)
	if err != nil {
		return err.Error()
	}
	if pending {
		return "migrations of db/schema are pending"
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err.Error()
	}
	res, err := m.Validate(ctx, nil)
	if err != nil {
		return err.Error()
	}
	if !res.OK {
		return "River's migrations are pending: " + strings.Join(res.Messages, "; ")
	}
	return ""
}

// WaitForSchema waits, up to timeout, until the database at databaseURL exists and
// holds every migration this build has (applied by `cairn migrate`, e.g. a
// Kubernetes Job, while replicas start with MIGRATE=false). It checks every
// second and logs why it waits every ten.
func WaitForSchema(ctx context.Context, databaseURL string, timeout time.Duration, log *slog.Logger) error {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return fmt.Errorf("db: %s: %w", config.RedactURL(databaseURL), err)
	}
	cfg.MaxConns = 2
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg) // connects lazily
	if err != nil {
		return fmt.Errorf("db: %w", err)
	}
	defer pool.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for i := 0; ; i++ {
		why := SchemaPending(ctx, pool)
		if why == "" {
			return nil
		}
		if i%10 == 0 {
			log.Info("waiting for the schema (MIGRATE=false: run cairn migrate)", "reason", why)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("db: the schema this build needs is not in %s after %s (MIGRATE=false leaves migrations to `cairn migrate`; run it): %s",
				config.RedactURL(databaseURL), timeout, why)
		case <-tick.C:
		}
	}
}

// Tx runs fn in a transaction, committing when it returns nil.
func Tx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, pool, fn)
}

// IsUniqueViolation reports whether err is a unique-constraint violation, optionally
// of the named constraint.
func IsUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" &&
		(constraint == "" || strings.EqualFold(pgErr.ConstraintName, constraint))
}

// IsUnavailable reports whether err means PostgreSQL could not be reached or will
// not take work right now (refused or dropped connection, shutdown, too many
// connections), as opposed to a bad query: the caller should answer 503 and retry.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			pgErr.Code == "57P01", pgErr.Code == "57P02", pgErr.Code == "57P03", // shutting down, cannot connect now
			pgErr.Code == "53300": // too many connections
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.DeadlineExceeded) || pgconn.SafeToRetry(err)
}
