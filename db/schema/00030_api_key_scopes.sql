-- +goose Up
-- What a key may call (scopes), until when (expires_at; NULL: never), whether a
-- device sign-in made it (device keys are renewed on use), and where it was last
-- used from. Keys made before scopes existed keep every scope.
ALTER TABLE api_keys
    ADD COLUMN scopes          text[] NOT NULL DEFAULT ARRAY['documents:read', 'documents:write', 'search', 'answer', 'usage:read'],
    ADD COLUMN expires_at      timestamptz,
    ADD COLUMN kind            text NOT NULL DEFAULT 'manual' CHECK (kind IN ('manual', 'device')),
    ADD COLUMN last_ip         text NOT NULL DEFAULT '',
    ADD COLUMN last_user_agent text NOT NULL DEFAULT '';

-- The previous secrets of rolled keys, each valid until the end of the grace its
-- roll chose. Only the SHA-256 is kept, as for current secrets. Rows past their
-- grace match nothing and are pruned by housekeeping.
CREATE TABLE api_key_rolled_secrets (
    hash        bytea PRIMARY KEY,
    key_id      uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    prefix      text NOT NULL,
    valid_until timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_key_rolled_secrets_key_idx ON api_key_rolled_secrets (key_id, valid_until);

-- +goose Down
DROP TABLE api_key_rolled_secrets;
ALTER TABLE api_keys DROP COLUMN scopes, DROP COLUMN expires_at, DROP COLUMN kind,
    DROP COLUMN last_ip, DROP COLUMN last_user_agent;
