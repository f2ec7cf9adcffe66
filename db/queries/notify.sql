-- name: Notify :exec
-- Inside a transaction the message is delivered at commit.
SELECT pg_notify(@channel::text, @payload::text);
