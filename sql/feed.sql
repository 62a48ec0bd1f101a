-- Named statements of the change feed (segql/feed.py) and the change-log readers
-- (segql/history.py), loaded by name through segql.sqlfiles.query(name, "feed.sql").
-- Values are always bind parameters; nothing is formatted into this text.

-- name: current_snapshot
SELECT pg_current_snapshot()::text;

-- name: batch_transactions
-- The transactions of one batch: visible in the batch snapshot and not in the base one, ordered
-- by each transaction's last seq (taken shortly before it commits). A transaction the base does
-- not see was running then (in its xip list) or started after it (xid >= its xmax): looking
-- only there keeps a long transaction elsewhere in the cluster, which holds xmin back, from
-- making every read scan everything logged since it began. (The xip list is an array, so that
-- a generic plan probes the xid index for it rather than hashing it against the whole log.)
-- Without a batch snapshot this opens a new batch in the same round trip: it ends at the
-- statement's own snapshot, so the rows read here are exactly those it sees. The snapshot comes
-- on every row, and alone on one row when the batch holds nothing.
WITH snap AS MATERIALIZED (
    SELECT coalesce(%(batch)s::pg_snapshot, pg_current_snapshot()) AS batch
)
SELECT snap.batch::text, t.xid, t.last, t.matching
FROM snap
LEFT JOIN LATERAL (
    SELECT xid::text AS xid, max(seq) AS last,
           count(*) FILTER (WHERE seq > coalesce(%(floor)s, 0)
                              AND (%(segments)s::text[] IS NULL
                                   OR segment = ANY(%(segments)s::text[])))
               AS matching
    FROM (
        SELECT xid, seq, segment FROM segql.changes
        WHERE xid >= pg_snapshot_xmax(%(base)s::pg_snapshot)
          AND xid < pg_snapshot_xmax(snap.batch)
        UNION ALL
        SELECT xid, seq, segment FROM segql.changes
        WHERE xid = ANY (ARRAY(SELECT pg_snapshot_xip(%(base)s::pg_snapshot)))
    ) unseen
    WHERE pg_visible_in_snapshot(xid, snap.batch)
    GROUP BY xid
) t ON true
ORDER BY t.last;

-- name: batch_changes
-- The next page of a batch after position (tx, seq), for the given transactions of the batch.
-- One xid probe per transaction (the lateral, kept apart by OFFSET 0): a generic plan joined
-- the page's few transactions to the log by hash, reading all of it, and with `= ANY` on the
-- segments it could read the log by (segment, user, seq) instead, which no index serves here;
-- array_position keeps the segment test a filter. Either read grows with everything logged.
-- tier_move is called only for a tier's changes: a function call per change costs more than
-- the rest of the page.
SELECT c.seq, c.segment, c.user_id, c.kind, c.at, c.cause, c.version, t.last AS tx,
       CASE WHEN tier.name IS NOT NULL
            THEN segql.tier_move(c.segment, c.user_id, c.xid, c.at, c.kind) END
FROM unnest(%(xids)s::text[]::xid8[], %(lasts)s::bigint[]) AS t(xid, last)
CROSS JOIN LATERAL (SELECT * FROM segql.changes x WHERE x.xid = t.xid OFFSET 0) c
LEFT JOIN segql.segments tier ON tier.name = c.segment AND tier.tiers IS NOT NULL
WHERE (t.last, c.seq) > (%(tx)s, %(seq)s)
  AND c.seq > coalesce(%(floor)s, 0)
  AND (%(segments)s::text[] IS NULL
       OR array_position(%(segments)s::text[], c.segment) IS NOT NULL)
ORDER BY t.last, c.seq
LIMIT %(limit)s;

-- name: lock_consumer
-- One process per consumer name: two readers of one cursor would deliver everything twice.
SELECT pg_try_advisory_lock(hashtextextended('segql.consumer:' || %(name)s, 0));

-- name: consumer_cursor
SELECT base::text, floor_seq, batch::text, batch_tx, batch_seq, segments
FROM segql.consumers
WHERE name = %(name)s;

-- name: create_consumer
INSERT INTO segql.consumers (name, base, floor_seq, segments)
VALUES (%(name)s, %(base)s::pg_snapshot, %(floor)s, %(segments)s::text[])
ON CONFLICT (name) DO NOTHING;

