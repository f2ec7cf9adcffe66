-- name: QuotaConsume :one
-- Counts one billable request unless the workspace has used @lim already; no row
-- means the quota is exhausted. The row lock taken by ON CONFLICT makes concurrent
-- callers on every replica queue up and see each other's increments.
INSERT INTO quota_counters AS q (workspace_id, period, used)
VALUES (@workspace_id, @period::date, 1)
ON CONFLICT (workspace_id, period) DO UPDATE SET used = q.used + 1
WHERE q.used < @lim::bigint
RETURNING q.used;

-- name: QuotaRefund :one
-- Gives back one unit counted for a request that failed.
UPDATE quota_counters SET used = used - 1
WHERE workspace_id = @workspace_id AND period = @period::date AND used > 0
RETURNING used;

-- name: QuotaUsed :one
SELECT coalesce((SELECT used FROM quota_counters WHERE workspace_id = @workspace_id AND period = @period::date), 0)::bigint AS used;

-- name: QuotaNoticeClaim :execrows
-- One row per workspace, period and threshold: the replica whose insert lands sends the email.
INSERT INTO quota_notices (workspace_id, period, threshold)
VALUES (@workspace_id, @period::date, @threshold::smallint)
ON CONFLICT DO NOTHING;

-- name: QuotaNoticeRecipients :many
-- Who hears about quota: the workspace's owners and admins.
SELECT u.email FROM memberships m
JOIN users u ON u.id = m.user_id
WHERE m.workspace_id = @workspace_id AND m.role IN ('owner', 'admin')
ORDER BY m.created_at;
