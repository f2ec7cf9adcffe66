-- name: APIKeyCreate :one
INSERT INTO api_keys (workspace_id, created_by, name, prefix, hash, scopes, expires_at, kind)
VALUES (@workspace_id, sqlc.narg(created_by), @name::text, @prefix::text, @hash::bytea,
        @scopes::text[], sqlc.narg(expires_at), @kind::text)
RETURNING *;

-- name: APIKeyCountActive :one
-- Expired keys stop counting against the plan's cap: they can no longer be used.
SELECT count(*)::int FROM api_keys
WHERE workspace_id = @workspace_id AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > @now::timestamptz);

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

-- name: APIKeyGetActiveForUpdate :one
-- Locks the key so that two rolls of it cannot both keep the same old secret.
SELECT * FROM api_keys WHERE workspace_id = @workspace_id AND id = @id AND revoked_at IS NULL FOR UPDATE;

-- name: APIKeySetSecret :one
UPDATE api_keys SET hash = @hash::bytea, prefix = @prefix::text
WHERE workspace_id = @workspace_id AND id = @id
RETURNING *;

-- name: APIKeyRolledInsert :exec
INSERT INTO api_key_rolled_secrets (hash, key_id, prefix, valid_until)
VALUES (@hash::bytea, @key_id, @prefix::text, @valid_until::timestamptz);

-- name: APIKeyRolledActive :many
-- The previous secrets of the workspace's keys that still work, for the keys page.
SELECT r.key_id, r.prefix, r.valid_until
FROM api_key_rolled_secrets r
JOIN api_keys k ON k.id = r.key_id
WHERE k.workspace_id = @workspace_id AND r.valid_until > now()
ORDER BY r.valid_until DESC;

-- name: APIKeyRolledPrune :execrows
DELETE FROM api_key_rolled_secrets WHERE valid_until < now() - interval '1 day';

-- name: APIKeyVerify :one
-- A key's current secret, or the previous secret of a rolled key while its grace
-- lasts (secret_until then says until when). Both branches are index lookups on a
-- hash; revoked keys match neither. Expiry is checked by the caller, so that it
-- can say the key expired rather than that it is unknown.
-- A key acts as its creator: their role in the workspace and whether they are
-- suspended come with it. A creator who is no longer a member has no role (the
-- key is refused); a key made by an operator (no creator) acts for the workspace.
SELECT k.id, k.name, k.prefix, k.workspace_id, w.name AS workspace_name, w.plan,
    k.created_by, u.email AS creator_email, m.role AS creator_role, m.suspended_at AS creator_suspended_at,
    k.scopes, k.expires_at, NULL::timestamptz AS secret_until
FROM api_keys k
JOIN workspaces w ON w.id = k.workspace_id
LEFT JOIN users u ON u.id = k.created_by
LEFT JOIN memberships m ON m.workspace_id = k.workspace_id AND m.user_id = k.created_by
WHERE k.hash = @hash::bytea AND k.revoked_at IS NULL
UNION ALL
SELECT k.id, k.name, k.prefix, k.workspace_id, w.name AS workspace_name, w.plan,
    k.created_by, u.email AS creator_email, m.role AS creator_role, m.suspended_at AS creator_suspended_at,
    k.scopes, k.expires_at, r.valid_until AS secret_until
FROM api_key_rolled_secrets r
JOIN api_keys k ON k.id = r.key_id
JOIN workspaces w ON w.id = k.workspace_id
LEFT JOIN users u ON u.id = k.created_by
LEFT JOIN memberships m ON m.workspace_id = k.workspace_id AND m.user_id = k.created_by
WHERE r.hash = @hash::bytea AND r.valid_until > now() AND k.revoked_at IS NULL
LIMIT 1;

-- name: APIKeyTouch :exec
-- Last use, address and user agent of many keys in one statement (an empty address
-- or agent keeps the stored one). Device keys' expiry moves to renew after their
-- last use, so a device in use never has to sign in again.
UPDATE api_keys SET
    last_used_at    = v.used_at,
    last_ip         = COALESCE(NULLIF(v.ip, ''), api_keys.last_ip),
    last_user_agent = COALESCE(NULLIF(v.user_agent, ''), api_keys.last_user_agent),
    expires_at      = CASE WHEN api_keys.kind = 'device' AND api_keys.expires_at IS NOT NULL
                           THEN greatest(api_keys.expires_at, v.used_at + make_interval(secs => @renew_seconds::bigint))
                           ELSE api_keys.expires_at END
FROM (SELECT unnest(@ids::uuid[]) AS id, unnest(@used_at::timestamptz[]) AS used_at,
             unnest(@ips::text[]) AS ip, unnest(@user_agents::text[]) AS user_agent) AS v
WHERE api_keys.id = v.id AND (api_keys.last_used_at IS NULL OR api_keys.last_used_at < v.used_at)
  AND api_keys.revoked_at IS NULL;

-- name: APIKeyRevokeByCreator :many
-- A member who leaves or is removed takes the keys they made with them.
UPDATE api_keys SET revoked_at = now()
WHERE workspace_id = @workspace_id AND created_by = @created_by AND revoked_at IS NULL
RETURNING *;
