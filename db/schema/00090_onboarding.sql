-- +goose Up

-- A workspace whose people dismissed the Overview's getting-started checklist. The
-- checklist's steps themselves are read from what exists (keys, documents, usage),
-- so only the dismissal needs a row; a table of its own leaves workspaces' shape
-- (and every query that selects it) alone.
CREATE TABLE onboarding_dismissals (
    workspace_id uuid PRIMARY KEY REFERENCES workspaces (id) ON DELETE CASCADE,
    dismissed_by uuid REFERENCES users (id) ON DELETE SET NULL,
    dismissed_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE onboarding_dismissals;
