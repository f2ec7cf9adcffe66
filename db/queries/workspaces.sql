-- name: WorkspaceCreate :one
INSERT INTO workspaces (name) VALUES (@name::text) RETURNING *;

-- name: WorkspaceGet :one
SELECT * FROM workspaces WHERE id = @id;

-- name: WorkspaceGetForUpdate :one
SELECT * FROM workspaces WHERE id = @id FOR UPDATE;

-- name: WorkspaceSetPlan :one
UPDATE workspaces SET plan = @plan::text WHERE id = @id RETURNING *;

-- name: WorkspaceFindByOwnerEmail :many
SELECT w.* FROM workspaces w
JOIN memberships m ON m.workspace_id = w.id AND m.role = 'owner'
JOIN users u ON u.id = m.user_id
WHERE lower(u.email) = lower(@email::text)
ORDER BY w.created_at;

-- name: MembershipCreate :exec
INSERT INTO memberships (workspace_id, user_id, role) VALUES (@workspace_id, @user_id, @role::text);

-- name: MembershipListForUser :many
SELECT w.*, m.role, m.suspended_at FROM memberships m
JOIN workspaces w ON w.id = m.workspace_id
WHERE m.user_id = @user_id
ORDER BY m.created_at;

-- name: MembershipGet :one
SELECT w.*, m.role, m.suspended_at FROM memberships m
JOIN workspaces w ON w.id = m.workspace_id
WHERE m.user_id = @user_id AND m.workspace_id = @workspace_id;


-- name: MembershipCount :one
-- Suspended members count: they come back on upgrade.
SELECT count(*)::int FROM memberships WHERE workspace_id = @workspace_id;

-- name: MembershipSuspendAllButOwners :execrows
UPDATE memberships SET suspended_at = now()
WHERE workspace_id = @workspace_id AND role <> 'owner' AND suspended_at IS NULL;

-- name: MembershipRestoreAll :execrows
UPDATE memberships SET suspended_at = NULL
WHERE workspace_id = @workspace_id AND suspended_at IS NOT NULL;

-- name: WorkspaceRename :one
UPDATE workspaces SET name = @name::text WHERE id = @id RETURNING *;
