package db_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbtest"
)

// TestListenerReconnectsAndResets kills the LISTEN connection: the listener must
// reconnect, call every reset (notifications sent meanwhile are lost, so caches
// must start over) and deliver notifications again.
func TestListenerReconnectsAndResets(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := db.NewListener(pool, slog.New(slog.DiscardHandler))
	got := make(chan string, 10)
	var resets atomic.Int32
	l.Subscribe("cairn_test_channel", func(p string) { got <- p }, func() { resets.Add(1) })
	go l.Run(ctx)
	<-l.Ready()

	notify := func(payload string) {
		t.Helper()
		if _, err := pool.Exec(ctx, "SELECT pg_notify('cairn_test_channel', $1)", payload); err != nil {
			t.Fatal(err)
		}
	}
	waitFor := func(want string) {
		t.Helper()
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("payload %q, want %q", p, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("notification %q not delivered", want)
		}
	}
	notify("one")
	waitFor("one")

	var killed int
	if err := pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d LISTEN connections (%v), want 1", killed, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for resets.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not reconnect and reset within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	notify("two")
	waitFor("two")
}
