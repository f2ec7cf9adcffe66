-- name: RetrievalStateBump :one
-- Takes the workspace's write lock for the rest of the transaction and moves its
-- version on; every document write starts here.
INSERT INTO retrieval_state (workspace_id, version) VALUES (@workspace_id, 1)
ON CONFLICT (workspace_id) DO UPDATE SET version = retrieval_state.version + 1
RETURNING *;

-- name: RetrievalStateGet :one
SELECT * FROM retrieval_state WHERE workspace_id = @workspace_id;

-- name: RetrievalStateAdd :exec
UPDATE retrieval_state
SET documents = documents + @documents::int, chunks = chunks + @chunks::bigint, tokens = tokens + @tokens::bigint
WHERE workspace_id = @workspace_id;

-- name: RetrievalStatePrune :exec
-- Drops tombstones older than a day; caches older than the newest dropped one reload fully.
WITH gone AS (
    DELETE FROM chunk_tombstones t
    WHERE t.workspace_id = @workspace_id AND t.created_at < now() - interval '1 day'
    RETURNING t.version
)
UPDATE retrieval_state s SET pruned_version = greatest(s.pruned_version, (SELECT coalesce(max(gone.version), 0) FROM gone))
WHERE s.workspace_id = @workspace_id;

-- name: DocumentCount :one
SELECT documents FROM retrieval_state WHERE workspace_id = @workspace_id;

-- name: DocumentExisting :many
-- Locks the documents a batch replaces.
SELECT id, created_at FROM documents
WHERE workspace_id = @workspace_id AND id = ANY(@ids::text[])
FOR UPDATE;

-- name: DocumentHashes :many
-- What a batch's documents hold now, to tell which are unchanged: read without
-- locks, since a document changed meanwhile is simply replaced after it.
SELECT id, content_hash, chunks, status FROM documents
WHERE workspace_id = @workspace_id AND id = ANY(@ids::text[]);

-- name: DocumentInsertMany :exec
INSERT INTO documents (workspace_id, id, title, url, metadata, text, chunks, created_at, updated_at,
                       status, status_reason, content_hash)
SELECT @workspace_id, d.id, d.title, d.url, d.metadata, d.text, d.chunks, coalesce(d.created_at, now()), now(),
       d.status, d.status_reason, nullif(d.content_hash, ''::bytea)
FROM (SELECT unnest(@ids::text[]) AS id, unnest(@titles::text[]) AS title, unnest(@urls::text[]) AS url,
             unnest(@metadata::jsonb[]) AS metadata, unnest(@texts::text[]) AS text, unnest(@chunks::int[]) AS chunks,
             unnest(@created_at::timestamptz[]) AS created_at, unnest(@statuses::text[]) AS status,
             unnest(@reasons::text[]) AS status_reason, unnest(@hashes::bytea[]) AS content_hash) AS d;

-- name: DocumentDeleteMany :exec
DELETE FROM documents WHERE workspace_id = @workspace_id AND id = ANY(@ids::text[]);

-- name: DocumentGet :one
SELECT * FROM documents WHERE workspace_id = @workspace_id AND id = @id::text;

-- name: DocumentList :many
-- Newest first; the cursor is the last row's (created_at, id).
SELECT workspace_id, id, title, url, metadata, chunks, created_at, updated_at, status, status_reason FROM documents
WHERE workspace_id = @workspace_id
  AND (sqlc.narg(after_created)::timestamptz IS NULL OR (created_at, id) < (sqlc.narg(after_created)::timestamptz, @after_id::text))
ORDER BY created_at DESC, id DESC
LIMIT @lim::int;

-- name: DocumentCapCheck :one
-- How many documents the workspace stores and how many of ids it has already,
-- read without locks so a batch over the plan's cap is refused before it is
-- chunked and embedded; the writing transaction checks again under its lock.
SELECT coalesce((SELECT s.documents FROM retrieval_state s WHERE s.workspace_id = @workspace_id), 0)::int AS stored,
       (SELECT count(*) FROM documents d WHERE d.workspace_id = @workspace_id AND d.id = ANY(@ids::text[]))::int AS existing;
