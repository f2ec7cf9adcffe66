-- +goose Up
-- A local embedder vector is 3,077 bytes (one byte per dimension) and an OpenAI one
-- 6 KiB: over PostgreSQL's default 2 KiB threshold, each would be compressed (the
-- local ones are sparse, so pglz works hard at it) on every insert and
-- decompressed on every cache load. Kept inline and uncompressed up to a page,
-- ingest and loads skip that work.
ALTER TABLE chunk_vectors SET (toast_tuple_target = 8160);

-- +goose Down
ALTER TABLE chunk_vectors RESET (toast_tuple_target);
