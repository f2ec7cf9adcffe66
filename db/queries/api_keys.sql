-- name: APIKeyCreate :one
INSERT INTO api_keys (workspace_id, created_by, name, prefix, hash)
VALUES (@workspace_id, sqlc.narg(created_by), @name::text, @prefix::text, @hash::bytea)
RETURNING *;

-- name: APIKeyCountActive :one
SELECT count(*)::int FROM api_keys WHERE workspace_id = @workspace_id AND revoked_at IS NULL;

-- name: APIKeyList :many
SELECT * FROM api_keys WHERE workspace_id = @workspace_id ORDER BY revoked_at IS NOT NULL, created_at DESC;

-- name: APIKeyRevoke :one
UPDATE api_keys SET revoked_at = now()
WHERE workspace_id = @workspace_id AND id = @id AND revoked_at IS NULL
RETURNING *;

-- name: APIKeyGet :one
SELECT * FROM api_keys WHERE workspace_id = @workspace_id AND id = @id;

-- name: APIKeyVerify :one
SELECT k.id, k.name, k.prefix, k.workspace_id, w.name AS workspace_name, w.plan
FROM api_keys k
JOIN workspaces w ON w.id = k.workspace_id
WHERE k.hash = @hash::bytea AND k.revoked_at IS NULL;

-- name: APIKeyTouch :exec
UPDATE api_keys SET last_used_at = v.used_at
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@used_at::timestamptz[]) AS used_at) AS v
WHERE api_keys.id = v.id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.used_at);
