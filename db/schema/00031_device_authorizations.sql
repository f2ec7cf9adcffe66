-- +goose Up
-- Device sign-in (OAuth 2.0 device authorization grant, RFC 8628). A row is one
-- attempt: the device holds the device code, the person types the user code at
-- /activate. Both are stored only as their SHA-256. A row lives ten minutes
-- (expires_at), is decided once (approved or denied, never both), and yields at
-- most one key (issued).
CREATE TABLE device_authorizations (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    device_hash      bytea NOT NULL UNIQUE,
    user_hash        bytea NOT NULL UNIQUE,
    client_name      text NOT NULL,
    -- Where the device asked from, shown to the person approving it.
    ip               text NOT NULL DEFAULT '',
    user_agent       text NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    -- The polling interval; slow_down adds five seconds to it (RFC 8628 §3.5).
    interval_seconds int NOT NULL,
    last_polled_at   timestamptz,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied', 'issued')),
    workspace_id     uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    decided_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    decided_at       timestamptz,
    key_id           uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    CHECK ((status = 'pending') = (decided_at IS NULL))
);
CREATE INDEX device_authorizations_expires_idx ON device_authorizations (expires_at);

-- A device acts in the audit log before anyone has approved it.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('user', 'stripe', 'system', 'device'));

-- +goose Down
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('user', 'stripe', 'system'));
DROP TABLE device_authorizations;
