package metering

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/cairn-dev/cairn/internal/auth"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/plan"
)

// replica is one Service as one server would hold it, with its own listener.
type replica struct {
	*Service
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// newReplica builds a Service on pool whose NOTIFY subscriptions run until the test ends.
func newReplica(t testing.TB, pool *pgxpool.Pool, now func() time.Time, rdb *redis.Client) replica {
	t.Helper()
	return newReplicaWith(t, pool, now, rdb, nil)
}

// newReplicaWith is newReplica sending quota emails through outbox.
func newReplicaWith(t testing.TB, pool *pgxpool.Pool, now func() time.Time, rdb *redis.Client, outbox *mail.Outbox) replica {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	s := New(Deps{Pool: pool, Plans: plan.Default(), Log: log, Outbox: outbox, BaseURL: "http://cairn.test", Now: now, Redis: rdb})
	l := db.NewListener(pool, log)
	s.Subscribe(l)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-l.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("listener did not start")
	}
	return replica{Service: s}
}

// newPool returns a pool on a fresh database, large enough for concurrency tests.
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dbtest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newWorkspace signs a user up and returns their workspace's id.
func newWorkspace(t testing.TB, pool *pgxpool.Pool) uuid.UUID {
	t.Helper()
	_, ws, err := auth.NewService(pool).SignUp(context.Background(), "owner-"+uuid.NewString()[:8]+"@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return ws.ID
}

// eventually polls cond until it holds, failing the test after 10 seconds. It is
// for effects that cross replicas asynchronously (NOTIFY), not a timing assertion.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
