package mailtest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/mail"
)

// Recorder is a mail.Mailer that keeps what it is asked to send, for tests of one
// service that need no SMTP server.
type Recorder struct {
	mu   sync.Mutex
	sent []mail.Message
	// pool, when set, is the database of the outbox sending through the recorder.
	pool *pgxpool.Pool
}

// Send records m.
func (r *Recorder) Send(_ context.Context, m mail.Message) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, m)
	return nil
}

// Messages returns what was sent so far, oldest first.
func (r *Recorder) Messages() []mail.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mail.Message(nil), r.sent...)
}

// To returns the messages sent to address (case-insensitive), oldest first.
func (r *Recorder) To(address string) []mail.Message {
	var out []mail.Message
	for _, m := range r.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, address) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// WaitFor waits up to 20 seconds for a message to address whose subject contains
// subject and returns the newest such one. For a recorder made by Outbox it also
// waits until the sending job's transaction has committed, so what the composer
// wrote (a link's token) is there when the test uses the email, as it would be by
// the time a person clicks.
func (r *Recorder) WaitFor(tb testing.TB, address, subject string) mail.Message {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		msgs := r.To(address)
		for i := len(msgs) - 1; i >= 0; i-- {
			if strings.Contains(msgs[i].Subject, subject) {
				r.waitCommitted(tb, deadline)
				return msgs[i]
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mailtest: no email to %s with subject containing %q within 20s; sent: %v", address, subject, r.subjects())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCommitted waits until no email job is running.
func (r *Recorder) waitCommitted(tb testing.TB, deadline time.Time) {
	tb.Helper()
	if r.pool == nil {
		return
	}
	for {
		var running int
		if err := r.pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = 'mail.send' AND state = 'running'").Scan(&running); err != nil {
			tb.Fatalf("mailtest: %v", err)
		}
		if running == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mailtest: %d email jobs still running", running)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *Recorder) subjects() []string {
	var out []string
	for _, m := range r.Messages() {
		out = append(out, strings.Join(m.To, ",")+": "+m.Subject)
	}
	return out
}

// Outbox returns an outbox on pool whose job queue runs until the test ends (retrying
// quickly), sending into a Recorder. Register composers before enqueueing.
func Outbox(tb testing.TB, pool *pgxpool.Pool) (*mail.Outbox, *Recorder) {
	tb.Helper()
	rec := &Recorder{pool: pool}
	q := jobs.New(pool, slog.New(slog.DiscardHandler), jobs.Config{Work: true, RetryBase: 100 * time.Millisecond, RetryMax: time.Second})
	o := mail.NewOutbox(pool, q, rec)
	if err := q.Init(); err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		cancel()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		q.Stop(sctx)
		cancel()
	})
	return o, rec
}

// Link returns the first URL in the message whose path starts with pathPrefix.
func Link(tb testing.TB, m mail.Message, pathPrefix string) string {
	tb.Helper()
	return Message{Subject: m.Subject, Text: m.Text}.Link(tb, pathPrefix)
}
