-- name: ChunkInsertMany :many
-- Titles are indexed with every chunk of their document, weighted above the body.
INSERT INTO chunks (workspace_id, document_id, position, text, tsv)
SELECT @workspace_id, c.document_id, c.position, c.text,
       setweight(to_tsvector('english', c.title), 'A') || to_tsvector('english', c.text)
FROM (SELECT unnest(@document_ids::text[]) AS document_id, unnest(@positions::int[]) AS position,
             unnest(@texts::text[]) AS text, unnest(@titles::text[]) AS title) AS c
RETURNING id, document_id, position, length(tsv)::int AS tokens;

-- name: ChunkOfDocuments :many
SELECT id, length(tsv)::int AS tokens FROM chunks
WHERE workspace_id = @workspace_id AND document_id = ANY(@document_ids::text[]);

-- name: ChunkGetMany :many
-- Joined from the id list so that the primary key serves it (see ChunkVectorGetMany).
SELECT c.id, c.document_id, c.position, c.text, d.title, d.url, d.metadata
FROM (SELECT unnest(@ids::bigint[]) AS id) AS i
JOIN chunks c ON c.id = i.id
JOIN documents d ON d.workspace_id = c.workspace_id AND d.id = c.document_id
WHERE c.workspace_id = @workspace_id;

-- name: ChunkVectorInsertMany :exec
INSERT INTO chunk_vectors (chunk_id, workspace_id, model, version, embedding)
SELECT v.chunk_id, @workspace_id, @model::text, @version::bigint, v.embedding
FROM (SELECT unnest(@chunk_ids::bigint[]) AS chunk_id, unnest(@embeddings::bytea[]) AS embedding) AS v;

-- name: ChunkVectorLoad :many
-- The vectors of one model written after a version, with what filters need.
SELECT v.chunk_id, c.document_id, d.metadata, v.embedding
FROM chunk_vectors v
JOIN chunks c ON c.id = v.chunk_id
JOIN documents d ON d.workspace_id = c.workspace_id AND d.id = c.document_id
WHERE v.workspace_id = @workspace_id AND v.model = @model::text AND v.version > @after_version::bigint
ORDER BY v.chunk_id;

-- name: ChunkTombstoneInsert :exec
INSERT INTO chunk_tombstones (workspace_id, version, chunk_id)
SELECT @workspace_id, @version::bigint, unnest(@chunk_ids::bigint[]);

-- name: ChunkTombstonesSince :many
SELECT chunk_id FROM chunk_tombstones WHERE workspace_id = @workspace_id AND version > @after_version::bigint;

-- name: TermStatsAdd :exec
INSERT INTO term_stats (workspace_id, lexeme, chunks)
SELECT @workspace_id, u.lexeme, count(*)::int
FROM (SELECT unnest(tsvector_to_array(c.tsv)) AS lexeme
      FROM (SELECT unnest(@chunk_ids::bigint[]) AS id) AS i
      JOIN chunks c ON c.id = i.id
      WHERE c.workspace_id = @workspace_id) AS u
GROUP BY u.lexeme
ON CONFLICT (workspace_id, lexeme) DO UPDATE SET chunks = term_stats.chunks + excluded.chunks;

-- name: TermStatsRemove :exec
-- Call before the chunks are deleted; lexemes no chunk uses any more disappear.
WITH gone AS (
    SELECT u.lexeme, count(*)::int AS n
    FROM (SELECT unnest(tsvector_to_array(c.tsv)) AS lexeme
          FROM (SELECT unnest(@chunk_ids::bigint[]) AS id) AS i
          JOIN chunks c ON c.id = i.id
          WHERE c.workspace_id = @workspace_id) AS u
    GROUP BY u.lexeme
), dec AS (
    UPDATE term_stats t SET chunks = t.chunks - gone.n
    FROM gone
    WHERE t.workspace_id = @workspace_id AND t.lexeme = gone.lexeme
    RETURNING t.lexeme, t.chunks
)
DELETE FROM term_stats t USING dec
WHERE t.workspace_id = @workspace_id AND t.lexeme = dec.lexeme AND dec.chunks <= 0;

-- name: TermStatsForQuery :many
-- The query's lexemes (as the index parses them), how often the query says each
-- (a word asked about twice weighs twice, as in BM25), their document frequency,
-- and the workspace's chunk count and total length.
SELECT t.lexeme, q.occurrences::int AS query_tf, t.chunks, s.chunks AS total_chunks, s.tokens AS total_tokens
FROM (SELECT u.lexeme, coalesce(array_length(u.positions, 1), 1) AS occurrences
      FROM unnest(to_tsvector('english', @query::text)) AS u(lexeme, positions, weights)) AS q
JOIN term_stats t ON t.workspace_id = @workspace_id AND t.lexeme = q.lexeme
JOIN retrieval_state s ON s.workspace_id = t.workspace_id;

-- name: ChunkTermHits :batchmany
-- The chunks containing one lexeme (@term is a quoted tsquery lexeme), read through
-- the GIN index, with what BM25 needs: the chunk's length and ts_rank of the term
-- alone, from which the term's frequency is recovered (see keywordScore).
-- @required (websearch syntax: phrases, -exclusions) must match too, and @filter
-- ({"key": [allowed values]}) is the same rule Filter.Match applies in Go.
SELECT c.id, length(c.tsv)::int AS length, ts_rank('{1,1,1,1}', c.tsv, CAST(@term::text AS tsquery), 0)::float8 AS rank
FROM chunks c
WHERE c.workspace_id = @workspace_id
  AND c.tsv @@ CAST(@term::text AS tsquery)
  AND (@required::text = '' OR c.tsv @@ websearch_to_tsquery('english', @required::text))
  AND (@filter::jsonb = '{}'::jsonb OR EXISTS (
      SELECT 1 FROM documents d
      WHERE d.workspace_id = c.workspace_id AND d.id = c.document_id
        AND NOT EXISTS (SELECT 1 FROM jsonb_each(@filter::jsonb) f WHERE NOT f.value @> jsonb_build_array(d.metadata -> f.key))
  ));

-- name: TermStatsForWords :many
-- How many chunks contain each word (as the full-text index stems it), for
-- weighting a query's words by rarity.
SELECT w.word::text AS word, coalesce(t.chunks, 0)::int AS chunks
FROM (SELECT unnest(@words::text[]) AS word) AS w
LEFT JOIN term_stats t
  ON t.workspace_id = @workspace_id AND t.lexeme = (tsvector_to_array(to_tsvector('english', w.word)))[1];

-- name: ChunkVectorGetMany :many
-- Joined from the id list so that the primary key serves it: with a plain
-- "chunk_id = ANY(…)" the planner may prefer scanning the workspace's vectors.
SELECT v.chunk_id, v.embedding
FROM (SELECT unnest(@chunk_ids::bigint[]) AS id) AS i
JOIN chunk_vectors v ON v.chunk_id = i.id
WHERE v.workspace_id = @workspace_id AND v.model = @model::text;

-- name: ChunkVectorModels :many
-- The models a workspace has vectors of, for rebuilding a vector index.
SELECT DISTINCT model FROM chunk_vectors WHERE workspace_id = @workspace_id ORDER BY model;

-- name: ChunkMatching :many
-- Which of the chunks match @required (websearch syntax: phrases, -exclusions), so
-- that a semantic search honours what a query says must match.
SELECT c.id FROM chunks c
WHERE c.workspace_id = @workspace_id AND c.id = ANY(@ids::bigint[])
  AND c.tsv @@ websearch_to_tsquery('english', @required::text);
