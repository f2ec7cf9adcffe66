package retrieval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
)

// ReembedArgs is the job that gives every chunk of a workspace a vector of its
// pending embedder, then switches the workspace to it. Its progress is the vectors
// themselves: a run that stops anywhere (a replica killed, a deploy) is retried by
// any replica and goes on from the chunks that still lack one.
type ReembedArgs struct {
	WorkspaceID uuid.UUID `json:"workspace_id"`
	// Model is the pending embedder's vector model; a job for a choice since
	// replaced finds another and ends.
	Model string `json:"model"`
}

// Kind implements river.JobArgs.
func (ReembedArgs) Kind() string { return "retrieval.reembed" }

// InsertOpts retries for about a day: an endpoint may be down for hours.
func (ReembedArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 150} }

// CleanupArgs is the job that deletes a workspace's vectors of a model it no longer
// uses, from the vector index and PostgreSQL.
type CleanupArgs struct {
	WorkspaceID uuid.UUID `json:"workspace_id"`
	Model       string    `json:"model"`
}

// Kind implements river.JobArgs.
func (CleanupArgs) Kind() string { return "retrieval.cleanup_vectors" }

// InsertOpts retries through a long vector index outage.
func (CleanupArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 60} }

const (
	// reembedBatch is how many chunks are embedded and stored per transaction.
	reembedBatch = 64
	// reembedSlice is how long one run starts new batches before it yields to other
	// jobs; the job continues in its next run.
	reembedSlice = 20 * time.Second
	// reembedStepTimeout bounds one batch (reading it, the embedding request with its
	// retries, storing the vectors) or the switch: a hung endpoint fails the run
	// instead of holding it past its timeout.
	reembedStepTimeout = 30 * time.Second
	// reembedTimeout is one run's timeout: a batch starts only within the slice and
	// ends within a step, so a run ends by slice + step (50 s), before it.
	reembedTimeout = time.Minute
	// cleanupBatch is how many vectors a cleanup deletes per step.
	cleanupBatch = 500
)

type reembedWorker struct {
	river.WorkerDefaults[ReembedArgs]
	s *Service
}

// Timeout bounds one run (see reembedTimeout); the queue's RescueAfter exceeds it
// (jobs.Queue.Init checks), so a run is only rescued when its replica died.
//
// Should a run still be going when it is rescued (a replica frozen past its
// timeout), the two runs overlapping cannot corrupt anything: a vector is keyed by
// (chunk, model) and stored with ON CONFLICT DO NOTHING, and the index upsert by
// the same id only writes that chunk's vector of the model again; each run's
// progress counts only the rows it inserted; and the switch happens in one
// transaction under the workspace's write lock, so the second run to get there
// finds no pending row (EmbedderPromote changes nothing, the transaction rolls
// back) and ends, and cleanup jobs are queued once, by the run that switched.
func (w *reembedWorker) Timeout(*river.Job[ReembedArgs]) time.Duration { return reembedTimeout }

func (w *reembedWorker) Work(ctx context.Context, job *river.Job[ReembedArgs]) error {
	more, err := w.s.reembed(ctx, job.Args, time.Now().Add(reembedSlice))
	if err == nil && more {
		return river.JobSnooze(time.Second)
	}
	return err
}

type cleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	s *Service
}

func (w *cleanupWorker) Work(ctx context.Context, job *river.Job[CleanupArgs]) error {
	return w.s.cleanup(ctx, job.Args)
}

// reembed embeds the workspace's chunks that lack a vector of a.Model until none
// does, then switches; it starts no step after deadline and then reports more work
// left. Each step (a batch, or the switch) is bounded by reembedStepTimeout.
func (s *Service) reembed(ctx context.Context, a ReembedArgs, deadline time.Time) (more bool, err error) {
	st := reembedState{done: -1}
	for {
		if time.Now().After(deadline) {
			return true, nil
		}
		sctx, cancel := context.WithTimeout(ctx, reembedStepTimeout)
		finished, err := s.reembedStep(sctx, a, &st)
		cancel()
		if err != nil || finished {
			return false, err
		}
	}
}

// reembedState is what a run carries from one step to the next.
type reembedState struct {
	after int64 // the last chunk id embedded in this pass
	done  int64 // chunks with a vector of the model; -1 until counted
}

