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

-- name: lock_clock
-- The instant the clock shows before a move, with the clock row locked so that two moves
-- cannot interleave their re-evaluations.
SELECT segql.now() FROM segql.clock FOR UPDATE;

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

-- name: lock_users
-- In user order, as the writers' triggers lock them, so a refresh never deadlocks with them.
SELECT 1 FROM segql.users WHERE user_id = ANY(%(users)s) ORDER BY user_id FOR UPDATE;

-- name: defer_evaluation
-- For this transaction only: the program's triggers update feature state and record the
-- affected users in segql.deferred instead of evaluating segments.
SELECT set_config('segql.defer', 'on', true);

-- name: evaluate_deferred
SELECT segql.evaluate_deferred(%(limit)s);

-- name: next_id
-- The id the next insert into a table takes from its identity, without taking it: compile
-- shows the numbers deploy would use and must not use them up (a sequence never rolls back).
SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence(%(table)s, 'id')::regclass), 0) + 1;

-- name: seen_event_names
-- Every event name in the data, for the compiler's did-you-mean (only run on tables small
-- enough to read whole; see segql.unseen).
SELECT DISTINCT name FROM segql.events;

-- name: seen_trait_keys
SELECT DISTINCT jsonb_object_keys(traits) FROM segql.profiles WHERE jsonb_typeof(traits) = 'object';

-- name: last_seq
SELECT coalesce(max(seq), 0) FROM segql.changes;

-- name: changes_since
SELECT kind, count(*) FROM segql.changes WHERE seq > %(seq)s GROUP BY kind;

-- name: show_segment
SELECT s.version,
       (SELECT count(*) FROM segql.members m WHERE m.segment = s.name),
       s.definition, s.comment, s.depends_on,
       ARRAY(SELECT r.name FROM segql.segments r WHERE s.name = ANY(r.depends_on) ORDER BY 1)
FROM segql.segments s WHERE s.name = %(name)s;

-- name: segment_versions
SELECT version, deployed_at, definition, comment
FROM segql.segment_versions WHERE name = %(name)s ORDER BY version;

-- name: user_memberships
SELECT m.segment, m.since, s.version FROM segql.members m
JOIN segql.segments s ON s.name = m.segment
WHERE m.user_id = %(user_id)s ORDER BY m.segment;

-- name: user_traits
SELECT traits, updated_at FROM segql.profiles WHERE user_id = %(user_id)s;

-- name: user_recent_events
SELECT ts, name, props FROM segql.events WHERE user_id = %(user_id)s
ORDER BY ts DESC, id DESC LIMIT %(limit)s;

-- name: user_event_count
SELECT count(*) FROM segql.events WHERE user_id = %(user_id)s;

-- name: user_timers
-- A timer is keyed by a segment, or by the group of segments that share it (timer_key).
SELECT t.due_at,
       ARRAY(SELECT s.name FROM segql.segments s
             WHERE s.timer_key = t.segment OR (s.timer_key IS NULL AND s.name = t.segment)
             ORDER BY 1)
FROM segql.timers t WHERE t.user_id = %(user_id)s ORDER BY t.due_at;

-- name: forget_user_groups
-- Rows of the given users (NULL: everyone), and of groups no longer deployed.
DELETE FROM segql.user_groups g
WHERE %(users)s::text[] IS NULL OR g.user_id = ANY(%(users)s::text[])
   OR NOT g.grp = ANY(%(keys)s::text[]);

-- name: sync_user_group
-- Which of a group's segments each of the users (NULL: everyone) is in, from segql.members.
INSERT INTO segql.user_groups (user_id, grp, segments)
SELECT m.user_id, %(key)s, array_agg(m.segment ORDER BY m.segment COLLATE "C")
FROM segql.members m
WHERE m.segment = ANY(%(names)s::text[])
  AND (%(users)s::text[] IS NULL OR m.user_id = ANY(%(users)s::text[]))
GROUP BY m.user_id;

-- name: deploy_instant
-- A deploy evaluates at the moment it holds the writers out, not at its transaction's start: the
-- locks waited for every writer in flight, and those writers' events are stamped with their own,
-- later start. Evaluated at its start, a deploy would see such an event as stamped in the future
-- and leave a timer due at once. A pinned clock (or one a caller set) is left as it is.
SELECT set_config('segql.now', clock_timestamp()::text, true)
WHERE coalesce(current_setting('segql.now', true), '') = ''
  AND NOT EXISTS (SELECT 1 FROM segql.clock WHERE pinned_at IS NOT NULL);
