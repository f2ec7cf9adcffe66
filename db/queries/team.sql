-- name: MemberList :many
-- Each member with their email and how many active keys they made here, owners
-- first, then by when they joined.
SELECT m.user_id, u.email, m.role, m.created_at, m.suspended_at,
    (SELECT count(*) FROM api_keys k
     WHERE k.workspace_id = m.workspace_id AND k.created_by = m.user_id AND k.revoked_at IS NULL)::int AS active_keys
FROM memberships m
JOIN users u ON u.id = m.user_id
WHERE m.workspace_id = @workspace_id
ORDER BY m.role = 'owner' DESC, m.created_at, u.email;

-- name: MemberGetForUpdate :one
SELECT m.user_id, u.email, m.role, m.created_at, m.suspended_at
FROM memberships m
JOIN users u ON u.id = m.user_id
WHERE m.workspace_id = @workspace_id AND m.user_id = @user_id
FOR UPDATE OF m;

-- name: MemberOwnerCount :one
SELECT count(*)::int FROM memberships WHERE workspace_id = @workspace_id AND role = 'owner';

-- name: MemberSetRole :exec
UPDATE memberships SET role = @role::text WHERE workspace_id = @workspace_id AND user_id = @user_id;

-- name: MemberDelete :execrows
DELETE FROM memberships WHERE workspace_id = @workspace_id AND user_id = @user_id;

-- name: MemberExistsByEmail :one
SELECT EXISTS (
    SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.workspace_id = @workspace_id AND lower(u.email) = lower(@email::text)
);

-- name: InvitationCreate :one
INSERT INTO invitations (workspace_id, email, role, invited_by, expires_at)
VALUES (@workspace_id, @email::text, @role::text, sqlc.narg(invited_by), @expires_at::timestamptz)
RETURNING *;

-- name: InvitationOpenCount :one
-- Pending invitations hold a seat until they expire.
SELECT count(*)::int FROM invitations
WHERE workspace_id = @workspace_id AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now();

-- name: InvitationDeleteExpired :exec
-- An expired invitation to the same address makes way for a new one.
DELETE FROM invitations
WHERE workspace_id = @workspace_id AND lower(email) = lower(@email::text)
  AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at <= now();

-- name: InvitationListOpen :many
SELECT i.*, u.email AS invited_by_email FROM invitations i
LEFT JOIN users u ON u.id = i.invited_by
WHERE i.workspace_id = @workspace_id AND i.accepted_at IS NULL AND i.revoked_at IS NULL
ORDER BY i.created_at DESC;

-- name: InvitationGetForUpdate :one
SELECT * FROM invitations WHERE workspace_id = @workspace_id AND id = @id FOR UPDATE;

-- name: InvitationByHash :one
SELECT i.*, w.name AS workspace_name, u.email AS invited_by_email
FROM invitations i
JOIN workspaces w ON w.id = i.workspace_id
LEFT JOIN users u ON u.id = i.invited_by
WHERE i.token_hash = @token_hash::bytea;

-- name: InvitationByHashForUpdate :one
SELECT * FROM invitations WHERE token_hash = @token_hash::bytea FOR UPDATE;

-- name: InvitationSetToken :one
-- Run by the email's composer in the sending transaction: the new token's hash
-- replaces any earlier one and the seven days start again. No row: the invitation
-- was accepted or revoked meanwhile, and the email is dropped.
UPDATE invitations SET token_hash = @token_hash::bytea, sent_at = now(), expires_at = @expires_at::timestamptz
WHERE id = @id AND accepted_at IS NULL AND revoked_at IS NULL
RETURNING *;

-- name: InvitationClearToken :exec
-- A resend kills the old link at once, before the new email goes out.
UPDATE invitations SET token_hash = NULL WHERE workspace_id = @workspace_id AND id = @id;

-- name: InvitationRevoke :exec
UPDATE invitations SET revoked_at = now() WHERE workspace_id = @workspace_id AND id = @id;

-- name: InvitationAccept :exec
UPDATE invitations SET accepted_at = now(), accepted_by = @accepted_by WHERE id = @id;

-- name: MemberWorkspaceCount :one
SELECT count(*)::int FROM memberships WHERE user_id = @user_id;
