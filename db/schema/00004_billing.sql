-- +goose Up
-- One Stripe customer per workspace, created at the first checkout. The primary key
-- makes concurrent first checkouts agree on one row; the unique customer id maps
-- webhooks back to their workspace.
CREATE TABLE stripe_customers (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    customer_id  text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The last known state of each Stripe subscription, as told by webhooks (or by
-- `cairn admin sync-billing`). A row can exist before its workspace is known
-- (workspace_id NULL) so that a subscription event arriving ahead of the checkout
-- that links its customer is not lost.
CREATE TABLE subscriptions (
    id                   text PRIMARY KEY, -- Stripe subscription id
    customer_id          text NOT NULL,
    workspace_id         uuid REFERENCES workspaces (id) ON DELETE CASCADE,
    status               text NOT NULL DEFAULT '', -- Stripe's status; '' until an event tells it
    price_id             text NOT NULL DEFAULT '',
    plan                 text NOT NULL DEFAULT 'free', -- the plan its price buys
    current_period_end   timestamptz,
    cancel_at_period_end boolean NOT NULL DEFAULT false,
    -- While past_due, the plan is kept until grace_until; grace_ended records that
    -- the downgrade at its end has been applied.
    grace_until          timestamptz,
    grace_ended          boolean NOT NULL DEFAULT false,
    -- Watermark: the creation time of the newest event applied. Older events change nothing.
    last_event_at        timestamptz NOT NULL DEFAULT 'epoch',
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX subscriptions_workspace_idx ON subscriptions (workspace_id);
CREATE INDEX subscriptions_customer_idx ON subscriptions (customer_id);
CREATE INDEX subscriptions_grace_idx ON subscriptions (grace_until) WHERE status = 'past_due' AND NOT grace_ended;

-- The webhook inbox: an event id is stored in the same transaction as its effect,
-- so a redelivery finds it and changes nothing.
CREATE TABLE stripe_events (
    id           text PRIMARY KEY,
    type         text NOT NULL,
    created      timestamptz NOT NULL, -- the event's own creation time at Stripe
    received_at  timestamptz NOT NULL DEFAULT now(),
    workspace_id uuid REFERENCES workspaces (id) ON DELETE SET NULL,
    outcome      text NOT NULL DEFAULT '' -- applied, stale, unknown_customer, ignored
);
CREATE INDEX stripe_events_workspace_idx ON stripe_events (workspace_id, received_at DESC);

-- +goose Down
DROP TABLE stripe_events, subscriptions, stripe_customers;
