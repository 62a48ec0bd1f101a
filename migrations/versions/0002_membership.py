"""Catalog, shared feature state, membership, change log and timers.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- Everyone segql has seen, in events or profiles. The statement triggers insert into it so that a
-- user's first appearance is known in O(1): such users are evaluated against every segment,
-- because "has not purchased" holds for someone who has done nothing yet.
CREATE TABLE segql.users (
    user_id    text PRIMARY KEY,
    first_seen timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segql.segments (
    name        text PRIMARY KEY,
    version     integer NOT NULL,
    definition  text NOT NULL,
    comment     text,
    source      text,
    depends_on  text[] NOT NULL DEFAULT '{}',
    full_query  text NOT NULL,
    deployed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE segql.segment_versions (
    name        text NOT NULL,
    version     integer NOT NULL,
    definition  text NOT NULL,
    comment     text,
    compiled    text NOT NULL,
    deployed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE segql.deploys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    deployed_at timestamptz NOT NULL DEFAULT now(),
    segments    text[] NOT NULL,
    created     text[] NOT NULL DEFAULT '{}',
    changed     text[] NOT NULL DEFAULT '{}',
    dropped     text[] NOT NULL DEFAULT '{}',
    program     text NOT NULL
);

-- A feature is a per-user aggregate over one event source, shared by every segment that reads it.
CREATE TABLE segql.features (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key        text NOT NULL UNIQUE,
    spec       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Running aggregates that an event updates in O(1); min/max/first/last are rebuilt from the
-- user's events only when events are updated or deleted.
CREATE TABLE segql.feature_state (
    feature_id integer NOT NULL,
    user_id    text NOT NULL,
    cnt        bigint NOT NULL DEFAULT 0,
    vcnt       bigint NOT NULL DEFAULT 0,
    sum        numeric,
    min        numeric,
    max        numeric,
    first_ts   timestamptz,
    last_ts    timestamptz,
    PRIMARY KEY (feature_id, user_id)
);

CREATE TABLE segql.members (
    segment text NOT NULL,
    user_id text NOT NULL,
    since   timestamptz NOT NULL,
    PRIMARY KEY (segment, user_id)
);

-- The change log is the truth; NOTIFY only says "look here". xid orders commits for consumers:
-- a seq is taken before commit, so seq order alone is not commit order.
CREATE TABLE segql.changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    segment     text NOT NULL,
    user_id     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('enter', 'exit')),
    at          timestamptz NOT NULL,
    cause       text NOT NULL,
    version     integer NOT NULL,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX changes_segment_user ON segql.changes (segment, user_id, seq);
CREATE INDEX changes_xid ON segql.changes (xid);

-- The exact next moment a user's membership of a segment can change with no new event.
CREATE TABLE segql.timers (
    segment text NOT NULL,
    user_id text NOT NULL,
    due_at  timestamptz NOT NULL,
    PRIMARY KEY (segment, user_id)
);
CREATE INDEX timers_due ON segql.timers (due_at);

-- Lenient casts for JSON values: a trait or prop of the wrong type reads as NULL (so comparisons
-- with it are false) instead of raising inside a trigger and rolling back the writer's COPY.
CREATE FUNCTION segql.num(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'number' THEN (v #>> '{}')::numeric
        WHEN 'string' THEN CASE
            WHEN (v #>> '{}') ~ '^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]{1,3})?\s*$'
            THEN (v #>> '{}')::numeric END
    END
$$;

CREATE FUNCTION segql.bool(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v)
        WHEN 'boolean' THEN (v #>> '{}')::boolean
        WHEN 'number' THEN CASE (v #>> '{}') WHEN '1' THEN true WHEN '0' THEN false END
        WHEN 'string' THEN CASE lower(v #>> '{}')
            WHEN 'true' THEN true WHEN 't' THEN true WHEN 'yes' THEN true WHEN '1' THEN true
            WHEN 'false' THEN false WHEN 'f' THEN false WHEN 'no' THEN false WHEN '0' THEN false
        END
    END
$$;

CREATE FUNCTION segql.txt(v jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE jsonb_typeof(v) WHEN 'null' THEN NULL ELSE v #>> '{}' END
$$;

-- Timestamps without a zone are read as UTC whatever the session's TimeZone, so membership does
-- not depend on which session wrote the profile. Only years 1 to 9999 are read: words such as
-- 'now' or 'tomorrow' would follow the real clock, and infinities or far years would make
-- interval arithmetic raise inside the writer's trigger.
CREATE FUNCTION segql.ts(v jsonb) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET "TimeZone" TO 'UTC' AS $$
DECLARE
    t timestamptz;
BEGIN
    IF jsonb_typeof(v) = 'number' THEN
        t := to_timestamp((v #>> '{}')::double precision);
    ELSIF jsonb_typeof(v) = 'string' AND (v #>> '{}') ~ '^\s*[0-9]{4}-' THEN
        t := (v #>> '{}')::timestamptz;
    END IF;
    IF t IS NULL OR NOT isfinite(t) OR t < '0001-01-01' OR t >= '10000-01-01' THEN
        RETURN NULL;
    END IF;
    RETURN t;
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;

-- A difference of timestamps as whole seconds: interval days would follow daylight saving when
-- added back to a timestamp in a session with a local TimeZone.
CREATE FUNCTION segql.span(a timestamptz, b timestamptz) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT make_interval(secs => extract(epoch FROM a - b))
$$;

-- Interval arithmetic on values from JSON: out of range reads as NULL instead of raising in the
-- writer's trigger. About 3,000 years is far beyond any segment's horizon.
CREATE FUNCTION segql.seconds(n numeric) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN abs(n) < 1e11 THEN make_interval(secs => n::double precision) END
$$;

CREATE FUNCTION segql.imul(i interval, n numeric) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT segql.seconds(extract(epoch FROM i) * n)
$$;

CREATE FUNCTION segql.idiv(i interval, n numeric) RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT segql.seconds(extract(epoch FROM i) / NULLIF(n, 0))
$$;

-- Replaced by every deploy; until the first one there is nothing to tick.
CREATE FUNCTION segql.tick(p_limit integer DEFAULT 100000) RETURNS integer
LANGUAGE sql AS $$ SELECT 0 $$;

-- When does "f(now) op 0" next change truth, given f's value now and the sign k of now() in f?
-- f is linear in now with slope k, so its zero is at now - k*f; a strict comparison flips one
-- microsecond (the clock's resolution) after that instant, a non-strict one at it.
CREATE FUNCTION segql.crossing(clock timestamptz, k integer, f interval) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t > clock THEN t
        WHEN t + interval '1 microsecond' > clock THEN t + interval '1 microsecond'
    END
    FROM (SELECT clock - k * make_interval(secs => extract(epoch FROM f)) AS t) s
$$;
"""

