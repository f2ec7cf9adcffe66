-- +goose Up
-- email_verified_at: when the person proved they read the address (NULL: not yet).
-- Accounts made before verification existed never proved it, so they start
-- unverified and are offered a link like everyone else.
-- password_changed_at: failed log-ins before it no longer count towards the
-- per-email lock, so a reset frees an account that strangers keep guessing at.
ALTER TABLE users
    ADD COLUMN email_verified_at   timestamptz,
    ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now();

-- The one-time links emailed for an account: verifying an address (the sign-up
-- address or a new one the person is changing to) and resetting the password. Only
-- the SHA-256 of the token is kept; the token itself exists only in the email.
-- A link is used by deleting its row, so it works once.
CREATE TABLE account_tokens (
    hash       bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    -- The address the link was sent to: for verify_email, the address it verifies.
    email      text NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_tokens_user_idx ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expiry_idx ON account_tokens (expires_at);

-- +goose Down
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN email_verified_at, DROP COLUMN password_changed_at;
