-- name: APIKeyCreate :one
INSERT INTO api_keys (workspace_id, created_by, name, prefix, hash)
VALUES (@workspace_id, sqlc.narg(created_by), @name::text, @prefix::text, @hash::bytea)
RETURNING *;

-- name: APIKeyCountActive :one
SELECT count(*)::int FROM api_keys WHERE workspace_id = @workspace_id AND revoked_at IS NULL;

-- name: APIKeyList :many
SELECT k.*, u.email AS creator_email FROM api_keys k
LEFT JOIN users u ON u.id = k.created_by
WHERE k.workspace_id = @workspace_id
ORDER BY k.revoked_at IS NOT NULL, k.created_at DESC;

-- name: APIKeyRevoke :one
UPDATE api_keys SET revoked_at = now()
WHERE workspace_id = @workspace_id AND id = @id AND revoked_at IS NULL
RETURNING *;

-- name: APIKeyGet :one
SELECT * FROM api_keys WHERE workspace_id = @workspace_id AND id = @id;

-- name: APIKeyVerify :one
-- A key acts as its creator: their role in the workspace and whether they are
-- suspended come with it. A creator who is no longer a member has no role (the
-- key is refused); a key made by an operator (no creator) acts for the workspace.
SELECT k.id, k.name, k.prefix, k.workspace_id, w.name AS workspace_name, w.plan,
    k.created_by, u.email AS creator_email, m.role AS creator_role, m.suspended_at AS creator_suspended_at
FROM api_keys k
JOIN workspaces w ON w.id = k.workspace_id
LEFT JOIN users u ON u.id = k.created_by
LEFT JOIN memberships m ON m.workspace_id = k.workspace_id AND m.user_id = k.created_by
WHERE k.hash = @hash::bytea AND k.revoked_at IS NULL;

-- name: APIKeyTouch :exec
UPDATE api_keys SET last_used_at = v.used_at
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@used_at::timestamptz[]) AS used_at) AS v
WHERE api_keys.id = v.id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.used_at);

-- name: APIKeyRevokeByCreator :many
-- A member who leaves or is removed takes the keys they made with them.
UPDATE api_keys SET revoked_at = now()
WHERE workspace_id = @workspace_id AND created_by = @created_by AND revoked_at IS NULL
RETURNING *;

-- name: APIKeyListActiveByCreator :many
SELECT * FROM api_keys
WHERE workspace_id = @workspace_id AND created_by = @created_by AND revoked_at IS NULL
ORDER BY created_at;
