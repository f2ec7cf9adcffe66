-- +goose Up
-- Every document says whether it is searchable (indexed) or not and why (failed,
-- with a reason: a saved page without readable text), so no save is lost without
-- anyone knowing. content_hash is the SHA-256 of everything its chunks and vectors
-- derive from (text, title, url, metadata and the embedding model): saving the
-- same again changes nothing and embeds nothing. Documents stored before it have
-- none and are embedded again the first time they are saved.
ALTER TABLE documents
    ADD COLUMN status        text NOT NULL DEFAULT 'indexed' CHECK (status IN ('indexed', 'failed')),
    ADD COLUMN status_reason text NOT NULL DEFAULT '',
    ADD COLUMN content_hash  bytea;

-- +goose Down
ALTER TABLE documents DROP COLUMN status, DROP COLUMN status_reason, DROP COLUMN content_hash;
