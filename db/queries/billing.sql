-- name: StripeCustomerGet :one
SELECT customer_id FROM stripe_customers WHERE workspace_id = @workspace_id;

-- name: StripeCustomerInsert :exec
-- The first writer wins (and a customer already linked elsewhere is refused);
-- callers re-read to learn which customer the workspace has.
INSERT INTO stripe_customers (workspace_id, customer_id) VALUES (@workspace_id, @customer_id::text)
ON CONFLICT DO NOTHING;

-- name: StripeCustomerWorkspace :one
SELECT workspace_id FROM stripe_customers WHERE customer_id = @customer_id::text;

-- name: StripeEventInsert :one
-- Returns no row for an event already stored. A concurrent delivery of the same
-- event waits here until the first one's transaction ends.
INSERT INTO stripe_events (id, type, created) VALUES (@id::text, @type::text, @created::timestamptz)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: StripeEventSetOutcome :exec
UPDATE stripe_events SET outcome = @outcome::text, workspace_id = sqlc.narg(workspace_id) WHERE id = @id::text;

-- name: SubscriptionEnsure :exec
INSERT INTO subscriptions (id, customer_id) VALUES (@id::text, @customer_id::text)
ON CONFLICT (id) DO NOTHING;

-- name: SubscriptionGetForUpdate :one
SELECT * FROM subscriptions WHERE id = @id::text FOR UPDATE;

-- name: SubscriptionSave :exec
UPDATE subscriptions SET
    customer_id = @customer_id::text,
    workspace_id = sqlc.narg(workspace_id),
    status = @status::text,
    price_id = @price_id::text,
    plan = @plan::text,
    current_period_end = sqlc.narg(current_period_end),
    cancel_at_period_end = @cancel_at_period_end::boolean,
    grace_until = sqlc.narg(grace_until),
    grace_ended = @grace_ended::boolean,
    last_event_at = @last_event_at::timestamptz,
    stripe_created = coalesce(sqlc.narg(stripe_created), stripe_created),
    updated_at = now()
WHERE id = @id::text;

-- name: SubscriptionListForWorkspace :many
SELECT * FROM subscriptions WHERE workspace_id = @workspace_id ORDER BY updated_at DESC, id;

-- name: SubscriptionLinkCustomer :exec
-- Subscriptions whose events arrived before their customer was linked join the workspace now.
UPDATE subscriptions SET workspace_id = @workspace_id, updated_at = now()
WHERE customer_id = @customer_id::text AND workspace_id IS NULL;

-- name: SubscriptionGraceExpired :many
-- Past-due subscriptions whose grace period is over and not yet applied, of one
-- workspace or (workspace_id NULL) of all.
-- SKIP LOCKED lets every replica run the sweep without waiting on each other.
SELECT * FROM subscriptions
WHERE status = 'past_due' AND NOT grace_ended AND grace_until <= @now::timestamptz AND workspace_id IS NOT NULL
    AND (sqlc.narg(workspace_id)::uuid IS NULL OR workspace_id = sqlc.narg(workspace_id)::uuid)
ORDER BY grace_until
LIMIT @lim::int
FOR UPDATE SKIP LOCKED;

-- name: SubscriptionGraceEnd :exec
UPDATE subscriptions SET grace_ended = true, updated_at = now() WHERE id = @id::text;

-- name: CheckoutSessionEnsure :exec
INSERT INTO checkout_sessions (workspace_id) VALUES (@workspace_id) ON CONFLICT (workspace_id) DO NOTHING;

-- name: CheckoutSessionLock :one
-- The workspace's open-Checkout row (CheckoutSessionEnsure made it), locked for the
-- rest of the transaction, so concurrent Checkouts of one workspace take turns.
SELECT session_id, plan, url, expires_at FROM checkout_sessions WHERE workspace_id = @workspace_id FOR UPDATE;

-- name: CheckoutSessionSave :exec
UPDATE checkout_sessions
SET session_id = @session_id::text, plan = @plan::text, url = @url::text, expires_at = @expires_at, created_at = now()
WHERE workspace_id = @workspace_id;

-- name: CheckoutSessionEnd :exec
-- A session that completed or expired is no longer open.
DELETE FROM checkout_sessions WHERE session_id = @session_id::text;

-- name: SubscriptionMarkDuplicate :exec
UPDATE subscriptions SET duplicate_of = @kept::text, updated_at = now() WHERE id = @id::text;
