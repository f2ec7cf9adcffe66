-- +goose Up

-- One row per /v1 request, written in batches with COPY. Append-only: nothing
-- updates a row. There is deliberately no foreign key to workspaces: a batch must
-- never fail as a whole because one workspace was deleted meanwhile, and requests
-- that failed authentication have no workspace at all.
CREATE TABLE usage_events (
    at           timestamptz NOT NULL,
    workspace_id uuid,
    key_id       uuid,
    endpoint     text NOT NULL,     -- method and route, e.g. "POST /v1/search"
    status       smallint NOT NULL,
    latency_us   integer NOT NULL,
    billable     smallint NOT NULL, -- units counted against the monthly quota
    request_id   text NOT NULL
);
-- BRIN, not B-tree: rows arrive in time order, so a block-range index serves
-- time-bounded scans (exports, retention) at almost no cost per COPY, which
-- carries every API request. Charts read usage_daily, never this table.
CREATE INDEX usage_events_at_idx ON usage_events USING brin (at);

-- Daily roll-up of usage_events for charts, kept in step by the same batch
-- transaction that inserts the events. Only requests with a workspace (and so a
-- key) are rolled up. No foreign key, for the reason above.
CREATE TABLE usage_daily (
    workspace_id   uuid NOT NULL,
    day            date NOT NULL,
    key_id         uuid NOT NULL,
    endpoint       text NOT NULL,
    status         smallint NOT NULL,
    requests       bigint NOT NULL,
    billable       bigint NOT NULL,
    latency_us_sum bigint NOT NULL,
    PRIMARY KEY (workspace_id, day, key_id, endpoint, status)
);

-- Billable requests per workspace and calendar month (UTC) for plans with a finite
-- quota: one conditional upsert per billable request keeps it exact across replicas.
CREATE TABLE quota_counters (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period       date NOT NULL, -- first day of the month
    used         bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (workspace_id, period)
);

-- Quota emails already sent: the primary key lets exactly one replica claim each
-- 80 % and 100 % notice per workspace and period.
CREATE TABLE quota_notices (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    period       date NOT NULL,
    threshold    smallint NOT NULL CHECK (threshold IN (80, 100)),
    sent_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, period, threshold)
);

-- +goose Down
DROP TABLE quota_notices, quota_counters, usage_daily, usage_events;
