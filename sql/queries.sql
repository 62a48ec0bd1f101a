-- Named runtime statements, loaded by name through segql.sqlfiles.query().
-- Values are always bind parameters; nothing is formatted into this text.

-- name: insert_reject
INSERT INTO segql.rejects (source, line, reason, raw)
VALUES (%(source)s, %(line)s, %(reason)s, %(raw)s);

-- name: copy_events_with_ts
COPY segql.events (user_id, name, ts, props) FROM STDIN;

-- name: copy_events_without_ts
COPY segql.events (user_id, name, props) FROM STDIN;

-- name: create_profiles_stage
CREATE TEMP TABLE IF NOT EXISTS segql_profiles_stage (
  user_id text NOT NULL,
  traits jsonb NOT NULL
) ON COMMIT DELETE ROWS;

-- name: copy_profiles_stage
COPY segql_profiles_stage (user_id, traits) FROM STDIN;

-- name: merge_profiles_stage
-- The loader folds repeated users within a batch first: ON CONFLICT cannot touch a row twice.
INSERT INTO segql.profiles AS p (user_id, traits)
SELECT user_id, traits FROM segql_profiles_stage
ON CONFLICT (user_id) DO UPDATE
  SET traits = p.traits || excluded.traits, updated_at = now();

-- name: server_info
SELECT current_setting('server_version') AS version, current_database() AS database;

-- name: table_estimate
SELECT c.reltuples::bigint
FROM pg_class c
WHERE c.oid = to_regclass(%(table)s);

-- name: current_program
-- The deploy whose program is live: the newest one that created its refresh function.
SELECT d.id FROM segql.deploys d
WHERE to_regprocedure(format('segql.%I(text[], text)', 'p' || d.id || '_refresh')) IS NOT NULL
ORDER BY d.id DESC LIMIT 1;

-- name: lock_for_rebuild
-- As deploy does: writers wait, and a running tick finishes first (it locks users, then timers).
LOCK TABLE segql.events, segql.profiles IN SHARE ROW EXCLUSIVE MODE;

-- name: lock_timers_for_rebuild
LOCK TABLE segql.timers IN EXCLUSIVE MODE;

-- name: forget_unseen_users
DELETE FROM segql.users uu
WHERE NOT EXISTS (SELECT 1 FROM segql.events e WHERE e.user_id = uu.user_id)
  AND NOT EXISTS (SELECT 1 FROM segql.profiles p WHERE p.user_id = uu.user_id);

-- name: add_seen_users
INSERT INTO segql.users (user_id)
SELECT user_id FROM segql.events UNION SELECT user_id FROM segql.profiles
ON CONFLICT (user_id) DO NOTHING;

-- name: clear_feature_state
DELETE FROM segql.feature_state;

-- name: clear_orphan_state
-- Memberships and timers of users segql no longer knows, or of segments no longer deployed.
WITH gone AS (
    DELETE FROM segql.members m
    WHERE NOT EXISTS (SELECT 1 FROM segql.users uu WHERE uu.user_id = m.user_id)
       OR NOT EXISTS (SELECT 1 FROM segql.segments s WHERE s.name = m.segment)
    RETURNING m.segment, m.user_id
)
INSERT INTO segql.changes (segment, user_id, kind, at, cause, version)
SELECT g.segment, g.user_id, 'exit', segql.now(), %(cause)s, coalesce(s.version, 0)
FROM gone g LEFT JOIN segql.segments s ON s.name = g.segment
ORDER BY 1, 2;

-- name: clear_orphan_timers
DELETE FROM segql.timers t
WHERE NOT EXISTS (SELECT 1 FROM segql.users uu WHERE uu.user_id = t.user_id)
   OR NOT EXISTS (SELECT 1 FROM segql.segments s WHERE s.name = t.segment);

-- name: all_users
SELECT user_id FROM segql.users ORDER BY user_id;

-- name: last_seq
SELECT coalesce(max(seq), 0) FROM segql.changes;

-- name: changes_since
SELECT kind, count(*) FROM segql.changes WHERE seq > %(seq)s GROUP BY kind;
