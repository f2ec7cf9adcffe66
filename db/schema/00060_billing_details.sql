-- +goose Up

-- What the billing page shows of a workspace's Stripe account beyond its plan (the
-- card it pays with, its latest invoices), as last read from Stripe. It is a cache:
-- read again after ten minutes, dropped by any webhook event about the customer so
-- the next page view reads Stripe again, and shown (marked stale) when Stripe cannot
-- be reached. Shared by every replica.
CREATE TABLE billing_details (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    details      jsonb NOT NULL,
    fetched_at   timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE billing_details;
