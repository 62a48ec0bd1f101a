-- Named statements of the web dashboard (segql/dashboard), loaded by name through
-- segql.sqlfiles.query(name, "dashboard.sql"). Values are always bind parameters.

-- name: sizes
SELECT s.name, (SELECT count(*) FROM segql.members m WHERE m.segment = s.name)
FROM segql.segments s
ORDER BY s.name;

-- name: clock_and_position
-- Where a new server starts: the snapshot its sizes are counted in, the clock, and the last
-- seq logged (a reconnecting browser that saw nothing newer resumes after it).
SELECT pg_current_snapshot()::text, segql.now(), (SELECT max(seq) FROM segql.changes);

-- name: clock_and_segments
-- After each batch of the feed: the clock, and which segments are deployed (a drop also arrives
-- as changes).
SELECT segql.now(), (SELECT array_agg(name) FROM segql.segments);

-- name: counted
-- Which of these changes a snapshot already saw.
SELECT seq FROM segql.changes
WHERE seq = ANY(%(seqs)s::bigint[])
  AND pg_visible_in_snapshot(xid, %(snapshot)s::pg_snapshot);

-- name: activity
-- Enters and exits per segment and minute since a moment: read once when a server starts.
SELECT segment, floor(extract(epoch FROM at) / 60)::bigint AS minute, kind, count(*)
FROM segql.changes
WHERE at > %(since)s
GROUP BY 1, 2, 3;

-- name: changes_after
-- A reconnecting browser's missed changes, when this process did not deliver them itself.
SELECT seq, segment, user_id, kind, at, cause, version
FROM segql.changes
WHERE seq > %(after)s
  AND (%(segment)s::text IS NULL OR segment = %(segment)s::text)
ORDER BY seq
LIMIT %(limit)s;

-- name: segments
SELECT s.name, s.version, s.comment, s.definition, s.deployed_at,
       (SELECT count(*) FROM segql.members m WHERE m.segment = s.name) AS size
FROM segql.segments s
ORDER BY s.name;

-- name: segment
SELECT s.name, s.version, s.comment, s.definition, s.deployed_at, s.full_query,
       (SELECT v.compiled FROM segql.segment_versions v
        WHERE v.name = s.name AND v.version = s.version) AS compiled,
       (SELECT count(*) FROM segql.members m WHERE m.segment = s.name) AS size
FROM segql.segments s
WHERE s.name = %(segment)s;

-- name: size_series
-- The size at the end of each step over the last `span`, rebuilt backwards from the size now:
-- the size at t is the size now less the net change logged after t.
WITH clk AS (SELECT segql.now() AS now),
grid AS (
    SELECT g.i, clk.now - %(span)s::interval + g.i * %(step)s::interval AS t
    FROM clk, generate_series(0, %(points)s) AS g(i)
),
moved AS (
    SELECT ceil(extract(epoch FROM c.at - (clk.now - %(span)s::interval))
                / extract(epoch FROM %(step)s::interval))::int AS i,
           count(*) FILTER (WHERE c.kind = 'enter') AS enters,
           count(*) FILTER (WHERE c.kind = 'exit') AS exits
    FROM segql.changes c, clk
    WHERE c.segment = %(segment)s AND c.at > clk.now - %(span)s::interval AND c.at <= clk.now
    GROUP BY 1
),
cur AS (SELECT count(*) AS n FROM segql.members WHERE segment = %(segment)s)
SELECT grid.t,
       cur.n - coalesce(sum(coalesce(moved.enters - moved.exits, 0))
                        OVER (ORDER BY grid.i DESC ROWS BETWEEN UNBOUNDED PRECEDING
                                                        AND 1 PRECEDING), 0) AS size,
       coalesce(moved.enters, 0), coalesce(moved.exits, 0)
FROM grid CROSS JOIN cur LEFT JOIN moved USING (i)
ORDER BY grid.i;

-- name: recent_changes
SELECT seq, segment, user_id, kind, at, cause, version
FROM segql.changes
WHERE segment = %(segment)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: members_page
SELECT user_id, since, count(*) OVER () AS total
FROM segql.members
WHERE segment = %(segment)s AND user_id LIKE %(pattern)s
ORDER BY user_id
LIMIT %(limit)s OFFSET %(offset)s;

-- name: members_all
SELECT user_id, since
FROM segql.members
WHERE segment = %(segment)s AND user_id LIKE %(pattern)s
ORDER BY user_id;

-- name: user_history
-- One user's enters and exits in every segment, oldest first (the index leads with segment).
SELECT seq, segment, user_id, kind, at, cause, version
FROM segql.changes
WHERE segment = ANY(ARRAY(SELECT DISTINCT name FROM segql.segment_versions
                          UNION SELECT name FROM segql.segments))
  AND user_id = %(user_id)s
ORDER BY seq;
