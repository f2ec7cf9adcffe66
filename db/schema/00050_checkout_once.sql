-- +goose Up

-- The one open Stripe Checkout session of a workspace. A second Checkout reuses it
-- (same plan) or expires it at Stripe first (another plan), so a workspace never
-- holds two sessions that could both be paid. Completed and expired sessions leave.
CREATE TABLE checkout_sessions (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    session_id   text NOT NULL DEFAULT '', -- '' while the first one is being created
    plan         text NOT NULL DEFAULT '',
    url          text NOT NULL DEFAULT '',
    expires_at   timestamptz NOT NULL DEFAULT now(),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX checkout_sessions_session_idx ON checkout_sessions (session_id);

-- Stripe's creation time of a subscription, so that of two live subscriptions of one
-- workspace the newest is kept; duplicate_of names the kept one on the other, which
-- no longer grants a plan and is cancelled through Stripe's API by a job.
ALTER TABLE subscriptions
    ADD COLUMN stripe_created timestamptz,
    ADD COLUMN duplicate_of   text;

-- +goose Down
ALTER TABLE subscriptions DROP COLUMN duplicate_of, DROP COLUMN stripe_created;
DROP TABLE checkout_sessions;
