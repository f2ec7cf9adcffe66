package retrieval

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-dev/cairn/internal/apperr"
	"github.com/cairn-dev/cairn/internal/audit"
	"github.com/cairn-dev/cairn/internal/db"
	"github.com/cairn-dev/cairn/internal/db/dbq"
	"github.com/cairn-dev/cairn/internal/plan"
)

// Document statuses.
const (
	// StatusIndexed: stored, chunked, embedded and searchable.
	StatusIndexed = "indexed"
	// StatusFailed: saved, but nothing could be indexed; Reason says why.
	StatusFailed = "failed"
)

// Stored is what an upsert reports per document.
type Stored struct {
	ID     string
	Chunks int
	// Unchanged is set when the document already held exactly this content: it
	// was neither written nor embedded again.
	Unchanged bool
	Status    string
	// Reason says why a document failed.
	Reason string
}

// Document is a stored document; Text is only filled by Get.
type Document struct {
	ID        string
	Title     string
	URL       string
	Metadata  map[string]any
	Chunks    int
	Text      string
	Status    string
	Reason    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// prepared is one document of an upsert on its way in.
type prepared struct {
	DocumentInput
	metadata []byte
	hash     []byte
	chunks   []string
	// failed is the reason nothing of it can be indexed (a page without readable text).
	failed string
}

// Upsert stores the documents, replacing any with the same id, and reports each
// one's outcome in order. A document without an id gets one derived from its
// canonical URL (so saving a page again replaces it), or a random one without a
// URL. A page sent as HTML is reduced to its readable text and title; one with
// none is saved as failed with the reason, keeping any earlier version of it. A
// document that already holds exactly this content is left alone: no write, no
// embedding (Unchanged).
//
// Everything else is one transaction: either all of it is stored, chunked,
// embedded and indexed, or none is. It returns forbidden when the plan's document
// cap would be passed (before any reading, chunking or embedding, and before the
// quota is taken) and unavailable (nothing stored) when the embedder or the
// vector index fails.
func (s *Service) Upsert(ctx context.Context, c Caller, docs []DocumentInput) ([]Stored, error) {
	docs, err := assignIDs(docs)
	if err != nil {
		return nil, err
	}
	if err := s.checkDocumentCap(ctx, c, docs); err != nil {
		return nil, err
	}
	if err := c.take(ctx); err != nil {
		return nil, err
	}
	emb, err := s.embedderFor(ctx, c)
	if err != nil {
		return nil, err
	}
	batch := make([]prepared, len(docs))
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
		p := prepared{DocumentInput: d}
		if d.HTML != "" {
			page, err := ExtractPage(d.HTML, d.URL)
			if err != nil {
				p.failed = err.Error()
			}
			p.Text, p.HTML = page.Text, ""
			if p.Title == "" {
				p.Title = truncateRunes(page.Title, maxTitleRunes-1)
			}
		}
		md := d.Metadata
		if md == nil {
			md = map[string]any{}
		}
		if p.metadata, err = json.Marshal(md); err != nil {
			return nil, fmt.Errorf("retrieval: encode metadata: %w", err)
		}
		if p.failed == "" {
			p.hash = contentHash(emb.Model(), s.chunker, p.DocumentInput, p.metadata)
		}
		batch[i] = p
	}

	// What is stored already: unchanged documents are answered from it, and a
	// failed page does not replace an earlier version that worked.
	current, err := s.q.DocumentHashes(ctx, dbq.DocumentHashesParams{WorkspaceID: c.WorkspaceID, Ids: ids})
	if err != nil {
		return nil, fmt.Errorf("retrieval: read stored documents: %w", err)
	}
	stored := make(map[string]dbq.DocumentHashesRow, len(current))
	for _, r := range current {
		stored[r.ID] = r
	}
	out := make([]Stored, len(batch))
	var write []prepared
	var texts []string
	for i, d := range batch {
		cur, exists := stored[d.ID]
		switch {
		case d.failed != "" && exists:
			out[i] = Stored{ID: d.ID, Chunks: int(cur.Chunks), Status: StatusFailed, Reason: d.failed + "; the version saved before is kept"}
		case d.failed != "":
			out[i] = Stored{ID: d.ID, Status: StatusFailed, Reason: d.failed}
			write = append(write, d)
		case exists && cur.Status == StatusIndexed && bytes.Equal(cur.ContentHash, d.hash):
			out[i] = Stored{ID: d.ID, Chunks: int(cur.Chunks), Unchanged: true, Status: StatusIndexed}
		default:
			d.chunks = s.chunker.Split(d.Text)
			for _, ch := range d.chunks {
				texts = append(texts, embedText(d.Title, ch))
			}
			out[i] = Stored{ID: d.ID, Chunks: len(d.chunks), Status: StatusIndexed}
			write = append(write, d)
		}
	}
	if len(write) == 0 {
		return out, nil
	}

	// Embedding is the slow, fallible network step: it happens before anything is
	// written, and not at all when nothing changed.
	var vectors [][]float32
	if len(texts) > 0 {
		if vectors, err = emb.Embed(ctx, texts); err != nil {
			return nil, dependency(err, "embedding service")
		}
		if len(vectors) != len(texts) {
			return nil, dependency(fmt.Errorf("embedder returned %d vectors for %d texts", len(vectors), len(texts)), "embedding service")
		}
	}
	batch = write

	var replaced []int64 // chunks whose vectors go once the transaction commits
	err = db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		st, err := q.RetrievalStateBump(ctx, c.WorkspaceID)
		if err != nil {
			return err
		}
		ids := make([]string, len(batch))
		for i, d := range batch {
			ids[i] = d.ID
		}
		existing, err := q.DocumentExisting(ctx, dbq.DocumentExistingParams{WorkspaceID: c.WorkspaceID, Ids: ids})
		if err != nil {
			return err
		}
		created := map[string]time.Time{}
		for _, e := range existing {
			created[e.ID] = e.CreatedAt
		}
		// A failed page saved meanwhile under an id that now exists keeps what is there.
		kept := map[string]bool{}
		batch = slices.DeleteFunc(batch, func(d prepared) bool {
			_, exists := created[d.ID]
			if d.failed != "" && exists {
				kept[d.ID] = true
				return true
			}
			return false
		})
		existing = slices.DeleteFunc(existing, func(e dbq.DocumentExistingRow) bool { return kept[e.ID] })
		added := len(batch) - len(existing)
		if limit := s.plans.Get(c.Plan).Limits.Documents; added > 0 && limit != plan.Unlimited && int(st.Documents)+added > limit {
			// Replacing never adds, so a workspace over its cap after a downgrade can still update what it has.
			return documentCapError(s.plans, c.Plan, int(st.Documents), added)
		}
		oldChunks, oldTokens, oldIDs, err := s.removeChunks(ctx, q, c.WorkspaceID, st.Version, existingIDs(existing))
		if err != nil {
			return err
		}

		p := dbq.DocumentInsertManyParams{WorkspaceID: c.WorkspaceID}
		var cp dbq.ChunkInsertManyParams
		cp.WorkspaceID = c.WorkspaceID
		for _, d := range batch {
			p.Ids = append(p.Ids, d.ID)
			p.Titles = append(p.Titles, d.Title)
			p.Urls = append(p.Urls, d.URL)
			p.Metadata = append(p.Metadata, d.metadata)
			p.Texts = append(p.Texts, d.Text)
			p.Chunks = append(p.Chunks, int32(len(d.chunks)))
			status, reason := StatusIndexed, ""
			if d.failed != "" {
				status, reason = StatusFailed, d.failed
			}
			p.Statuses = append(p.Statuses, status)
			p.Reasons = append(p.Reasons, reason)
			p.Hashes = append(p.Hashes, d.hash)
			t, ok := created[d.ID]
			if !ok {
				t = time.Now()
			}
			p.CreatedAt = append(p.CreatedAt, t)
			for j, ch := range d.chunks {
				cp.DocumentIds = append(cp.DocumentIds, d.ID)
				cp.Positions = append(cp.Positions, int32(j))
				cp.Texts = append(cp.Texts, ch)
				cp.Titles = append(cp.Titles, d.Title)
			}
		}
		if err := q.DocumentInsertMany(ctx, p); err != nil {
			return err
		}
		rows, err := q.ChunkInsertMany(ctx, cp)
		if err != nil {
			return err
		}
		// Match returned rows to their vectors by (document, position), not by order.
		vecOf := make(map[chunkKey][]float32, len(vectors))
		k := 0
		for _, d := range batch {
			for j := range d.chunks {
				vecOf[chunkKey{d.ID, int32(j)}] = vectors[k]
				k++
			}
		}
		var (
			chunkIDs []int64
			blobs    [][]byte
			tokens   int64
			vs       = make([]Vector, len(rows))
			metaOf   = map[string]map[string]any{}
		)
		for _, d := range batch {
			metaOf[d.ID] = d.Metadata
		}
		encode := encoderFor(emb)
		for i, r := range rows {
			v := vecOf[chunkKey{r.DocumentID, r.Position}]
			chunkIDs = append(chunkIDs, r.ID)
			blobs = append(blobs, encode(v))
			tokens += int64(r.Tokens)
			vs[i] = Vector{ID: indexID(r.ID, emb.Model()), DocumentID: r.DocumentID, Values: v, Metadata: metaOf[r.DocumentID]}
		}
		if err := q.ChunkVectorInsertMany(ctx, dbq.ChunkVectorInsertManyParams{
			WorkspaceID: c.WorkspaceID, Model: emb.Model(), Version: st.Version, ChunkIds: chunkIDs, Embeddings: blobs,
		}); err != nil {
			return err
		}
		if err := q.TermStatsAdd(ctx, dbq.TermStatsAddParams{WorkspaceID: c.WorkspaceID, ChunkIds: chunkIDs}); err != nil {
			return err
		}
		if err := q.RetrievalStateAdd(ctx, dbq.RetrievalStateAddParams{
			WorkspaceID: c.WorkspaceID, Documents: int32(added),
			Chunks: int64(len(rows)) - oldChunks, Tokens: tokens - oldTokens,
		}); err != nil {
			return err
		}
		// The index is written last, inside the transaction: if it fails, nothing was
		// stored. Vectors it took before failing name chunk ids that will never exist,
		// and searches only return chunks PostgreSQL has.
		if len(vs) > 0 {
			if err := s.index.Upsert(ctx, c.WorkspaceID, emb.Model(), vs); err != nil {
				return dependency(err, "vector index")
			}
		}
		replaced = oldIDs
		return nil
	})
	if err != nil {
		if apperr.As(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("retrieval: upsert: %w", err)
	}
	// Replaced chunks leave the index only once PostgreSQL no longer has them: a
	// failure here leaves vectors naming chunks that no longer exist, which searches
	// never return, whereas deleting first could lose vectors of a kept document.
	s.forget(ctx, c.WorkspaceID, replaced)
	return out, nil
}

