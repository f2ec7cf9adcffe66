-- name: AuditInsert :exec
INSERT INTO audit_log (workspace_id, actor_kind, actor_user_id, action, target_kind, target_id, detail, ip, user_agent)
VALUES (sqlc.narg(workspace_id), @actor_kind::text, sqlc.narg(actor_user_id), @action::text,
        @target_kind::text, @target_id::text, @detail::jsonb, @ip::text, @user_agent::text);

-- name: AuditList :many
SELECT * FROM audit_log WHERE workspace_id = @workspace_id ORDER BY created_at DESC, id DESC LIMIT @lim::int;

-- name: AuditPage :many
-- One page of a workspace's log, newest first, each filter applied when given;
-- pages continue below the last id shown (before_id).
SELECT * FROM audit_log
WHERE workspace_id = @workspace_id
  AND (sqlc.narg(actor_kind)::text IS NULL OR actor_kind = sqlc.narg(actor_kind)::text)
  AND (sqlc.narg(actor_user_id)::uuid IS NULL OR actor_user_id = sqlc.narg(actor_user_id)::uuid)
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(since)::timestamptz IS NULL OR created_at >= sqlc.narg(since)::timestamptz)
  AND (sqlc.narg(until)::timestamptz IS NULL OR created_at < sqlc.narg(until)::timestamptz)
  AND (sqlc.narg(before_id)::bigint IS NULL OR id < sqlc.narg(before_id)::bigint)
ORDER BY id DESC
LIMIT @lim::int;

-- name: AuditUserEmails :many
-- Rows name people by id; their emails are looked up when the log is read.
SELECT id, email FROM users WHERE id = ANY(@ids::uuid[]);

-- name: AuditInvitationEmails :many
SELECT id, email FROM invitations WHERE workspace_id = @workspace_id AND id = ANY(@ids::uuid[]);