// reembedStep embeds one batch, or switches when no chunk lacks a vector; it
// reports whether the job is finished (switched, or superseded by another choice).
func (s *Service) reembedStep(ctx context.Context, a ReembedArgs, st *reembedState) (finished bool, err error) {
	row, ok, err := s.pending(ctx, a)
	if err != nil || !ok {
		return true, err
	}
	if st.done < 0 {
		counts, err := s.q.ChunkVectorCount(ctx, dbq.ChunkVectorCountParams{WorkspaceID: a.WorkspaceID, Model: a.Model})
		if err != nil {
			return false, fmt.Errorf("retrieval: re-embed: %w", err)
		}
		st.done = counts.Done
		row.Total = counts.Total
	}
	batch, err := s.q.ChunkWithoutVector(ctx, dbq.ChunkWithoutVectorParams{WorkspaceID: a.WorkspaceID, AfterID: st.after, Model: a.Model, Lim: reembedBatch})
	if err != nil {
		return false, fmt.Errorf("retrieval: re-embed: %w", err)
	}
	if len(batch) == 0 {
		if st.after > 0 {
			st.after = 0 // chunks written during the pass may have lower ids than where it ended: look once more from the start
			return false, nil
		}
		return s.promote(ctx, a)
	}
	emb, err := s.embedderOf(ctx, Caller{WorkspaceID: a.WorkspaceID}, row)
	if err != nil {
		return false, err
	}
	texts := make([]string, len(batch))
	for i, r := range batch {
		texts[i] = embedText(r.Title, r.Text)
	}
	vectors, err := emb.Embed(ctx, texts)
	if err == nil && len(vectors) != len(texts) {
		err = fmt.Errorf("embedder returned %d vectors for %d texts", len(vectors), len(texts))
	}
	if err != nil {
		s.progress(a, st.done, row.Total, err)
		return false, fmt.Errorf("retrieval: re-embed: %w", err)
	}
	n, err := s.storeVectors(ctx, a, emb, batch, vectors)
	if err != nil {
		s.progress(a, st.done, row.Total, err)
		return false, err
	}
	st.done += n
	st.after = batch[len(batch)-1].ID
	s.progress(a, st.done, row.Total, nil)
	return false, nil
}

// pending returns the workspace's pending embedder if it is still a.Model.
func (s *Service) pending(ctx context.Context, a ReembedArgs) (dbq.WorkspaceEmbedder, bool, error) {
	rows, err := s.q.EmbedderGet(ctx, a.WorkspaceID)
	if err != nil {
		return dbq.WorkspaceEmbedder{}, false, fmt.Errorf("retrieval: re-embed: %w", err)
	}
	for _, r := range rows {
		if r.Slot == "pending" && r.VectorModel == a.Model {
			return r, true, nil
		}
	}
	return dbq.WorkspaceEmbedder{}, false, nil
}

// storeVectors writes one batch's vectors to PostgreSQL and the index in one
// transaction, under the workspace's write lock; it returns how many were new.
func (s *Service) storeVectors(ctx context.Context, a ReembedArgs, emb Embedder, batch []dbq.ChunkWithoutVectorRow, vectors [][]float32) (int64, error) {
	encode := encoderFor(emb)
	ids := make([]int64, len(batch))
	blobs := make([][]byte, len(batch))
	vs := make([]Vector, len(batch))
	for i, r := range batch {
		ids[i], blobs[i] = r.ID, encode(vectors[i])
		vs[i] = Vector{ID: indexID(r.ID, a.Model), DocumentID: r.DocumentID, Values: vectors[i], Metadata: decodeMetadata(r.Metadata)}
	}
	var n int64
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		st, err := q.RetrievalStateBump(ctx, a.WorkspaceID)
		if err != nil {
			return err
		}
		if n, err = q.ChunkVectorInsertExisting(ctx, dbq.ChunkVectorInsertExistingParams{
			WorkspaceID: a.WorkspaceID, Model: a.Model, Version: st.Version, ChunkIds: ids, Embeddings: blobs,
		}); err != nil {
			return err
		}
		return dependency(s.index.Upsert(ctx, a.WorkspaceID, a.Model, vs), "vector index")
	})
	if err != nil && apperr.As(err) == nil {
		err = fmt.Errorf("retrieval: re-embed: store: %w", err)
	}
	return n, err
}

