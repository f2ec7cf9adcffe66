-- +goose Up
-- A chunk may hold a vector of each model while a workspace is re-embedded: the old
-- model's set serves searches until the new one is complete.
ALTER TABLE chunk_vectors DROP CONSTRAINT chunk_vectors_pkey;
ALTER TABLE chunk_vectors ADD PRIMARY KEY (chunk_id, model);

-- A workspace's embedder, chosen on Settings. The 'active' row is what searches and
-- new documents use; a 'pending' row is the choice being re-embedded to, with the
-- job's progress. No row: the server's default (the local embedder, or the server's
-- OpenAI model when it has a key). Switching is one transaction that deletes the
-- active row and renames pending to active, so every search sees one or the other.
CREATE TABLE workspace_embedders (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    slot         text NOT NULL CHECK (slot IN ('active', 'pending')),
    provider     text NOT NULL CHECK (provider IN ('builtin', 'openai', 'custom')),
    -- The workspace's own OpenAI-compatible endpoint (provider 'custom').
    base_url     text NOT NULL DEFAULT '',
    model        text NOT NULL DEFAULT '',
    dimensions   int NOT NULL DEFAULT 0,
    -- The endpoint's key, sealed with AES-256-GCM under ENCRYPTION_KEY; never plain.
    api_key      bytea,
    -- The model name its vectors are stored under (chunk_vectors.model).
    vector_model text NOT NULL,
    -- Re-embedding progress of a pending row: chunks with a vector of vector_model.
    done         bigint NOT NULL DEFAULT 0,
    total        bigint NOT NULL DEFAULT 0,
    -- Why the last attempt failed (an endpoint refusing the key), for the dashboard.
    error        text NOT NULL DEFAULT '',
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, slot)
);

-- +goose Down
DROP TABLE workspace_embedders;
DELETE FROM chunk_vectors v USING chunk_vectors w
WHERE v.chunk_id = w.chunk_id AND v.model > w.model;
ALTER TABLE chunk_vectors DROP CONSTRAINT chunk_vectors_pkey;
ALTER TABLE chunk_vectors ADD PRIMARY KEY (chunk_id);
