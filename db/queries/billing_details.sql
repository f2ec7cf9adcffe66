-- name: BillingDetailsGet :one
SELECT details, fetched_at FROM billing_details WHERE workspace_id = @workspace_id;

-- name: BillingDetailsSave :exec
INSERT INTO billing_details (workspace_id, details, fetched_at)
VALUES (@workspace_id, @details::jsonb, @fetched_at::timestamptz)
ON CONFLICT (workspace_id) DO UPDATE SET details = EXCLUDED.details, fetched_at = EXCLUDED.fetched_at;

-- name: BillingDetailsForgetCustomer :exec
-- A webhook event names a customer, not a workspace: the join finds the workspace
-- whose cached details it makes stale.
DELETE FROM billing_details
WHERE workspace_id IN (SELECT workspace_id FROM stripe_customers WHERE customer_id = @customer_id::text);
