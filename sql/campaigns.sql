-- Runtime statements of segql.campaigns, loaded by name (segql.sqlfiles.query(name, "campaigns.sql")).

-- name: deployed_campaigns
SELECT name, version, definition, secret FROM segql.campaigns ORDER BY name;

-- name: insert_campaign
INSERT INTO segql.campaigns
    (name, version, definition, comment, source, segment, kind, url, after_secs, cap_limit,
     cap_secs, quiet_from, quiet_to, payload, secret, base)
VALUES (%(name)s, %(version)s, %(definition)s, %(comment)s, %(source)s, %(segment)s, %(kind)s,
        %(url)s, %(after_secs)s, %(cap_limit)s, %(cap_secs)s, %(quiet_from)s, %(quiet_to)s,
        %(payload)s, %(secret)s, pg_current_snapshot());

-- name: update_campaign
-- A changed definition keeps its secret, its cursor and its deliveries, and is enabled again.
UPDATE segql.campaigns SET
    version = %(version)s, definition = %(definition)s, comment = %(comment)s,
    source = %(source)s, segment = %(segment)s, kind = %(kind)s, url = %(url)s,
    after_secs = %(after_secs)s, cap_limit = %(cap_limit)s, cap_secs = %(cap_secs)s,
    quiet_from = %(quiet_from)s, quiet_to = %(quiet_to)s, payload = %(payload)s,
    disabled_at = NULL, disabled_reason = NULL, deployed_at = now()
WHERE name = %(name)s;

-- name: insert_campaign_version
INSERT INTO segql.campaign_versions (name, version, definition)
VALUES (%(name)s, %(version)s, %(definition)s);

-- name: last_campaign_version
SELECT coalesce(max(version), 0) FROM segql.campaign_versions WHERE name = %(name)s;

-- name: drop_campaign
DELETE FROM segql.campaigns WHERE name = %(name)s;

-- name: lock_campaign
-- One planner per campaign at a time; the others skip it rather than wait.
SELECT name, segment, kind, after_secs, cap_limit, cap_secs, quiet_from, quiet_to, payload,
       version, base::text
FROM segql.campaigns WHERE name = %(name)s
FOR UPDATE SKIP LOCKED;

-- name: campaign_names
SELECT name FROM segql.campaigns ORDER BY name;

-- name: current_snapshot
SELECT pg_current_snapshot()::text;

-- name: new_changes
-- The campaign's changes committed since its cursor, in commit order (see segql/feed.py): by the
-- last seq of their transaction, then by seq. Changes made by deploys (backfill, drop) are not
-- something a user did, and trigger nothing.
SELECT c.seq, c.user_id, c.at, c.cause, c.version, p.traits
FROM (
    SELECT c.*, max(c.seq) OVER (PARTITION BY c.xid) AS tx_last
    FROM segql.changes c
    WHERE c.segment = %(segment)s
      AND c.kind = %(kind)s
      AND c.cause IN ('event', 'profile', 'time')
      AND c.xid >= pg_snapshot_xmin(%(base)s::pg_snapshot)
      AND pg_visible_in_snapshot(c.xid, %(snapshot)s::pg_snapshot)
      AND NOT pg_visible_in_snapshot(c.xid, %(base)s::pg_snapshot)
) c
LEFT JOIN segql.profiles p ON p.user_id = c.user_id
ORDER BY c.tx_last, c.seq;

-- name: recent_planned
-- What counts against a cap: deliveries planned (and not skipped) inside the window.
SELECT user_id, change_at FROM segql.deliveries
WHERE campaign = %(campaign)s AND user_id = ANY(%(users)s) AND change_at > %(since)s
  AND status <> 'skipped'
ORDER BY change_at;

-- name: insert_delivery
INSERT INTO segql.deliveries
    (campaign, seq, segment, user_id, kind, change_at, webhook_id, status, reason, due_at, body)
VALUES (%(campaign)s, %(seq)s, %(segment)s, %(user_id)s, %(kind)s, %(change_at)s,
        %(webhook_id)s, %(status)s, %(reason)s, %(due_at)s, %(body)s)
ON CONFLICT (campaign, seq) DO NOTHING;

