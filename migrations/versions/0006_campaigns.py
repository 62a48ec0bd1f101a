"""Campaigns: their catalog, cursors and deliveries, and the views over them.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE segql.campaigns (
    name            text PRIMARY KEY,
    version         integer NOT NULL,
    definition      text NOT NULL,
    comment         text,
    source          text,
    segment         text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('enter', 'exit')),
    url             text NOT NULL,
    after_secs      numeric,
    cap_limit       integer,
    cap_secs        numeric,
    quiet_from      time,
    quiet_to        time,
    payload         text,
    -- Standard Webhooks signing secret, whsec_<base64>; kept across redeploys.
    secret          text NOT NULL,
    -- The cursor: every change whose transaction is visible in this snapshot has been planned
    -- (segql/feed.py explains why a snapshot and not a seq). Planning reads the changes visible
    -- in the current snapshot and not in this one, and moves it in the same transaction.
    base            pg_snapshot NOT NULL,
    planned_at      timestamptz,
    -- A 410 Gone from the endpoint stops deliveries until a redeploy or a replay.
    disabled_at     timestamptz,
    disabled_reason text,
    deployed_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segql.campaign_versions (
    name        text NOT NULL,
    version     integer NOT NULL,
    definition  text NOT NULL,
    deployed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- One row per (campaign, change): the unique key is what makes planning exactly once.
CREATE TABLE segql.deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign        text NOT NULL REFERENCES segql.campaigns (name) ON DELETE CASCADE,
    seq             bigint NOT NULL,
    segment         text NOT NULL,
    user_id         text NOT NULL,
    kind            text NOT NULL,
    change_at       timestamptz NOT NULL,
    webhook_id      text NOT NULL UNIQUE,
    status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'skipped')),
    -- Why a delivery was skipped, held, or failed.
    reason          text,
    due_at          timestamptz,
    -- The exact bytes signed and sent on every attempt.
    body            text,
    attempts        integer NOT NULL DEFAULT 0,
    -- Attempts since the delivery was planned or replayed: the position in the retry schedule.
    round_attempts  integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign, seq)
);
CREATE INDEX deliveries_due ON segql.deliveries (due_at) WHERE status = 'pending';
CREATE INDEX deliveries_cap ON segql.deliveries (campaign, user_id, change_at);
CREATE INDEX deliveries_status ON segql.deliveries (campaign, status, change_at);

CREATE VIEW segql.campaign_stats AS
SELECT c.name AS campaign, c.segment, c.kind, c.url, c.version,
       c.disabled_at, c.disabled_reason,
       count(d.id) FILTER (WHERE d.status = 'delivered') AS sent,
       count(d.id) FILTER (WHERE d.status = 'pending') AS pending,
       count(d.id) FILTER (WHERE d.status = 'failed') AS failed,
       count(d.id) FILTER (WHERE d.status = 'skipped') AS skipped,
       max(d.delivered_at) AS last_delivered_at
FROM segql.campaigns c LEFT JOIN segql.deliveries d ON d.campaign = c.name
GROUP BY c.name;

CREATE VIEW segql.campaign_deliveries AS
SELECT d.campaign, d.webhook_id, d.seq, d.segment, d.user_id, d.kind, d.change_at, d.status,
       d.reason, d.due_at, d.attempts, d.last_status, d.last_error, d.last_attempt_at,
       d.delivered_at, d.body
FROM segql.deliveries d;
"""

DOWNGRADE = """
DROP VIEW IF EXISTS segql.campaign_deliveries;
DROP VIEW IF EXISTS segql.campaign_stats;
DROP TABLE IF EXISTS segql.deliveries;
DROP TABLE IF EXISTS segql.campaign_versions;
DROP TABLE IF EXISTS segql.campaigns;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
