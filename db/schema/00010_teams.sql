-- +goose Up
-- A member above the plan's MEMBERS limit (after a downgrade) is suspended, not
-- removed: they cannot open the workspace and their keys are refused until an
-- upgrade clears the mark. Nothing is deleted.
ALTER TABLE memberships ADD COLUMN suspended_at timestamptz;

-- An invitation to join a workspace with a role. The emailed link carries a token
-- whose SHA-256 is token_hash; it is minted when the email is composed, so the
-- plain token exists only in the email, and a resend replaces it (the old link dies).
-- Accepted and revoked invitations keep their hash so an old link says why it no
-- longer works.
CREATE TABLE invitations (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    email        text NOT NULL,
    role         text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    invited_by   uuid REFERENCES users (id) ON DELETE SET NULL,
    token_hash   bytea UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    sent_at      timestamptz,
    accepted_at  timestamptz,
    accepted_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at   timestamptz
);
-- One open invitation per address and workspace; inviting again means resending.
CREATE UNIQUE INDEX invitations_open_email_key ON invitations (workspace_id, lower(email))
    WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Removing a member revokes the keys they made in the workspace.
CREATE INDEX api_keys_creator_idx ON api_keys (workspace_id, created_by) WHERE revoked_at IS NULL;

-- The audit page pages by id, newest first.
CREATE INDEX audit_log_page_idx ON audit_log (workspace_id, id DESC);

-- +goose Down
DROP INDEX audit_log_page_idx, api_keys_creator_idx;
DROP TABLE invitations;
ALTER TABLE memberships DROP COLUMN suspended_at;