-- name: save_cursor
UPDATE segql.consumers
SET base = %(base)s::pg_snapshot, floor_seq = %(floor)s, batch = %(batch)s::pg_snapshot,
    batch_tx = %(tx)s, batch_seq = %(seq)s,
    last_seq = coalesce(%(last_seq)s, last_seq),
    acked_at = CASE WHEN %(last_seq)s::bigint IS NULL THEN acked_at ELSE now() END,
    updated_at = now()
WHERE name = %(name)s;

-- name: list_consumers
-- Pending: changes not acknowledged yet. A change of the batch in progress is acknowledged when
-- it is at or before the stored position (its transaction's last seq, then its own seq).
SELECT k.name, k.segments, k.last_seq, k.acked_at, k.updated_at,
       (SELECT count(*)
        FROM (SELECT c.seq, c.segment, max(c.seq) OVER (PARTITION BY c.xid) AS last,
                     coalesce(pg_visible_in_snapshot(c.xid, k.batch), false) AS in_batch
              FROM segql.changes c
              WHERE c.xid >= pg_snapshot_xmax(k.base)
                 OR c.xid IN (SELECT pg_snapshot_xip(k.base))) p
        WHERE p.seq > coalesce(k.floor_seq, 0)
          AND (k.segments IS NULL OR p.segment = ANY(k.segments))
          AND NOT (p.in_batch AND (p.last, p.seq) <= (k.batch_tx, k.batch_seq))) AS pending
FROM segql.consumers k
ORDER BY k.name;

-- name: drop_consumer
DELETE FROM segql.consumers WHERE name = %(name)s RETURNING name;

-- name: prune_reset
DROP TABLE IF EXISTS pg_temp.segql_prune, pg_temp.segql_prune_held;

-- name: prune_candidates
-- Changes older than the cutoff that no replay from the cutoff on needs: each (segment, user)'s
-- last change before the cutoff stays when it is an enter, because it says who was a member then.
-- `last` is the last seq of the change's transaction: its place in a consumer's batch.
CREATE TEMP TABLE segql_prune ON COMMIT DROP AS
SELECT seq, segment, xid, (SELECT max(t.seq) FROM segql.changes t WHERE t.xid = old.xid) AS last
FROM (
    SELECT c.seq, c.segment, c.kind, c.xid,
           row_number() OVER (PARTITION BY c.segment, c.user_id ORDER BY c.seq DESC) AS newest
    FROM segql.changes c
    WHERE c.at < %(cutoff)s
) old
WHERE NOT (newest = 1 AND kind = 'enter');

-- name: prune_held
-- Candidates a named consumer has not acknowledged: not visible in its base, and not at or
-- before its position in the batch in progress (nor skipped there by a start after a seq); and
-- candidates a campaign has not planned.
CREATE TEMP TABLE segql_prune_held ON COMMIT DROP AS
SELECT k.name, p.seq
FROM segql.consumers k
JOIN segql_prune p ON NOT pg_visible_in_snapshot(p.xid, k.base)
WHERE NOT coalesce(
    pg_visible_in_snapshot(p.xid, k.batch)
    AND ((p.last, p.seq) <= (k.batch_tx, k.batch_seq) OR p.seq <= coalesce(k.floor_seq, 0)),
    false)
UNION ALL
-- A campaign's changes it has not planned yet (its cursor is a base without a batch).
SELECT 'campaign ' || k.name, p.seq
FROM segql.campaigns k
JOIN segql_prune p ON p.segment = k.segment AND NOT pg_visible_in_snapshot(p.xid, k.base);

-- name: prune_held_back
-- In all, then per consumer.
SELECT NULL::text AS consumer, count(DISTINCT seq) AS held FROM segql_prune_held
UNION ALL
SELECT name, count(*) FROM segql_prune_held GROUP BY name;

-- name: prune_delete
WITH gone AS (
    DELETE FROM segql.changes c
    USING segql_prune p
    WHERE c.seq = p.seq
      AND (%(force)s OR NOT EXISTS (SELECT 1 FROM segql_prune_held h WHERE h.seq = p.seq))
    RETURNING c.segment
)
SELECT segment, count(*) FROM gone GROUP BY segment ORDER BY segment;

-- name: record_prune
INSERT INTO segql.log_prunes (cutoff, deleted, forced) VALUES (%(cutoff)s, %(deleted)s, %(force)s);

-- name: log_horizon
-- Replays of the log are exact from this moment on; NULL when nothing was ever pruned.
SELECT max(cutoff) FROM segql.log_prunes WHERE deleted > 0;

-- name: segment_known
SELECT EXISTS (SELECT 1 FROM segql.segments WHERE name = %(segment)s)
    OR EXISTS (SELECT 1 FROM segql.changes WHERE segment = %(segment)s);

-- name: members_at
-- Replay the log: a user was a member at the moment when their last change at or before it is
-- an enter; `since` is when that enter happened.
SELECT user_id, at AS since
FROM (
    SELECT DISTINCT ON (user_id) user_id, kind, at
    FROM segql.changes
    WHERE segment = %(segment)s AND at <= %(at)s
    ORDER BY user_id, seq DESC
) last
WHERE kind = 'enter'
ORDER BY user_id;

-- name: user_changes
SELECT seq, segment, user_id, kind, at, cause, version,
       segql.tier_move(segment, user_id, xid, at, kind)
FROM segql.changes
WHERE segment = %(segment)s AND user_id = %(user_id)s
ORDER BY seq;

-- name: recent_changes
SELECT seq, segment, user_id, kind, at, cause, version,
       segql.tier_move(segment, user_id, xid, at, kind)
FROM (
    SELECT * FROM segql.changes WHERE segment = %(segment)s ORDER BY seq DESC LIMIT %(limit)s
) recent
ORDER BY seq;

-- name: history_series
-- Enters and exits per period (in UTC) and the segment's size at the end of each period.
SELECT bucket, enters, exits, sum(enters - exits) OVER (ORDER BY bucket) AS size
FROM (
    SELECT date_trunc(%(every)s, at, 'UTC') AS bucket,
           count(*) FILTER (WHERE kind = 'enter') AS enters,
           count(*) FILTER (WHERE kind = 'exit') AS exits
    FROM segql.changes
    WHERE segment = %(segment)s
    GROUP BY 1
) per_period
ORDER BY bucket;

-- name: last_change
SELECT seq, kind, at, cause, version, segql.tier_move(segment, user_id, xid, at, kind)
FROM segql.changes
WHERE segment = %(segment)s AND user_id = %(user_id)s
ORDER BY seq DESC
LIMIT 1;

-- name: membership
SELECT since FROM segql.members WHERE segment = %(segment)s AND user_id = %(user_id)s;

-- name: next_timer
-- A grouped segment shares its group's timer: the next instant the user is evaluated again.
SELECT min(t.due_at) FROM segql.timers t
WHERE t.user_id = %(user_id)s
  AND t.segment IN (%(segment)s,
                    (SELECT s.timer_key FROM segql.segments s WHERE s.name = %(segment)s));

-- name: user_known
SELECT EXISTS (SELECT 1 FROM segql.users WHERE user_id = %(user_id)s)
    OR EXISTS (SELECT 1 FROM segql.profiles WHERE user_id = %(user_id)s)
    OR EXISTS (SELECT 1 FROM segql.events WHERE user_id = %(user_id)s);

-- name: log_start
-- Where a segment's history begins: its first logged change, or its first deploy when it never
-- had a member.
SELECT coalesce((SELECT min(at) FROM segql.changes WHERE segment = %(segment)s),
                (SELECT min(deployed_at) FROM segql.segment_versions WHERE name = %(segment)s));

-- name: notify_mode
SELECT value FROM segql.settings WHERE key = 'notify';

-- name: set_notify_mode
INSERT INTO segql.settings (key, value) VALUES ('notify', %(mode)s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: relay_committed
-- The segments of changes whose transactions committed since snapshot `base` (the feed's
-- batch rule: visible now, not visible then), for one NOTIFY per segment and batch.
SELECT pg_current_snapshot()::text AS snapshot,
       array(
           SELECT DISTINCT u.segment FROM (
               SELECT c.xid, c.segment FROM segql.changes c
               WHERE c.xid >= pg_snapshot_xmax(%(base)s::pg_snapshot)
                 AND c.xid < pg_snapshot_xmax(pg_current_snapshot())
               UNION ALL
               SELECT c.xid, c.segment FROM segql.changes c
               WHERE c.xid IN (SELECT pg_snapshot_xip(%(base)s::pg_snapshot))
           ) u
           WHERE pg_visible_in_snapshot(u.xid, pg_current_snapshot())
       ) AS segments;

-- name: relay_ring
SELECT pg_notify('segql', json_build_object('relay', true)::text),
       pg_notify('segql.' || s, json_build_object('relay', true)::text)
FROM unnest(%(segments)s::text[]) AS s;
