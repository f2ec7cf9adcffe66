-- name: AuditInsert :exec
INSERT INTO audit_log (workspace_id, actor_kind, actor_user_id, action, target_kind, target_id, detail, ip, user_agent)
VALUES (sqlc.narg(workspace_id), @actor_kind::text, sqlc.narg(actor_user_id), @action::text,
        @target_kind::text, @target_id::text, @detail::jsonb, @ip::text, @user_agent::text);

-- name: AuditList :many
SELECT * FROM audit_log WHERE workspace_id = @workspace_id ORDER BY created_at DESC, id DESC LIMIT @lim::int;
