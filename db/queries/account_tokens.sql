-- name: AccountTokenInsert :exec
INSERT INTO account_tokens (hash, user_id, purpose, email, expires_at)
VALUES (@hash::bytea, @user_id, @purpose::text, @email::text, @expires_at::timestamptz);

-- name: AccountTokenDeleteForUser :exec
-- A new link makes the older ones of the same purpose useless.
DELETE FROM account_tokens WHERE user_id = @user_id AND purpose = @purpose::text;

-- name: AccountTokenConsume :one
-- Deleting the row is what makes a link single-use: of two concurrent uses, one
-- gets the row and the other gets nothing.
DELETE FROM account_tokens WHERE hash = @hash::bytea AND purpose = @purpose::text
RETURNING *;

-- name: AccountTokenGet :one
SELECT * FROM account_tokens WHERE hash = @hash::bytea AND purpose = @purpose::text;

-- name: AccountTokenPrune :execrows
DELETE FROM account_tokens WHERE expires_at < now();
