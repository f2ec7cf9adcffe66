package db

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Listener delivers PostgreSQL NOTIFY messages to in-process caches, so a change
// made through one replica reaches every replica at once. When the connection is
// lost, every subscriber's reset runs after reconnecting, because notifications sent
// meanwhile are gone.
type Listener struct {
	// connect opens the connection that carries LISTEN; it is never shared.
	connect func(ctx context.Context) (*pgx.Conn, error)
	log     *slog.Logger

	mu   sync.RWMutex
	subs map[string][]subscription
	up   chan struct{}
}

type subscription struct {
	notify func(payload string)
	reset  func()
}

// NewListener returns a Listener that takes its connection from pool; call Run to
// start it. The pool must reach PostgreSQL directly: LISTEN through a transaction
// pooler hears nothing.
func NewListener(pool *pgxpool.Pool, log *slog.Logger) *Listener {
	return newListener(func(ctx context.Context) (*pgx.Conn, error) {
		conn, err := pool.Acquire(ctx)
		if err != nil {
			return nil, err
		}
		// The connection carries LISTEN state, so it never goes back to the pool.
		return conn.Hijack(), nil
	}, log)
}

// NewDirectListener returns a Listener that opens its own connection to
// databaseURL, for replicas whose pool leads through a transaction pooler.
func NewDirectListener(databaseURL string, log *slog.Logger) *Listener {
	return newListener(func(ctx context.Context) (*pgx.Conn, error) { return Connect(ctx, databaseURL) }, log)
}

func newListener(connect func(context.Context) (*pgx.Conn, error), log *slog.Logger) *Listener {
	return &Listener{connect: connect, log: log, subs: map[string][]subscription{}, up: make(chan struct{})}
}

// Subscribe registers notify for channel and reset for reconnections. Call it before Run.
func (l *Listener) Subscribe(channel string, notify func(payload string), reset func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs[channel] = append(l.subs[channel], subscription{notify, reset})
}

// Ready is closed once the first LISTEN is in place.
func (l *Listener) Ready() <-chan struct{} { return l.up }

// Run listens until ctx is done, reconnecting with backoff.
func (l *Listener) Run(ctx context.Context) {
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := l.listen(ctx, func() {
			if first {
				close(l.up)
				first = false
			} else {
				l.resetAll()
			}
			backoff = 100 * time.Millisecond
		})
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("notify listener disconnected; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *Listener) listen(ctx context.Context, connected func()) error {
	pc, err := l.connect(ctx)
	if err != nil {
		return err
	}
	defer pc.Close(context.Background())
	l.mu.RLock()
	for ch := range l.subs {
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			l.mu.RUnlock()
			return err
		}
	}
	l.mu.RUnlock()
	connected()
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.mu.RLock()
		subs := l.subs[n.Channel]
		l.mu.RUnlock()
		for _, s := range subs {
			s.notify(n.Payload)
		}
	}
}

func (l *Listener) resetAll() {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, subs := range l.subs {
		for _, s := range subs {
			if s.reset != nil {
				s.reset()
			}
		}
	}
}
