package server

import (
	"context"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/config"
	"github.com/cairn-dev/cairn/internal/db"
)

// OpenDatabase opens the replica's pool on DATABASE_URL, creating the database when
// it is missing, and applies pending migrations; with MIGRATE=false it instead waits
// (SCHEMA_WAIT) for `cairn migrate` to have made the database and its schema. With
// DATABASE_DIRECT_URL set, DATABASE_URL is taken to lead through a transaction pooler (PgBouncer): the
// database is created and migrated through the direct URL, whose session can hold
// the migration lock.
func OpenDatabase(ctx context.Context, cfg config.Config, log *slog.Logger, opts ...db.Option) (*pgxpool.Pool, error) {
	if !cfg.Migrate {
		if err := db.WaitForSchema(ctx, cfg.DirectDatabaseURL(), cfg.SchemaWait, log); err != nil {
			return nil, err
		}
	}
	var (
		pool *pgxpool.Pool
		err  error
	)
	if cfg.DatabaseDirectURL == "" {
		pool, err = db.Open(ctx, cfg.DatabaseURL, opts...)
	} else {
		pool, err = db.OpenPooled(ctx, cfg.DatabaseURL, cfg.DatabaseDirectURL, opts...)
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !cfg.Migrate:
	case cfg.DatabaseDirectURL == "":
		err = db.Migrate(ctx, pool)
	default:
		err = db.MigrateURL(ctx, cfg.DatabaseDirectURL)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// newListener returns the LISTEN/NOTIFY listener: on a connection taken from the
// pool, or on its own direct connection when the pool leads through a pooler.
func newListener(cfg config.Config, pool *pgxpool.Pool, log *slog.Logger) *db.Listener {
	if cfg.DatabaseDirectURL != "" {
		return db.NewDirectListener(cfg.DatabaseDirectURL, log)
	}
	return db.NewListener(pool, log)
}
