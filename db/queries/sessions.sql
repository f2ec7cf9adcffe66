-- name: SessionDeleteExpired :execrows
-- scs's pgxstore could do this itself, but its cleanup goroutine cannot be
-- stopped without a data race; the server's housekeeping worker runs this instead.
DELETE FROM sessions WHERE expiry < now();
