-- name: UserCreate :one
INSERT INTO users (email, password_hash) VALUES (@email::text, @password_hash::text)
RETURNING *;

-- name: UserGetByEmail :one
SELECT * FROM users WHERE lower(email) = lower(@email::text);

-- name: UserGet :one
SELECT * FROM users WHERE id = @id;

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

-- name: LoginFailureCounts :one
-- Failures that count towards each lock: per address, per address and email, and
-- per email. Failures before the account's last password change do not count for
-- the email's locks, so a reset frees an account strangers keep guessing at.
SELECT
    count(*) FILTER (WHERE ip = @ip::text)::int AS by_ip,
    count(*) FILTER (WHERE ip = @ip::text AND lower(email) = lower(@email::text) AND at > @email_since::timestamptz)::int AS by_ip_email,
    count(*) FILTER (WHERE lower(email) = lower(@email::text) AND at > @email_since::timestamptz)::int AS by_email
FROM login_failures
WHERE at > @since::timestamptz AND (lower(email) = lower(@email::text) OR ip = @ip::text);

-- name: UserSetPassword :exec
UPDATE users SET password_hash = @password_hash::text, password_changed_at = now() WHERE id = @id;
