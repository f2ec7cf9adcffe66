-- name: UserSessionCreate :one
INSERT INTO user_sessions (user_id, token_hash, user_agent, ip)
VALUES (@user_id, @token_hash::bytea, @user_agent::text, @ip::text)
RETURNING id;

-- name: UserSessionGet :one
-- The session is alive while its row exists for that user.
SELECT * FROM user_sessions WHERE id = @id AND user_id = @user_id;

-- name: UserSessionTouch :exec
UPDATE user_sessions SET last_seen_at = now(), ip = @ip::text WHERE id = @id;

-- name: UserSessionList :many
SELECT * FROM user_sessions WHERE user_id = @user_id ORDER BY last_seen_at DESC;

-- name: UserSessionDelete :many
-- Ends the user's sessions: every one when keep_id is NULL, else all but keep_id; or
-- only the one named by only. Returns the scs token hashes for
-- SessionDeleteByHash.
DELETE FROM user_sessions
WHERE user_id = @user_id
  AND (sqlc.narg(only_id)::uuid IS NULL OR id = sqlc.narg(only_id)::uuid)
  AND (sqlc.narg(keep_id)::uuid IS NULL OR id <> sqlc.narg(keep_id)::uuid)
RETURNING token_hash;

-- name: SessionDeleteByHash :exec
-- scs's own rows of ended sessions (see sessions_token_sha256_idx).
DELETE FROM sessions WHERE sha256(token::bytea) = ANY(@hashes::bytea[]);

-- name: UserSessionPrune :execrows
-- Index rows of sessions scs has expired (idle too long, or past their lifetime).
DELETE FROM user_sessions
WHERE last_seen_at < @idle_before::timestamptz OR created_at < @created_before::timestamptz;

-- name: KnownDeviceCreate :exec
INSERT INTO known_devices (hash, user_id, expires_at)
VALUES (@hash::bytea, @user_id, @expires_at::timestamptz);

-- name: KnownDeviceUse :one
-- Whether this browser logged in to user_id before; using it extends its life.
UPDATE known_devices SET last_used_at = now(), expires_at = @expires_at::timestamptz
WHERE hash = @hash::bytea AND user_id = @user_id AND expires_at > now()
RETURNING user_id;

-- name: KnownDevicePrune :execrows
DELETE FROM known_devices WHERE expires_at < now();
