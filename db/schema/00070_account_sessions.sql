-- +goose Up
-- The index of each person's signed-in sessions, beside scs's own sessions table
-- (whose rows are opaque gob blobs keyed by token). A session row of scs names its
-- user_sessions row; a session whose row is gone is refused on its next request,
-- on whichever replica it arrives, even if a request in flight writes scs's row
-- back. Only the SHA-256 of the scs token is kept, to delete scs's row too.
CREATE TABLE user_sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    user_agent   text NOT NULL DEFAULT '',
    ip           text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX user_sessions_user_idx ON user_sessions (user_id, last_seen_at);
CREATE INDEX user_sessions_seen_idx ON user_sessions (last_seen_at);

-- Finds scs rows by the hash user_sessions keeps (scs tokens are base64url, so
-- the text-to-bytea cast is their UTF-8 bytes).
CREATE INDEX sessions_token_sha256_idx ON sessions (sha256(token::bytea));

-- Browsers that logged in to an account before: a long-lived cookie holds a random
-- token, this table its SHA-256. A stranger's failed guesses lock an email for
-- unknown browsers only, so the owner's own browser still gets in.
CREATE TABLE known_devices (
    hash         bytea PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX known_devices_user_idx ON known_devices (user_id);
CREATE INDEX known_devices_expiry_idx ON known_devices (expires_at);

-- +goose Down
DROP TABLE known_devices;
DROP INDEX sessions_token_sha256_idx;
DROP TABLE user_sessions;
