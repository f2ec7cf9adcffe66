package mail

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/cairn-dev/cairn/internal/jobs"
)

// SendArgs is the durable job behind every email. It holds no secret: a template
// that carries a one-time link mints the token when the email is composed, inside the
// transaction that sends it, so the plain token exists only in the email itself.
type SendArgs struct {
	Template string            `json:"template"`
	To       []string          `json:"to,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// Kind implements river.JobArgs.
func (SendArgs) Kind() string { return "mail.send" }

// InsertOpts gives emails room to wait out a long SMTP outage: with the queue's
// backoff capped at 10 minutes, 60 attempts span about 9 hours.
func (SendArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 60} }

// Composer builds the message for one template. It runs inside the transaction that
// is committed once the message is handed to the SMTP server, so what it writes (a
// token's hash, a "sent" mark) exists only if the email went out. It returns ErrSkip
// when the email is no longer wanted (the invitation was revoked meanwhile). An
// empty To in the message means args.To.
type Composer func(ctx context.Context, tx pgx.Tx, args SendArgs) (Message, error)

// ErrSkip tells the outbox to drop an email without sending it.
var ErrSkip = errors.New("mail: skip")

// Outbox sends Cairn's emails through the job queue: enqueued with the change that
// causes them, sent by any replica, retried with backoff while SMTP is down.
type Outbox struct {
	pool   *pgxpool.Pool
	queue  *jobs.Queue
	mailer Mailer

	mu        sync.RWMutex
	composers map[string]Composer
}

// NewOutbox returns an Outbox and registers its worker on queue.
func NewOutbox(pool *pgxpool.Pool, queue *jobs.Queue, mailer Mailer) *Outbox {
	o := &Outbox{pool: pool, queue: queue, mailer: mailer, composers: map[string]Composer{}}
	jobs.AddWorker(queue, &sendWorker{o: o})
	return o
}

// Register sets the composer of a template; services register theirs at start.
func (o *Outbox) Register(template string, c Composer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.composers[template] = c
}

// EnqueueTx queues an email inside tx; it is sent after tx commits.
func (o *Outbox) EnqueueTx(ctx context.Context, tx pgx.Tx, args SendArgs) error {
	if _, err := o.queue.InsertTx(ctx, tx, args, nil); err != nil {
		return fmt.Errorf("mail: enqueue %s: %w", args.Template, err)
	}
	return nil
}

// EnqueueOnceTx is EnqueueTx unless the same email (template, recipients and data)
// was already queued in the current period (River aligns periods to the clock),
// sent or not: notices that anyone can
// trigger (someone tried to sign up with your address, resend my link) reach the
// recipient at most once a period however often they are triggered.
func (o *Outbox) EnqueueOnceTx(ctx context.Context, tx pgx.Tx, args SendArgs, period time.Duration) error {
	opts := &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: period}}
	if _, err := o.queue.InsertTx(ctx, tx, args, opts); err != nil {
		return fmt.Errorf("mail: enqueue %s: %w", args.Template, err)
	}
	return nil
}

type sendWorker struct {
	river.WorkerDefaults[SendArgs]
	o *Outbox
}

// Work composes and sends one email. An unknown template is a programming error and
// is not retried.
func (w *sendWorker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	w.o.mu.RLock()
	compose, ok := w.o.composers[job.Args.Template]
	w.o.mu.RUnlock()
	if !ok {
		return river.JobCancel(fmt.Errorf("mail: no composer for template %q", job.Args.Template))
	}
	return pgx.BeginFunc(ctx, w.o.pool, func(tx pgx.Tx) error {
		m, err := compose(ctx, tx, job.Args)
		if errors.Is(err, ErrSkip) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("mail: compose %s: %w", job.Args.Template, err)
		}
		if len(m.To) == 0 {
			m.To = job.Args.To
		}
		return w.o.mailer.Send(ctx, m)
	})
}
