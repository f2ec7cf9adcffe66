-- name: DocumentExportPage :many
-- Keyset pages in primary-key order, so an export of any size holds one page at a
-- time and each page is an index range scan, however far in.
SELECT id, title, url, metadata, text, chunks, status, status_reason, created_at, updated_at
FROM documents
WHERE workspace_id = @workspace_id AND id > @after_id::text
ORDER BY id
LIMIT @lim::int;

-- name: ExportAPIKeys :many
-- Key metadata without the hash. @all_keys: admins see every key, others their own.
SELECT id, name, prefix, scopes, kind, created_by, created_at, last_used_at, expires_at, revoked_at
FROM api_keys
WHERE workspace_id = @workspace_id AND (@all_keys::boolean OR created_by = @user_id)
ORDER BY created_at, id;

-- name: ExportUsageDailyPage :many
-- The roll-up in primary-key order, paged by its key.
SELECT day, key_id, endpoint, status, requests, billable, latency_us_sum
FROM usage_daily
WHERE workspace_id = @workspace_id
  AND (day, key_id, endpoint, status) > (@after_day::date, @after_key::uuid, @after_endpoint::text, @after_status::smallint)
ORDER BY day, key_id, endpoint, status
LIMIT @lim::int;

-- name: ExportAuditPage :many
-- A workspace's log by id. @all_rows: admins read all of it, others what they did.
SELECT id, created_at, action, actor_kind, actor_user_id, target_kind, target_id, ip, user_agent, detail
FROM audit_log
WHERE workspace_id = @workspace_id AND id > @after_id::bigint
  AND (@all_rows::boolean OR actor_user_id = @user_id)
ORDER BY id
LIMIT @lim::int;

-- name: ExportAccountAuditPage :many
-- Account-level entries (no workspace) the person caused or that name them.
SELECT id, created_at, action, actor_kind, actor_user_id, target_kind, target_id, ip, user_agent, detail
FROM audit_log
WHERE workspace_id IS NULL AND id > @after_id::bigint
  AND (actor_user_id = @user_id OR (target_kind = 'user' AND target_id = @user_text::text))
ORDER BY id
LIMIT @lim::int;

-- name: AccountOwnedWorkspaces :many
-- The workspaces the person owns, locked, with how many others belong to each (a
-- workspace with others must change hands before its owner can leave Cairn).
SELECT w.id, w.name, (SELECT count(*) FROM memberships o WHERE o.workspace_id = w.id AND o.user_id <> @user_id)::int AS others
FROM memberships m
JOIN workspaces w ON w.id = m.workspace_id
WHERE m.user_id = @user_id AND m.role = 'owner'
ORDER BY w.created_at
FOR UPDATE OF w;

-- name: AccountRevokeWorkspaceKeys :many
-- Every key of the workspaces, revoked before the rows go; the caller tells every
-- replica of each so that no cache keeps one alive.
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE workspace_id = ANY(@workspace_ids::uuid[])
RETURNING id;

-- name: AccountLiveSubscriptions :many
-- Subscriptions Stripe may still charge: cancelled at once by a job.
SELECT id FROM subscriptions
WHERE workspace_id = ANY(@workspace_ids::uuid[])
  AND status NOT IN ('canceled', 'incomplete_expired');

-- name: AccountDeleteWorkspaces :execrows
-- Cascades to everything that has a foreign key to the workspace; chunks and
-- vectors go with their documents.
DELETE FROM workspaces WHERE id = ANY(@workspace_ids::uuid[]);

-- name: AccountDeleteSessions :execrows
-- scs stores a session's values gob-encoded; the user id is among them as text.
DELETE FROM sessions WHERE position(convert_to(@user_text::text, 'UTF8') IN data) > 0;

-- name: AccountDeleteTraces :exec
-- What else names the person: failed log-ins by address and the invitations they
-- accepted (their email is on them). Open invitations to the address stay: they
-- belong to the inviting workspace, not to this account.
WITH f AS (DELETE FROM login_failures WHERE lower(email) = lower(@email::text))
DELETE FROM invitations WHERE accepted_by = @user_id;

-- name: AccountDeleteUser :execrows
DELETE FROM users WHERE id = @user_id;