// progress records how far the re-embedding got, and why it stopped if it failed;
// it is only for the dashboard, so a failure to record it is logged.
func (s *Service) progress(a ReembedArgs, done, total int64, cause error) {
	msg := ""
	if cause != nil {
		msg = "Embedding failed; retrying."
		if e := apperr.As(cause); e != nil {
			msg = e.Message
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.q.EmbedderProgress(ctx, dbq.EmbedderProgressParams{
		WorkspaceID: a.WorkspaceID, VectorModel: a.Model, Done: done, Total: max(total, done), Error: msg,
	}); err != nil {
		s.log.Warn("retrieval: could not record re-embedding progress", "workspace_id", a.WorkspaceID, "err", err)
	}
}

// promote switches the workspace to a.Model in one transaction, under the
// workspace's write lock so that no document is written meanwhile, if every chunk
// has a vector of it; else it reports false and the job embeds the rest. Every
// other model's vectors are then deleted by cleanup jobs inserted in the same
// transaction. A search reads the active embedder once, so it uses the old
// vectors or the new ones, never a mix.
func (s *Service) promote(ctx context.Context, a ReembedArgs) (bool, error) {
	switched := false
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if _, err := q.RetrievalStateBump(ctx, a.WorkspaceID); err != nil {
			return err
		}
		left, err := q.ChunkWithoutVector(ctx, dbq.ChunkWithoutVectorParams{WorkspaceID: a.WorkspaceID, AfterID: 0, Model: a.Model, Lim: 1})
		if err != nil || len(left) > 0 {
			return err
		}
		if err := q.EmbedderDelete(ctx, dbq.EmbedderDeleteParams{WorkspaceID: a.WorkspaceID, Slots: []string{"active"}}); err != nil {
			return err
		}
		n, err := q.EmbedderPromote(ctx, dbq.EmbedderPromoteParams{WorkspaceID: a.WorkspaceID, VectorModel: a.Model})
		if err != nil {
			return err
		}
		if n == 0 {
			return errSuperseded // another choice was made meanwhile; keep the active row
		}
		switched = true
		models, err := q.ChunkVectorModels(ctx, a.WorkspaceID)
		if err != nil {
			return err
		}
		for _, m := range models {
			if m != a.Model {
				if err := s.enqueueCleanup(ctx, tx, a.WorkspaceID, m); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if errors.Is(err, errSuperseded) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("retrieval: switch embedder: %w", err)
	}
	if switched {
		s.log.Info("retrieval: workspace switched embedder", "workspace_id", a.WorkspaceID, "model", a.Model)
	}
	return switched, nil
}

var errSuperseded = errors.New("retrieval: superseded")

// enqueueCleanup inserts, in tx, the job that deletes the workspace's vectors of model.
func (s *Service) enqueueCleanup(ctx context.Context, tx pgx.Tx, workspaceID uuid.UUID, model string) error {
	if s.queue == nil {
		return errors.New("retrieval: no job queue to delete old vectors with")
	}
	_, err := s.queue.InsertTx(ctx, tx, CleanupArgs{WorkspaceID: workspaceID, Model: model}, nil)
	return err
}

// cleanup deletes the workspace's vectors of a.Model, the index's first: a failure
// there leaves PostgreSQL's rows to find them by on the retry. It does nothing if
// the model is in use again (chosen back since).
func (s *Service) cleanup(ctx context.Context, a CleanupArgs) error {
	rows, err := s.q.EmbedderGet(ctx, a.WorkspaceID)
	if err != nil {
		return fmt.Errorf("retrieval: delete old vectors: %w", err)
	}
	if len(rows) == 0 {
		return nil // no choice made: nothing the workspace used was replaced
	}
	for _, r := range rows {
		if r.VectorModel == a.Model {
			return nil
		}
	}
	for {
		ids, err := s.q.ChunkVectorIDsOfModel(ctx, dbq.ChunkVectorIDsOfModelParams{WorkspaceID: a.WorkspaceID, Model: a.Model, Lim: cleanupBatch})
		if err != nil {
			return fmt.Errorf("retrieval: delete old vectors: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		strIDs := make([]string, len(ids))
		for i, id := range ids {
			strIDs[i] = indexID(id, a.Model)
		}
		if err := s.index.Delete(ctx, a.WorkspaceID, strIDs); err != nil {
			return dependency(err, "vector index")
		}
		if err := s.q.ChunkVectorDeleteIDs(ctx, dbq.ChunkVectorDeleteIDsParams{WorkspaceID: a.WorkspaceID, Model: a.Model, ChunkIds: ids}); err != nil {
			return fmt.Errorf("retrieval: delete old vectors: %w", err)
		}
	}
}
