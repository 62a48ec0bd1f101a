-- Named queries of `segql verify` (segql/verify.py).

-- name: verify_segments
SELECT s.name, s.full_query FROM segql.segments s
WHERE cardinality(%(names)s::text[]) = 0 OR s.name = ANY(%(names)s::text[])
ORDER BY s.name;

-- name: verify_sample
SELECT coalesce(array_agg(user_id ORDER BY user_id), '{}') FROM (
    SELECT uu.user_id FROM segql.users uu ORDER BY random() LIMIT %(size)s
) s;

-- name: verify_clock
SELECT segql.now();

-- name: verify_overdue
-- Timers the worker has not processed yet: membership of those users waits for the next tick.
-- A timer is keyed by its segment, or by a group of segments ('~' and the group's events).
SELECT t.segment, t.user_id, t.due_at FROM segql.timers t
WHERE t.due_at <= segql.now() AND (t.segment = ANY(%(names)s::text[]) OR t.segment LIKE '~%%')
  AND (%(users)s::text[] IS NULL OR t.user_id = ANY(%(users)s::text[]))
ORDER BY t.segment, t.due_at, t.user_id;

-- name: verify_orphan_timers
-- Timers of segments that are not deployed, or of users segql does not know.
SELECT t.segment, t.user_id, t.due_at FROM segql.timers t
WHERE (NOT EXISTS (SELECT 1 FROM segql.segments s WHERE s.name = t.segment)
       AND t.segment NOT LIKE '~%')
   OR NOT EXISTS (SELECT 1 FROM segql.users uu WHERE uu.user_id = t.user_id)
ORDER BY t.segment, t.user_id;

-- name: verify_lock_users
SELECT uu.user_id FROM segql.users uu WHERE uu.user_id = ANY(%(users)s::text[])
ORDER BY uu.user_id FOR UPDATE;

-- name: verify_timers_of
SELECT t.segment, t.user_id, t.due_at FROM segql.timers t
WHERE t.user_id = ANY(%(users)s::text[])
  AND (t.segment = ANY(%(names)s::text[]) OR t.segment LIKE '~%%');

-- name: verify_users
SELECT uu.user_id FROM segql.users uu ORDER BY uu.user_id;

-- name: verify_membership
-- Composed with psycopg.sql: the segment's full-recompute query from the catalog, its name and
-- the users checked (NULL: everyone). One set-based pass: the users on one side only, each with
-- the side that has it.
WITH expected AS MATERIALIZED ({full}),
actual AS (SELECT m.user_id FROM segql.members m WHERE m.segment = {segment})
SELECT coalesce(e.user_id, a.user_id) AS user_id, e.user_id IS NOT NULL AS expected
FROM expected e FULL JOIN actual a ON a.user_id = e.user_id
WHERE (e.user_id IS NULL OR a.user_id IS NULL)
  AND ({users}::text[] IS NULL OR coalesce(e.user_id, a.user_id) = ANY({users}::text[]))
ORDER BY 1;

-- name: verify_delete_orphans
-- Timers nothing can act on: their segment is gone, or segql never saw their user.
DELETE FROM segql.timers t
WHERE (NOT EXISTS (SELECT 1 FROM segql.segments s WHERE s.name = t.segment)
       AND t.segment NOT LIKE '~%')
   OR NOT EXISTS (SELECT 1 FROM segql.users uu WHERE uu.user_id = t.user_id);
