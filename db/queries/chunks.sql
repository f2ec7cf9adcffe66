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
SELECT c.id, c.document_id, c.position, c.text, d.title, d.url, d.metadata
FROM chunks c
JOIN documents d ON d.workspace_id = c.workspace_id AND d.id = c.document_id
WHERE c.workspace_id = @workspace_id AND c.id = ANY(@ids::bigint[]);

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
      FROM chunks c WHERE c.workspace_id = @workspace_id AND c.id = ANY(@chunk_ids::bigint[])) AS u
GROUP BY u.lexeme
ON CONFLICT (workspace_id, lexeme) DO UPDATE SET chunks = term_stats.chunks + excluded.chunks;

-- name: TermStatsRemove :exec
-- Call before the chunks are deleted; lexemes no chunk uses any more disappear.
WITH gone AS (
    SELECT u.lexeme, count(*)::int AS n
    FROM (SELECT unnest(tsvector_to_array(c.tsv)) AS lexeme
          FROM chunks c WHERE c.workspace_id = @workspace_id AND c.id = ANY(@chunk_ids::bigint[])) AS u
    GROUP BY u.lexeme
), dec AS (
    UPDATE term_stats t SET chunks = t.chunks - gone.n
    FROM gone
    WHERE t.workspace_id = @workspace_id AND t.lexeme = gone.lexeme
    RETURNING t.lexeme, t.chunks
)
DELETE FROM term_stats t USING dec
WHERE t.workspace_id = @workspace_id AND t.lexeme = dec.lexeme AND dec.chunks <= 0;

-- name: ChunkSearchKeyword :many
-- BM25 over PostgreSQL full text: any query lexeme matches (term at a time through
-- the GIN index), scored by idf from term_stats and a term frequency recovered from
-- ts_rank, which for a single lexeme with equal weights is w·Σ(1/j²)/(π²/6) over its
-- j occurrences. @required (phrases, -exclusions; websearch syntax) must also match.
-- @filter is {"key": [allowed values]}, the same rule retrieval.Filter applies in Go.
WITH st AS (
    SELECT s.chunks::float8 AS n, greatest(s.tokens::float8 / greatest(s.chunks, 1), 1) AS avgdl
    FROM retrieval_state s WHERE s.workspace_id = @workspace_id
), lex AS (
    SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', @query::text))) AS lexeme
), terms AS (
    SELECT ('''' || replace(replace(lex.lexeme, '\', '\\'), '''', '''''') || '''')::tsquery AS q,
           ln(1 + (st.n - t.chunks + 0.5) / (t.chunks + 0.5)) AS idf
    FROM lex
    JOIN term_stats t ON t.workspace_id = @workspace_id AND t.lexeme = lex.lexeme
    CROSS JOIN st
), req AS (
    SELECT websearch_to_tsquery('english', @required::text) AS q
), hits AS (
    SELECT c.id, c.document_id, terms.idf, length(c.tsv)::float8 AS dl,
           greatest(1 / greatest(1.64493406685 - ts_rank('{0.1,0.1,0.1,0.1}', c.tsv, terms.q, 0) * 16.4493406685, 0.001) - 0.5, 1) AS tf
    FROM terms
    JOIN chunks c ON c.workspace_id = @workspace_id AND c.tsv @@ terms.q
    CROSS JOIN req
    WHERE numnode(req.q) = 0 OR c.tsv @@ req.q
)
SELECT hits.id, hits.document_id, sum(hits.idf * hits.tf * 2.2 / (hits.tf + 1.2 * (0.25 + 0.75 * hits.dl / st.avgdl)))::float8 AS score
FROM hits CROSS JOIN st
GROUP BY hits.id, hits.document_id
HAVING @filter::jsonb = '{}'::jsonb OR EXISTS (
    SELECT 1 FROM documents d
    WHERE d.workspace_id = @workspace_id AND d.id = hits.document_id
      AND NOT EXISTS (SELECT 1 FROM jsonb_each(@filter::jsonb) f WHERE NOT f.value @> jsonb_build_array(d.metadata -> f.key))
)
ORDER BY score DESC, hits.id
LIMIT @lim::int;
