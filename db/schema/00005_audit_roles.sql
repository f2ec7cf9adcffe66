-- +goose Up
-- The audit log outlives what it mentions: deleting an account keeps its
-- workspaces' history (without the email), so rows name workspaces and people by id
-- only, with no foreign keys (a cascading SET NULL would be an UPDATE, which the
-- trigger below refuses). Emails are looked up when the log is read.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_workspace_id_fkey;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_user_id_fkey;
-- Account-level events (a failed log-in for an unknown workspace) have none.
ALTER TABLE audit_log ALTER COLUMN workspace_id DROP NOT NULL;
ALTER TABLE audit_log
    ADD COLUMN actor_kind  text NOT NULL DEFAULT 'system' CHECK (actor_kind IN ('user', 'stripe', 'system')),
    ADD COLUMN target_kind text NOT NULL DEFAULT '',
    ADD COLUMN target_id   text NOT NULL DEFAULT '',
    ADD COLUMN ip          text NOT NULL DEFAULT '',
    ADD COLUMN user_agent  text NOT NULL DEFAULT '';
UPDATE audit_log SET actor_kind = 'user' WHERE actor_user_id IS NOT NULL;
UPDATE audit_log SET actor_kind = 'stripe' WHERE actor_user_id IS NULL AND detail ->> 'by' = 'stripe';
CREATE INDEX audit_log_actor_idx ON audit_log (workspace_id, actor_user_id, created_at DESC);
CREATE INDEX audit_log_action_idx ON audit_log (workspace_id, action, created_at DESC);

-- Append-only, enforced by the database rather than by code review: no path, not
-- even a mistaken migration or a psql session, rewrites history.
-- +goose StatementBegin
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Viewers read documents and usage and change nothing.
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member', 'viewer'));

-- +goose Down
ALTER TABLE memberships DROP CONSTRAINT memberships_role_check;
ALTER TABLE memberships ADD CONSTRAINT memberships_role_check CHECK (role IN ('owner', 'admin', 'member'));
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_no_update_delete ON audit_log;
DROP FUNCTION audit_log_refuse_change();
DROP INDEX audit_log_action_idx, audit_log_actor_idx;
ALTER TABLE audit_log DROP COLUMN actor_kind, DROP COLUMN target_kind, DROP COLUMN target_id,
    DROP COLUMN ip, DROP COLUMN user_agent;
