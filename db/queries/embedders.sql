-- name: EmbedderGet :many
-- A workspace's active and pending embedder rows ('active' sorts first).
SELECT * FROM workspace_embedders WHERE workspace_id = @workspace_id ORDER BY slot;

-- name: EmbedderActive :one
SELECT * FROM workspace_embedders WHERE workspace_id = @workspace_id AND slot = 'active';

-- name: EmbedderSetPending :exec
-- A new choice replaces any choice still being re-embedded to.
INSERT INTO workspace_embedders (workspace_id, slot, provider, base_url, model, dimensions, api_key, vector_model, total)
VALUES (@workspace_id, 'pending', @provider, @base_url, @model, @dimensions, @api_key, @vector_model, @total)
ON CONFLICT (workspace_id, slot) DO UPDATE SET
    provider = excluded.provider, base_url = excluded.base_url, model = excluded.model,
    dimensions = excluded.dimensions, api_key = excluded.api_key, vector_model = excluded.vector_model,
    done = 0, total = excluded.total, error = '', updated_at = now();

-- name: EmbedderDelete :exec
-- Run before EmbedderSetActive, in its transaction.
DELETE FROM workspace_embedders WHERE workspace_id = @workspace_id AND slot = ANY(@slots::text[]);

-- name: EmbedderSetActive :exec
-- Makes a choice active at once (nothing to re-embed); EmbedderDelete clears the slots first.
INSERT INTO workspace_embedders (workspace_id, slot, provider, base_url, model, dimensions, api_key, vector_model)
VALUES (@workspace_id, 'active', @provider, @base_url, @model, @dimensions, @api_key, @vector_model);

-- name: EmbedderProgress :exec
UPDATE workspace_embedders SET done = @done, total = @total, error = @error, updated_at = now()
WHERE workspace_id = @workspace_id AND slot = 'pending' AND vector_model = @vector_model;

-- name: EmbedderPromote :execrows
-- The switch: the pending row becomes the active one, in the caller's transaction
-- after EmbedderDelete of the active row.
UPDATE workspace_embedders SET slot = 'active', done = total, error = '', updated_at = now()
WHERE workspace_id = @workspace_id AND slot = 'pending' AND vector_model = @vector_model;

-- name: EmbedderResealKey :exec
UPDATE workspace_embedders SET api_key = @api_key WHERE workspace_id = @workspace_id AND slot = @slot;

-- name: ChunkWithoutVector :many
-- The workspace's next chunks, after a chunk id, that have no vector of @model, with
-- their documents' titles: a re-embedding's next batch. Ordered by id, so a job
-- that stops and starts again goes on where the vectors end.
SELECT c.id, c.document_id, c.text, d.title, d.metadata
FROM chunks c
JOIN documents d ON d.workspace_id = c.workspace_id AND d.id = c.document_id
WHERE c.workspace_id = @workspace_id AND c.id > @after_id::bigint
  AND NOT EXISTS (SELECT 1 FROM chunk_vectors v WHERE v.chunk_id = c.id AND v.model = @model::text)
ORDER BY c.id
LIMIT @lim;

-- name: ChunkVectorCount :one
-- How many of the workspace's chunks have a vector of model, and how many chunks it has.
SELECT (SELECT count(*) FROM chunk_vectors v WHERE v.workspace_id = @workspace_id AND v.model = @model::text)::bigint AS done,
       (SELECT count(*) FROM chunks c WHERE c.workspace_id = @workspace_id)::bigint AS total;

-- name: ChunkVectorIDsOfModel :many
-- Up to @lim chunk ids with a vector of a model, for deleting that model's vectors.
SELECT chunk_id FROM chunk_vectors WHERE workspace_id = @workspace_id AND model = @model::text LIMIT @lim;

-- name: ChunkVectorDeleteIDs :exec
DELETE FROM chunk_vectors
WHERE workspace_id = @workspace_id AND model = @model::text AND chunk_id = ANY(@chunk_ids::bigint[]);

-- name: ChunkVectorInsertExisting :execrows
-- Like ChunkVectorInsertMany, for a re-embedding: chunks deleted since they were
-- read are skipped, and a vector already there is kept.
INSERT INTO chunk_vectors (chunk_id, workspace_id, model, version, embedding)
SELECT v.chunk_id, @workspace_id, @model::text, @version::bigint, v.embedding
FROM (SELECT unnest(@chunk_ids::bigint[]) AS chunk_id, unnest(@embeddings::bytea[]) AS embedding) AS v
JOIN chunks c ON c.id = v.chunk_id AND c.workspace_id = @workspace_id
ON CONFLICT (chunk_id, model) DO NOTHING;
