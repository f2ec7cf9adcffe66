package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

func TestIsUnavailable(t *testing.T) {
	ctx := context.Background()
	_, refused := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
	if refused == nil {
		t.Fatal("connecting to port 1 succeeded")
	}
	pool, _ := dbtest.NewPool(t)
	_, badQuery := pool.Exec(ctx, "SELECT * FROM no_such_table")
	_, divByZero := pool.Exec(ctx, "SELECT 1/0")
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"RefusedConnection", refused, true},
		{"WrappedRefusedConnection", fmt.Errorf("retrieval: list: %w", refused), true},
		{"AdminShutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"ConnectionFailure", &pgconn.PgError{Code: "08006"}, true},
		{"TooManyConnections", &pgconn.PgError{Code: "53300"}, true},
		{"UndefinedTable", badQuery, false},
		{"DivisionByZero", divByZero, false},
		{"NoRows", pgx.ErrNoRows, false},
		{"PlainError", errors.New("boom"), false},
		{"Nil", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := db.IsUnavailable(tc.err); got != tc.want {
				t.Fatalf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
