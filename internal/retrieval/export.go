package retrieval

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// exportPage is how many documents an export reads at a time: at the 1 MiB text
// cap a page is 64 MiB at worst, and typical pages of saved web pages a few MiB.
const exportPage = 64

// EachDocument calls fn with every document of the workspace, text included, in id
// order. It reads keyset pages, so memory is bounded by one page however many
// documents there are; documents written meanwhile may or may not be seen, and
// none is seen twice. It stops at fn's first error and returns it.
func (s *Service) EachDocument(ctx context.Context, workspaceID uuid.UUID, fn func(Document) error) error {
	after := ""
	for {
		rows, err := s.q.DocumentExportPage(ctx, dbq.DocumentExportPageParams{WorkspaceID: workspaceID, AfterID: after, Lim: exportPage})
		if err != nil {
			return dependency(fmt.Errorf("retrieval: export documents: %w", err), "database")
		}
		for _, r := range rows {
			d := Document{
				ID: r.ID, Title: r.Title, URL: r.Url, Metadata: decodeMetadata(r.Metadata), Chunks: int(r.Chunks),
				Text: r.Text, Status: r.Status, Reason: r.StatusReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(rows) < exportPage {
			return nil
		}
		after = rows[len(rows)-1].ID
	}
}

// ChannelWorkspaceDropped is the NOTIFY channel whose payload is the id of a
// workspace whose documents were all deleted with it: every replica's builtin index
// lets go of its cached vectors at once rather than when the budget pushes them out.
const ChannelWorkspaceDropped = "cairn_workspace_dropped"

// Subscribe makes workspace deletions on any replica reach this one's vector cache.
func (s *Service) Subscribe(l *db.Listener) {
	b, ok := s.index.(*BuiltinIndex)
	if !ok {
		return
	}
	l.Subscribe(ChannelWorkspaceDropped, func(payload string) {
		if id, err := uuid.Parse(payload); err == nil {
			b.Forget(id)
		}
	}, nil)
}

// Forget drops every cached vector of the workspace from this replica's memory.
func (b *BuiltinIndex) Forget(workspaceID uuid.UUID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.models[workspaceID] {
		b.drop(e)
	}
}

// Holds reports how many vectors of the workspace this replica's cache holds, for
// tests that check a deleted workspace left nothing behind.
func (b *BuiltinIndex) Holds(workspaceID uuid.UUID) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, e := range b.models[workspaceID] {
		e.mu.RLock()
		n += len(e.ids)
		e.mu.RUnlock()
	}
	return n
}

// WorkspaceDropper is an optional VectorIndex ability: removing every vector of a
// workspace at once (Pinecone deletes its namespace).
type WorkspaceDropper interface {
	DropWorkspace(ctx context.Context, workspaceID uuid.UUID) error
}

// DropWorkspaceArgs is the durable job that empties a deleted workspace's space in
// an external vector index.
type DropWorkspaceArgs struct {
	WorkspaceID uuid.UUID `json:"workspace_id"`
}

// Kind implements river.JobArgs.
func (DropWorkspaceArgs) Kind() string { return "retrieval.drop_workspace" }

// InsertOpts retries for about a day: vectors of a deleted account must not stay.
func (DropWorkspaceArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 150} }

type dropWorkspaceWorker struct {
	river.WorkerDefaults[DropWorkspaceArgs]
	s *Service
}

func (w *dropWorkspaceWorker) Work(ctx context.Context, job *river.Job[DropWorkspaceArgs]) error {
	d, ok := w.s.index.(WorkspaceDropper)
	if !ok {
		return nil
	}
	if err := d.DropWorkspace(ctx, job.Args.WorkspaceID); err != nil {
		return fmt.Errorf("retrieval: drop workspace %s: %w", job.Args.WorkspaceID, err)
	}
	return nil
}

// DropWorkspacesTx is called in the transaction that deletes workspaces (their
// rows, and so their chunks and vectors, go with it): every replica's builtin cache
// is told at commit, and an external index gets a job that empties each one's
// namespace once the deletion commits.
func (s *Service) DropWorkspacesTx(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) error {
	q := s.q.WithTx(tx)
	_, external := s.index.(WorkspaceDropper)
	for _, id := range ids {
		if err := q.Notify(ctx, dbq.NotifyParams{Channel: ChannelWorkspaceDropped, Payload: id.String()}); err != nil {
			return fmt.Errorf("retrieval: drop workspace: %w", err)
		}
		if !external {
			continue
		}
		if s.queue == nil {
			return fmt.Errorf("retrieval: drop workspace %s: no job queue to empty the vector index with", id)
		}
		if _, err := s.queue.InsertTx(ctx, tx, DropWorkspaceArgs{WorkspaceID: id}, nil); err != nil {
			return err
		}
	}
	return nil
}