type chunkKey struct {
	doc string
	pos int32
}

// forget removes from the index the vectors of chunks PostgreSQL no longer has.
// They are unreachable anyway (searches only return chunks PostgreSQL has), so a
// failure only costs the index space and is logged, not returned.
func (s *Service) forget(ctx context.Context, workspaceID uuid.UUID, chunkIDs []int64) {
	if len(chunkIDs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	ids := s.indexIDs(ctx, workspaceID, chunkIDs)
	if err := s.index.Delete(ctx, workspaceID, ids); err != nil {
		s.log.Warn("retrieval: could not remove vectors of deleted chunks; they are never returned", "workspace_id", workspaceID, "count", len(ids), "err", err)
	}
}

// removeChunks deletes the documents' chunks' statistics and records tombstones at
// version; the caller deletes the documents (chunks and vectors cascade). It
// returns how many chunks and tokens went, and their ids for the vector index.
func (s *Service) removeChunks(ctx context.Context, q *dbq.Queries, workspaceID uuid.UUID, version int64, docIDs []string) (int64, int64, []int64, error) {
	if len(docIDs) == 0 {
		return 0, 0, nil, nil
	}
	rows, err := q.ChunkOfDocuments(ctx, dbq.ChunkOfDocumentsParams{WorkspaceID: workspaceID, DocumentIds: docIDs})
	if err != nil {
		return 0, 0, nil, err
	}
	ids := make([]int64, len(rows))
	var tokens int64
	for i, r := range rows {
		ids[i] = r.ID
		tokens += int64(r.Tokens)
	}
	if err := q.TermStatsRemove(ctx, dbq.TermStatsRemoveParams{WorkspaceID: workspaceID, ChunkIds: ids}); err != nil {
		return 0, 0, nil, err
	}
	if err := q.ChunkTombstoneInsert(ctx, dbq.ChunkTombstoneInsertParams{WorkspaceID: workspaceID, Version: version, ChunkIds: ids}); err != nil {
		return 0, 0, nil, err
	}
	if version%64 == 0 {
		if err := q.RetrievalStatePrune(ctx, workspaceID); err != nil {
			return 0, 0, nil, err
		}
	}
	if err := q.DocumentDeleteMany(ctx, dbq.DocumentDeleteManyParams{WorkspaceID: workspaceID, Ids: docIDs}); err != nil {
		return 0, 0, nil, err
	}
	return int64(len(rows)), tokens, ids, nil
}

// checkDocumentCap refuses a batch that would take the workspace past its plan's
// document cap, reading the counts without locks: it spares a refused batch the
// chunking and embedding. The transaction checks again under the workspace's lock,
// so a batch that races past this check is still refused there.
func (s *Service) checkDocumentCap(ctx context.Context, c Caller, docs []DocumentInput) error {
	limit := s.plans.Get(c.Plan).Limits.Documents
	if limit == plan.Unlimited {
		return nil
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		if d.ID != "" {
			ids = append(ids, d.ID)
		}
	}
	n, err := s.q.DocumentCapCheck(ctx, dbq.DocumentCapCheckParams{WorkspaceID: c.WorkspaceID, Ids: ids})
	if err != nil {
		return fmt.Errorf("retrieval: check document cap: %w", err)
	}
	if added := len(docs) - int(n.Existing); added > 0 && int(n.Stored)+added > limit {
		return documentCapError(s.plans, c.Plan, int(n.Stored), added)
	}
	return nil
}

func existingIDs(rows []dbq.DocumentExistingRow) []string {
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	return ids
}

// documentCapError explains that the plan allows no more documents, naming the
// plan that allows more.
func documentCapError(plans plan.Table, id plan.ID, stored, adding int) error {
	cur := plans.Get(id)
	msg := fmt.Sprintf("The %s plan allows %s documents; this workspace stores %d and the request adds %d. Delete documents",
		cur.Name, plan.Format(int64(cur.Limits.Documents)), stored, adding)
	if next, ok := plans.Next(id, func(l plan.Limits) int64 { return int64(l.Documents) }); ok {
		msg += fmt.Sprintf(" or upgrade to %s (%s documents)", next.Name, plan.Format(int64(next.Limits.Documents)))
	}
	return apperr.New(apperr.Forbidden, "%s.", msg)
}

// Delete removes a document; its chunks leave every index before it returns,
// PostgreSQL first, so a vector index that fails to delete keeps only vectors no
// search returns. It returns not_found when the workspace has no such document.
func (s *Service) Delete(ctx context.Context, workspaceID uuid.UUID, id string) error {
	// No document can have an invalid id; PostgreSQL would refuse a NUL in it.
	if ValidateID(id) != nil {
		return errNoDocument
	}
	var gone []int64 // chunks whose vectors go once the transaction commits
	err := db.Tx(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		st, err := q.RetrievalStateBump(ctx, workspaceID)
		if err != nil {
			return err
		}
		existing, err := q.DocumentExisting(ctx, dbq.DocumentExistingParams{WorkspaceID: workspaceID, Ids: []string{id}})
		if err != nil {
			return err
		}
		if len(existing) == 0 {
			return errNoDocument
		}
		chunks, tokens, ids, err := s.removeChunks(ctx, q, workspaceID, st.Version, []string{id})
		if err != nil {
			return err
		}
		if err := q.RetrievalStateAdd(ctx, dbq.RetrievalStateAddParams{
			WorkspaceID: workspaceID, Documents: -1, Chunks: -chunks, Tokens: -tokens,
		}); err != nil {
			return err
		}
		gone = ids
		// A person deleting from the dashboard is audited; the API's own deletions
		// (an extension pruning what it stored) are counted in usage instead.
		if audit.ActorFrom(ctx).Kind == audit.ActorUser {
			return audit.Record(ctx, q, audit.Entry{
				WorkspaceID: workspaceID, Action: audit.DocumentDeleted, TargetKind: "document", TargetID: id,
				Detail: map[string]any{"chunks": chunks},
			})
		}
		return nil
	})
	if err != nil && apperr.As(err) == nil {
		return fmt.Errorf("retrieval: delete: %w", err)
	}
	if err == nil {
		s.forget(ctx, workspaceID, gone)
	}
	return err
}

