-- +goose Up
-- btree_gin lets one GIN index hold workspace_id next to the tsvector, so a keyword
-- search reads only its own workspace's postings.
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- One row per workspace that has stored documents. Every write takes this row's lock
-- first (serialising a workspace's writes and its document cap) and bumps version, so
-- any replica's vector cache sees a write the moment it commits. chunks and tokens
-- are the corpus statistics BM25 needs.
CREATE TABLE retrieval_state (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    version      bigint NOT NULL DEFAULT 0,
    documents    int NOT NULL DEFAULT 0,
    chunks       bigint NOT NULL DEFAULT 0,
    tokens       bigint NOT NULL DEFAULT 0,
    -- Tombstones of versions up to this one were pruned; caches older than it reload.
    pruned_version bigint NOT NULL DEFAULT 0
);

CREATE TABLE documents (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    id           text NOT NULL,
    title        text NOT NULL DEFAULT '',
    url          text NOT NULL DEFAULT '',
    metadata     jsonb NOT NULL DEFAULT '{}',
    text         text NOT NULL,
    chunks       int NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, id)
);
CREATE INDEX documents_list_idx ON documents (workspace_id, created_at DESC, id DESC);

-- A chunk's id is never reused, so a vector left behind in an external index by a
-- failed write can never point at another chunk.
CREATE TABLE chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id uuid NOT NULL,
    document_id  text NOT NULL,
    position     int NOT NULL,
    text         text NOT NULL,
    tsv          tsvector NOT NULL,
    FOREIGN KEY (workspace_id, document_id) REFERENCES documents (workspace_id, id) ON DELETE CASCADE,
    UNIQUE (workspace_id, document_id, position)
);
CREATE INDEX chunks_tsv_idx ON chunks USING gin (workspace_id, tsv);

-- Embeddings as little-endian float32, with the model that made them and the
-- workspace version that wrote them (caches load what is newer than they hold).
CREATE TABLE chunk_vectors (
    chunk_id     bigint PRIMARY KEY REFERENCES chunks (id) ON DELETE CASCADE,
    workspace_id uuid NOT NULL,
    model        text NOT NULL,
    version      bigint NOT NULL,
    embedding    bytea NOT NULL
);
CREATE INDEX chunk_vectors_load_idx ON chunk_vectors (workspace_id, model, version);

-- Chunks removed at a version, so caches drop them without reloading everything.
CREATE TABLE chunk_tombstones (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    version      bigint NOT NULL,
    chunk_id     bigint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chunk_tombstones_idx ON chunk_tombstones (workspace_id, version);

-- Document frequency of each lexeme per workspace: BM25's idf.
CREATE TABLE term_stats (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    lexeme       text NOT NULL,
    chunks       int NOT NULL,
    PRIMARY KEY (workspace_id, lexeme)
);

-- +goose Down
DROP TABLE term_stats, chunk_tombstones, chunk_vectors, chunks, documents, retrieval_state;
