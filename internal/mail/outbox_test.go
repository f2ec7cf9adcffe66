package mail_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-dev/cairn/internal/db/dbtest"
	"github.com/cairn-dev/cairn/internal/jobs"
	"github.com/cairn-dev/cairn/internal/mail"
	"github.com/cairn-dev/cairn/internal/mailtest"
)

// outboxBundle is a working job queue with an outbox that sends to mailpit.
type outboxBundle struct {
	pool   *pgxpool.Pool
	outbox *mail.Outbox
	smtp   *mailtest.Server
}

func setupOutbox(t *testing.T) outboxBundle {
	t.Helper()
	pool, _ := dbtest.NewPool(t)
	smtp := mailtest.Start(t)
	mailer, err := mail.New(smtp.SMTPURL(), "http://cairn.test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	q := jobs.New(pool, slog.New(slog.DiscardHandler), jobs.Config{Work: true, RetryBase: 200 * time.Millisecond, RetryMax: time.Second})
	o := mail.NewOutbox(pool, q, mailer)
	// The "greeting" composer records that it ran in the sending transaction, so a
	// test can see that what a composer writes commits only with a sent email.
	if _, err := pool.Exec(context.Background(), "CREATE TABLE composed (name text)"); err != nil {
		t.Fatal(err)
	}
	o.Register("greeting", func(ctx context.Context, tx pgx.Tx, a mail.SendArgs) (mail.Message, error) {
		if _, err := tx.Exec(ctx, "INSERT INTO composed VALUES ($1)", a.Data["name"]); err != nil {
			return mail.Message{}, err
		}
		return mail.Message{Subject: "Hello " + a.Data["name"], Text: "Welcome to Cairn, " + a.Data["name"] + "."}, nil
	})
	o.Register("cancelled", func(context.Context, pgx.Tx, mail.SendArgs) (mail.Message, error) {
		return mail.Message{}, mail.ErrSkip
	})
	if err := q.Init(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		q.Stop(sctx)
		cancel()
	})
	return outboxBundle{pool: pool, outbox: o, smtp: smtp}
}

func (b outboxBundle) enqueue(t *testing.T, args mail.SendArgs, commit bool) {
	t.Helper()
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if err := b.outbox.EnqueueTx(ctx, tx, args); err != nil {
		t.Fatal(err)
	}
	if commit {
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func (b outboxBundle) composed(t *testing.T, name string) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), "SELECT count(*) FROM composed WHERE name = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitJobs waits until no mail job is left to run or retry.
func (b outboxBundle) waitJobs(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		err := b.pool.QueryRow(context.Background(),
			"SELECT count(*) FROM river_job WHERE kind = 'mail.send' AND state NOT IN ('completed', 'cancelled', 'discarded')").Scan(&pending)
		if err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mail jobs still pending after 30s", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestOutbox(t *testing.T) {
	t.Run("SentAfterCommit", func(t *testing.T) {
		b := setupOutbox(t)
		b.enqueue(t, mail.SendArgs{Template: "greeting", To: []string{"ada@example.com"}, Data: map[string]string{"name": "Ada"}}, true)
		m := b.smtp.WaitFor("ada@example.com", "Hello Ada", 20*time.Second)
		if !strings.Contains(m.Text, "Welcome to Cairn, Ada.") || m.From != "cairn@cairn.test" {
			t.Fatalf("email from %q: %q", m.From, m.Text)
		}
		b.waitJobs(t)
		if got := b.composed(t, "Ada"); got != 1 {
			t.Fatalf("the composer's write committed %d times, want 1", got)
		}
	})

	t.Run("RolledBackChangeSendsNothing", func(t *testing.T) {
		b := setupOutbox(t)
		b.enqueue(t, mail.SendArgs{Template: "greeting", To: []string{"ghost@example.com"}, Data: map[string]string{"name": "Ghost"}}, false)
		b.enqueue(t, mail.SendArgs{Template: "greeting", To: []string{"bob@example.com"}, Data: map[string]string{"name": "Bob"}}, true)
		b.smtp.WaitFor("bob@example.com", "Hello Bob", 20*time.Second)
		b.waitJobs(t)
		if got := b.smtp.To("ghost@example.com"); len(got) != 0 {
			t.Fatalf("a rolled-back change sent %d emails", len(got))
		}
	})

	t.Run("SMTPOutageDeliversOnceWhenBack", func(t *testing.T) {
		b := setupOutbox(t)
		b.smtp.Stop()
		b.enqueue(t, mail.SendArgs{Template: "greeting", To: []string{"cy@example.com"}, Data: map[string]string{"name": "Cy"}}, true)
		// Wait until a send has failed against the stopped server.
		deadline := time.Now().Add(20 * time.Second)
		for {
			var errs int
			if err := b.pool.QueryRow(context.Background(), "SELECT coalesce(max(cardinality(errors)), 0) FROM river_job WHERE kind = 'mail.send'").Scan(&errs); err != nil {
				t.Fatal(err)
			}
			if errs > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no failed attempt recorded while SMTP was down")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got := b.composed(t, "Cy"); got != 0 {
			t.Fatalf("a failed send committed the composer's write (%d rows)", got)
		}
		b.smtp.Resume()
		b.smtp.WaitFor("cy@example.com", "Hello Cy", 30*time.Second)
		b.waitJobs(t)
		time.Sleep(500 * time.Millisecond)
		if got := len(b.smtp.To("cy@example.com")); got != 1 {
			t.Fatalf("%d emails arrived, want exactly 1", got)
		}
	})

	t.Run("SkippedEmailIsNotSentOrRetried", func(t *testing.T) {
		b := setupOutbox(t)
		b.enqueue(t, mail.SendArgs{Template: "cancelled", To: []string{"dee@example.com"}}, true)
		b.enqueue(t, mail.SendArgs{Template: "greeting", To: []string{"eve@example.com"}, Data: map[string]string{"name": "Eve"}}, true)
		b.smtp.WaitFor("eve@example.com", "Hello Eve", 20*time.Second)
		b.waitJobs(t)
		if got := b.smtp.To("dee@example.com"); len(got) != 0 {
			t.Fatalf("a skipped email was sent: %v", got)
		}
	})

	t.Run("UnknownTemplateIsCancelled", func(t *testing.T) {
		b := setupOutbox(t)
		b.enqueue(t, mail.SendArgs{Template: "no-such-template", To: []string{"fay@example.com"}}, true)
		b.waitJobs(t)
		var state string
		if err := b.pool.QueryRow(context.Background(), "SELECT state FROM river_job WHERE kind = 'mail.send'").Scan(&state); err != nil {
			t.Fatal(err)
		}
		if state != "cancelled" {
			t.Fatalf("job state %q, want cancelled", state)
		}
	})
}

// TestOutboxNeedsInit guards the wiring order: inserting before the queue is built
// is a clear error, not a nil dereference.
func TestOutboxNeedsInit(t *testing.T) {
	pool, _ := dbtest.NewPool(t)
	q := jobs.New(pool, slog.New(slog.DiscardHandler), jobs.Config{})
	o := mail.NewOutbox(pool, q, &mail.LogMailer{Log: slog.New(slog.DiscardHandler)})
	err := pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		return o.EnqueueTx(context.Background(), tx, mail.SendArgs{Template: "x"})
	})
	if err == nil || !strings.Contains(err.Error(), "before Init") {
		t.Fatalf("err = %v, want an InsertTx-before-Init error", err)
	}
	if errors.Is(err, mail.ErrSkip) {
		t.Fatal("unexpected skip")
	}
}
