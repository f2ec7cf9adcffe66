-- name: UserCreate :one
INSERT INTO users (email, password_hash) VALUES (@email::text, @password_hash::text)
RETURNING *;

-- name: UserGetByEmail :one
SELECT * FROM users WHERE lower(email) = lower(@email::text);

-- name: UserGet :one
SELECT * FROM users WHERE id = @id;

-- name: LoginFailureCount :one
SELECT
    count(*) FILTER (WHERE lower(email) = lower(@email::text))::int AS by_email,
    count(*) FILTER (WHERE ip = @ip::text)::int AS by_ip
FROM login_failures
WHERE at > @since::timestamptz AND (lower(email) = lower(@email::text) OR ip = @ip::text);

-- name: LoginFailureInsert :exec
INSERT INTO login_failures (email, ip) VALUES (@email::text, @ip::text);

-- name: LoginFailureClear :exec
DELETE FROM login_failures WHERE lower(email) = lower(@email::text);

-- name: LoginFailurePrune :exec
DELETE FROM login_failures WHERE at < @before::timestamptz;

-- name: UserGetForUpdate :one
SELECT * FROM users WHERE id = @id FOR UPDATE;

-- name: UserMarkVerified :execrows
-- Only while the address is still the one the link was sent to.
UPDATE users SET email_verified_at = now()
WHERE id = @id AND lower(email) = lower(@email::text) AND email_verified_at IS NULL;

-- name: UserChangeEmail :exec
-- The new address was proved by the link that carried it, so it is verified.
UPDATE users SET email = @email::text, email_verified_at = now() WHERE id = @id;
