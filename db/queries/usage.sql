-- usage_events rows are written with COPY by metering.writeEvents, by hand: sqlc's
-- :copyfrom passes *uuid.UUID, which pgx encodes through driver.Valuer and a
-- failed first plan, several allocations per column, on a path that carries
-- every API request.

-- name: UsageDailyAdd :exec
-- Adds a batch's aggregates to the roll-up. Callers sort the rows so concurrent
-- batches from several replicas lock them in the same order.
INSERT INTO usage_daily AS d (workspace_id, day, key_id, endpoint, status, requests, billable, latency_us_sum)
SELECT unnest(@workspace_ids::uuid[]), unnest(@days::date[]), unnest(@key_ids::uuid[]), unnest(@endpoints::text[]),
    unnest(@statuses::smallint[]), unnest(@requests::bigint[]), unnest(@billables::bigint[]), unnest(@latencies::bigint[])
ON CONFLICT (workspace_id, day, key_id, endpoint, status) DO UPDATE SET
    requests = d.requests + EXCLUDED.requests,
    billable = d.billable + EXCLUDED.billable,
    latency_us_sum = d.latency_us_sum + EXCLUDED.latency_us_sum;

-- name: UsageBillable :one
-- Billable requests of a workspace between two days, from the roll-up.
SELECT coalesce(sum(billable), 0)::bigint AS billable
FROM usage_daily
WHERE workspace_id = @workspace_id AND day >= @since::date AND day < @until::date;

-- name: UsageByDay :many
SELECT day, sum(requests)::bigint AS requests, sum(billable)::bigint AS billable
FROM usage_daily
WHERE workspace_id = @workspace_id AND day >= @since::date
GROUP BY day
ORDER BY day;

-- name: UsageByKey :many
SELECT d.key_id, coalesce(k.name, '')::text AS name, coalesce(k.prefix, '')::text AS prefix,
    (k.revoked_at IS NOT NULL)::bool AS revoked,
    sum(d.requests)::bigint AS requests, sum(d.billable)::bigint AS billable
FROM usage_daily d
LEFT JOIN api_keys k ON k.id = d.key_id AND k.workspace_id = d.workspace_id
WHERE d.workspace_id = @workspace_id AND d.day >= @since::date
GROUP BY d.key_id, k.name, k.prefix, k.revoked_at
ORDER BY requests DESC, name;

-- name: UsageByEndpoint :many
SELECT endpoint, sum(requests)::bigint AS requests, sum(billable)::bigint AS billable,
    (sum(latency_us_sum) / greatest(sum(requests), 1))::bigint AS avg_latency_us
FROM usage_daily
WHERE workspace_id = @workspace_id AND day >= @since::date
GROUP BY endpoint
ORDER BY requests DESC, endpoint;

-- name: UsageByStatus :many
SELECT status, sum(requests)::bigint AS requests, sum(billable)::bigint AS billable
FROM usage_daily
WHERE workspace_id = @workspace_id AND day >= @since::date
GROUP BY status
ORDER BY status;

-- name: UsageDailyList :many
-- Every roll-up row since a day, for the CSV export.
SELECT d.day, d.key_id, coalesce(k.name, '')::text AS key_name, coalesce(k.prefix, '')::text AS key_prefix,
    d.endpoint, d.status, d.requests, d.billable, d.latency_us_sum
FROM usage_daily d
LEFT JOIN api_keys k ON k.id = d.key_id AND k.workspace_id = d.workspace_id
WHERE d.workspace_id = @workspace_id AND d.day >= @since::date
ORDER BY d.day, key_name, d.endpoint, d.status;
