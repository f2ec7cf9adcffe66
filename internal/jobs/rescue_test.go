package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

type slowArgs struct{}

func (slowArgs) Kind() string { return "test.slow" }

type slowWorker struct {
	river.WorkerDefaults[slowArgs]
	timeout time.Duration
}

func (w *slowWorker) Timeout(*river.Job[slowArgs]) time.Duration { return w.timeout }
func (w *slowWorker) Work(context.Context, *river.Job[slowArgs]) error {
	return nil
}

type plainArgs struct{}

func (plainArgs) Kind() string { return "test.plain" }

type plainWorker struct {
	river.WorkerDefaults[plainArgs]
}

func (plainWorker) Work(context.Context, *river.Job[plainArgs]) error { return nil }

// TestInitRefusesARescueBeforeATimeout checks the invariant a crash relies on: a
// job is rescued only after every worker's run would have timed out, so a run that
// is still going on a live replica is never handed to another.
func TestInitRefusesARescueBeforeATimeout(t *testing.T) {
	// The pool is never dialled: Init only builds the client.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	for _, tc := range []struct {
		name        string
		rescue      time.Duration
		slowTimeout time.Duration
		wantErr     string // "" for none
	}{
		{"defaults", 0, 0, ""},
		{"a worker at the default timeout", 0, 30 * time.Second, ""},
		{"a worker just under the rescue", 90 * time.Second, 89 * time.Second, ""},
		{"a worker at the rescue", 90 * time.Second, 90 * time.Second, "test.slow"},
		{"a worker past the rescue", 0, 2 * time.Minute, "test.slow"},
		{"a worker with no timeout", 0, -1, "no timeout"},
		{"a rescue at the default timeout", DefaultTimeout, 0, "test.plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := New(pool, slog.New(slog.DiscardHandler), Config{Work: true, RescueAfter: tc.rescue})
			AddWorker(q, plainWorker{})
			AddWorker(q, &slowWorker{timeout: tc.slowTimeout})
			err := q.Init()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Init: %v", err)
			case tc.wantErr != "" && (!errors.Is(err, ErrRescueTooSoon) || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Init: %v; want ErrRescueTooSoon naming %q", err, tc.wantErr)
			}
			if tc.slowTimeout == 0 && q.Timeouts()["test.slow"] != DefaultTimeout {
				t.Fatalf("a worker without a Timeout is recorded at %s, want River's default %s", q.Timeouts()["test.slow"], DefaultTimeout)
			}
		})
	}
}