-- name: advance_cursor
UPDATE segql.campaigns SET base = %(snapshot)s::pg_snapshot, planned_at = now()
WHERE name = %(name)s;

-- name: ring_senders
SELECT pg_notify('segql_deliveries', '');

-- name: claim_delivery
-- The row stays locked while its request is in flight: a worker that dies mid-request drops
-- its connection, the lock goes with it, and another worker sends the same webhook-id again.
SELECT d.id, d.webhook_id, d.body, d.round_attempts, c.url, c.secret, c.name,
       (c.after_secs IS NOT NULL AND d.attempts = 0
        AND EXISTS (SELECT 1 FROM segql.changes x
                    WHERE x.segment = d.segment AND x.user_id = d.user_id
                      AND x.seq > d.seq AND x.kind <> d.kind)) AS user_left,
       segql.now() AS clock, c.quiet_from, c.quiet_to,
       (SELECT p.traits ->> 'timezone' FROM segql.profiles p WHERE p.user_id = d.user_id) AS tz
FROM segql.deliveries d JOIN segql.campaigns c ON c.name = d.campaign
WHERE d.status = 'pending' AND d.due_at <= segql.now() AND c.disabled_at IS NULL
ORDER BY d.due_at
LIMIT 1
FOR UPDATE OF d SKIP LOCKED;

-- name: next_due
SELECT (SELECT min(d.due_at) FROM segql.deliveries d JOIN segql.campaigns c ON c.name = d.campaign
        WHERE d.status = 'pending' AND c.disabled_at IS NULL),
       segql.now(),
       (SELECT pinned_at IS NOT NULL FROM segql.clock);

-- name: mark_delivered
UPDATE segql.deliveries SET status = 'delivered', attempts = attempts + 1,
    round_attempts = round_attempts + 1, last_status = %(status)s, last_error = NULL,
    reason = NULL, last_attempt_at = now(), delivered_at = now()
WHERE id = %(id)s;

-- name: mark_retry
UPDATE segql.deliveries SET attempts = attempts + 1, round_attempts = round_attempts + 1,
    last_status = %(status)s, last_error = %(error)s, last_attempt_at = now(),
    due_at = %(due)s, reason = %(reason)s
WHERE id = %(id)s;

-- name: mark_failed
UPDATE segql.deliveries SET status = 'failed', attempts = attempts + 1,
    round_attempts = round_attempts + 1, last_status = %(status)s, last_error = %(error)s,
    last_attempt_at = now(), reason = %(reason)s
WHERE id = %(id)s;

-- name: mark_left
UPDATE segql.deliveries SET status = 'skipped', reason = %(reason)s WHERE id = %(id)s;

-- name: disable_campaign
UPDATE segql.campaigns SET disabled_at = now(), disabled_reason = %(reason)s
WHERE name = %(name)s AND disabled_at IS NULL;

-- name: campaign_stats
SELECT campaign, segment, kind, url, version, disabled_at, disabled_reason, sent, pending, failed,
       skipped, last_delivered_at
FROM segql.campaign_stats ORDER BY campaign;

-- name: campaign_deliveries
SELECT webhook_id, seq, user_id, kind, change_at, status, reason, due_at, attempts, last_status,
       last_error, last_attempt_at, delivered_at
FROM segql.campaign_deliveries
WHERE campaign = %(campaign)s AND (NOT %(failed)s OR status = 'failed')
ORDER BY seq;

-- name: replay
-- Dead deliveries go back to the start of the retry schedule, and a disabled endpoint is on again.
WITH again AS (
    UPDATE segql.deliveries SET status = 'pending', round_attempts = 0, due_at = segql.now(),
        reason = 'replayed'
    WHERE campaign = %(campaign)s AND status = 'failed'
      AND (%(since)s::timestamptz IS NULL OR change_at >= %(since)s::timestamptz)
    RETURNING 1
), enabled AS (
    UPDATE segql.campaigns SET disabled_at = NULL, disabled_reason = NULL
    WHERE name = %(campaign)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM again), pg_notify('segql_deliveries', '');

-- name: campaign_secret
SELECT secret FROM segql.campaigns WHERE name = %(name)s;
