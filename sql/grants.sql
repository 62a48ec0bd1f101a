-- What each kind of role may do (`segql grant|revoke ingest|read|admin ROLE`, segql/grants.py).
-- Composed with psycopg.sql: the role and segql's owner are identifiers, nothing else varies.

-- name: owner
SELECT n.nspowner::regrole::text, current_user, pg_has_role(n.nspowner, 'MEMBER')
FROM pg_catalog.pg_namespace n WHERE n.nspname = 'segql';

-- name: role_exists
SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %(role)s;

-- name: grant_ingest
-- Write events and profiles, and call track/identify. Profile loads merge traits into the
-- existing row (ON CONFLICT DO UPDATE), which reads and updates it; `segql ingest` also records
-- rejected rows, reads the clock for default timestamps and checks the schema revision.
GRANT USAGE ON SCHEMA segql TO {role};
GRANT INSERT ON segql.events TO {role};
GRANT INSERT, SELECT (user_id, traits), UPDATE (traits, updated_at) ON segql.profiles TO {role};
GRANT INSERT ON segql.rejects TO {role};
GRANT SELECT ON segql.clock, segql.alembic_version TO {role};
GRANT EXECUTE ON FUNCTION segql.track(text, text, jsonb, timestamptz),
    segql.identify(text, jsonb), segql.now(), segql.evaluate_deferred(integer) TO {role};

-- name: revoke_ingest
REVOKE INSERT ON segql.events FROM {role};
REVOKE ALL ON segql.profiles, segql.rejects FROM {role};
REVOKE EXECUTE ON FUNCTION segql.track(text, text, jsonb, timestamptz),
    segql.identify(text, jsonb), segql.evaluate_deferred(integer) FROM {role};

-- name: grant_read
-- Membership (the segments views and the table behind them), the change log and its history,
-- the catalog (segments, models, zones, RFM cutpoints) and timers, and named feed cursors. Not
-- the events and traits themselves: `segql why` and `segql scores`, which compute from them,
-- need the owner or an admin role. Views created by later deploys are readable too (default
-- privileges of segql's owner).
GRANT USAGE ON SCHEMA segql, segments TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA segments TO {role};
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA segments GRANT SELECT ON TABLES TO {role};
GRANT SELECT ON segql.members, segql.changes, segql.segments, segql.segment_versions,
    segql.timers, segql.log_prunes, segql.clock, segql.alembic_version,
    segql.rfm_cutpoints, segql.models, segql.model_versions, segql.model_readers,
    segql.zones TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON segql.consumers TO {role};
GRANT EXECUTE ON FUNCTION segql.now() TO {role};
GRANT EXECUTE ON FUNCTION segql.tier_move(text, text, xid8, timestamptz, text) TO {role};

-- name: revoke_read
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA segments REVOKE SELECT ON TABLES FROM {role};
REVOKE ALL ON ALL TABLES IN SCHEMA segments FROM {role};
REVOKE ALL ON segql.members, segql.changes, segql.segments, segql.segment_versions,
    segql.timers, segql.log_prunes, segql.consumers, segql.rfm_cutpoints, segql.models,
    segql.model_versions, segql.model_readers, segql.zones FROM {role};
REVOKE USAGE ON SCHEMA segments FROM {role};

-- name: grant_admin
-- Deploy, drop, move the clock, run the worker, prune the log: everything segql's owner does.
-- Deploys switch to the owner's role, so what they create stays owned by it.
GRANT {owner} TO {role};

-- name: revoke_admin
REVOKE {owner} FROM {role};

-- name: holds_any
SELECT has_table_privilege(%(role)s, 'segql.events', 'INSERT')
    OR has_table_privilege(%(role)s, 'segql.changes', 'SELECT');

-- name: revoke_leftovers
-- Shared by ingest and read: dropped once the role holds neither.
REVOKE ALL ON segql.clock, segql.alembic_version FROM {role};
REVOKE EXECUTE ON FUNCTION segql.now() FROM {role};
REVOKE USAGE ON SCHEMA segql FROM {role};

-- name: public_execute
-- New functions are executable by PUBLIC until this runs, in the deploy's own transaction.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA segql FROM PUBLIC;
