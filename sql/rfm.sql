-- RFM cutpoints: `segql refresh`, `segql rfm` and the worker's schedule (segql/rfm.py).

-- name: lock_for_refresh
-- As deploy and rebuild do: writers wait until the new cutpoints and every user's scores commit
-- together, and a running tick finishes first (it locks users, then timers).
LOCK TABLE segql.events, segql.profiles IN SHARE ROW EXCLUSIVE MODE;

-- name: lock_timers_for_refresh
LOCK TABLE segql.timers IN EXCLUSIVE MODE;

-- name: compute_queries
SELECT score, compute_sql FROM segql.rfm_cutpoints ORDER BY score;

-- name: tick_all
SELECT segql.tick(%(limit)s);

-- name: changes_in_transaction
SELECT kind, count(*) FROM segql.changes
WHERE xid = pg_current_xact_id() AND cause = 'refresh'
GROUP BY kind;

-- name: list_cutpoints
SELECT score, function, event, prop, within_seconds,
       coalesce(durations::text[], cuts::text[]) AS cutpoints,
       population, computed_at, refreshed_at
FROM segql.rfm_cutpoints
ORDER BY score;

-- name: refresh_age
-- How long ago (in the database's own time) the stalest score was refreshed, in seconds: 'never'
-- reads as infinitely long ago; no row when no score is deployed.
SELECT CASE WHEN bool_or(refreshed_at IS NULL) THEN 'infinity'::float8
            ELSE extract(epoch FROM now() - min(refreshed_at))::float8 END
FROM segql.rfm_cutpoints
HAVING count(*) > 0;