var errNoDocument = apperr.New(apperr.NotFound, "No document with that id in this workspace.")

// Get returns a document with its text, or not_found.
func (s *Service) Get(ctx context.Context, workspaceID uuid.UUID, id string) (Document, error) {
	if ValidateID(id) != nil {
		return Document{}, errNoDocument
	}
	r, err := s.q.DocumentGet(ctx, dbq.DocumentGetParams{WorkspaceID: workspaceID, ID: id})
	if errors.Is(err, pgx.ErrNoRows) {
		return Document{}, errNoDocument
	}
	if err != nil {
		return Document{}, fmt.Errorf("retrieval: get document: %w", err)
	}
	return Document{
		ID: r.ID, Title: r.Title, URL: r.Url, Metadata: decodeMetadata(r.Metadata), Chunks: int(r.Chunks),
		Text: r.Text, Status: r.Status, Reason: r.StatusReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
	}, nil
}

// List returns up to limit documents, newest first, after cursor (from a previous
// page; "" for the first). next is "" on the last page.
func (s *Service) List(ctx context.Context, workspaceID uuid.UUID, limit int, cursor string) (docs []Document, next string, err error) {
	p := dbq.DocumentListParams{WorkspaceID: workspaceID, Lim: int32(limit + 1)}
	if cursor != "" {
		t, id, err := decodeCursor(cursor)
		if err != nil {
			return nil, "", err
		}
		p.AfterCreated, p.AfterID = &t, id
	}
	rows, err := s.q.DocumentList(ctx, p)
	if err != nil {
		return nil, "", fmt.Errorf("retrieval: list documents: %w", err)
	}
	for i, r := range rows {
		if i == limit {
			last := rows[i-1]
			next = encodeCursor(last.CreatedAt, last.ID)
			break
		}
		docs = append(docs, Document{
			ID: r.ID, Title: r.Title, URL: r.Url, Metadata: decodeMetadata(r.Metadata), Chunks: int(r.Chunks),
			Status: r.Status, Reason: r.StatusReason, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		})
	}
	return docs, next, nil
}

// A cursor is the last row's creation time (µs) and id, opaque to callers.
func encodeCursor(t time.Time, id string) string {
	b := binary.AppendVarint(nil, t.UnixMicro())
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

func decodeCursor(s string) (time.Time, string, error) {
	bad := apperr.Field("cursor", "is not a cursor this API returned")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return time.Time{}, "", bad
	}
	us, n := binary.Varint(b)
	if n <= 0 || ValidateID(string(b[n:])) != nil {
		return time.Time{}, "", bad
	}
	// Every cursor this API returns holds a row's creation time; a forged one may hold
	// a time PostgreSQL cannot represent (22008), which is the caller's error.
	t := time.UnixMicro(us)
	if y := t.UTC().Year(); y < 2000 || y > 9999 {
		return time.Time{}, "", bad
	}
	return t, string(b[n:]), nil
}

// embedText is what a chunk's vector is made from: the title gives every chunk its
// document's context.
func embedText(title, chunk string) string {
	if title == "" {
		return chunk
	}
	return title + "\n\n" + chunk
}
