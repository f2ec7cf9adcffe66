-- name: DeviceAuthorizationCreate :one
INSERT INTO device_authorizations (device_hash, user_hash, client_name, ip, user_agent, created_at, expires_at, interval_seconds)
VALUES (@device_hash::bytea, @user_hash::bytea, @client_name::text, @ip::text, @user_agent::text,
        @created_at::timestamptz, @expires_at::timestamptz, @interval_seconds::int)
RETURNING *;

-- name: DeviceAuthorizationByUserCode :one
SELECT * FROM device_authorizations WHERE user_hash = @user_hash::bytea;

-- name: DeviceAuthorizationByUserCodeForUpdate :one
-- Locks the attempt, so that two people deciding at once decide it once.
SELECT * FROM device_authorizations WHERE user_hash = @user_hash::bytea FOR UPDATE;

-- name: DeviceAuthorizationByDeviceCodeForUpdate :one
-- Locks the attempt, so that two polls at once issue at most one key.
SELECT * FROM device_authorizations WHERE device_hash = @device_hash::bytea FOR UPDATE;

-- name: DeviceAuthorizationDecide :exec
UPDATE device_authorizations
SET status = @status::text, workspace_id = sqlc.narg(workspace_id), decided_by = sqlc.narg(decided_by), decided_at = @decided_at::timestamptz
WHERE id = @id AND status = 'pending';

-- name: DeviceAuthorizationPolled :exec
UPDATE device_authorizations SET last_polled_at = @polled_at::timestamptz, interval_seconds = @interval_seconds::int
WHERE id = @id;

-- name: DeviceAuthorizationIssued :exec
UPDATE device_authorizations SET status = 'issued', key_id = @key_id, last_polled_at = @polled_at::timestamptz
WHERE id = @id AND status = 'approved';

-- name: DeviceAuthorizationPrune :execrows
-- Attempts are kept a day past their expiry (the audit log keeps them for good).
DELETE FROM device_authorizations WHERE expires_at < now() - interval '1 day';