DOWNGRADE = r"""
-- Deployed programs live outside alembic's knowledge: remove them with the tables they feed.
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT tgname, tgrelid::regclass AS rel FROM pg_trigger
             WHERE tgrelid IN ('segql.events'::regclass, 'segql.profiles'::regclass)
               AND tgname LIKE 'segql\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'segments' AND c.relkind = 'v' LOOP
        EXECUTE format('DROP VIEW segments.%I', r.relname);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'segql' AND (p.proname ~ '^(s|p)_' OR p.proname = 'tick') LOOP
        EXECUTE format('DROP FUNCTION %s', r.fn);
    END LOOP;
END
$$;
DROP FUNCTION IF EXISTS segql.crossing(timestamptz, integer, interval);
DROP FUNCTION IF EXISTS segql.idiv(interval, numeric);
DROP FUNCTION IF EXISTS segql.imul(interval, numeric);
DROP FUNCTION IF EXISTS segql.seconds(numeric);
DROP FUNCTION IF EXISTS segql.span(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS segql.ts(jsonb);
DROP FUNCTION IF EXISTS segql.txt(jsonb);
DROP FUNCTION IF EXISTS segql.bool(jsonb);
DROP FUNCTION IF EXISTS segql.num(jsonb);
DROP TABLE IF EXISTS segql.timers, segql.changes, segql.members, segql.feature_state,
    segql.features, segql.deploys, segql.segment_versions, segql.segments, segql.users;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
