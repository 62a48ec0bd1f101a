"""The newest timestamps of an event source, so windowed counts need no window re-read; and
one timer per user for each group of segments that read the same events.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- The k newest event timestamps of a feature's source, newest first (k is the feature's own).
-- A windowed count compared with constants below k, and did(... within), read it in O(1): the
-- count of those inside the window is exact up to k, and the next change is when the oldest of
-- them inside the window leaves it.
ALTER TABLE segql.feature_state ADD COLUMN recent timestamptz[];

-- Segments that read the same events share one timer per user, keyed by their group (see
-- segql/plan.py, Group); NULL where a segment has timers of its own.
ALTER TABLE segql.segments ADD COLUMN timer_key text;

-- Which segments of a group each user is in: one probe per user tells a group's function every
-- member's previous membership, where probing segql.members costs one per (user, segment).
-- segql.members stays the truth that views and readers use; the two change together, in the
-- group's function, and a deploy or a rebuild re-derives this from segql.members.
CREATE TABLE segql.user_groups (
    user_id  text NOT NULL,
    grp      text NOT NULL,
    segments text[] NOT NULL,
    PRIMARY KEY (user_id, grp)
);

-- How committed changes are announced. 'direct': the writer's transaction sends NOTIFY (the
-- listener wakes as soon as it commits, but every writer that changes membership takes the
-- cluster-wide NOTIFY lock at commit). 'relay': writers only append to the change log and
-- `segql relay` sends one NOTIFY per batch of committed transactions it finds.
CREATE TABLE segql.settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO segql.settings (key, value) VALUES ('notify', 'direct');

-- The doorbell every generated function rings when it logged changes: the payload only points
-- at the transaction's rows in segql.changes, and identical notifications fold into one.
CREATE FUNCTION segql.ring(p_segments text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_payload text;
BEGIN
    IF (SELECT s.value FROM segql.settings s WHERE s.key = 'notify') = 'relay' THEN
        RETURN;
    END IF;
    v_payload := json_build_object('xid', pg_current_xact_id()::text)::text;
    PERFORM pg_notify('segql', v_payload);
    PERFORM pg_notify('segql.' || x.s, v_payload)
    FROM (SELECT DISTINCT y.s FROM unnest(p_segments) AS y(s)) x;
END
$$;

-- The same crossing as in 0002, in PL/pgSQL: a SQL function whose body has a FROM clause is
-- never inlined, and its call costs more than the work; this one runs as a simple expression.
CREATE OR REPLACE FUNCTION segql.crossing(clock timestamptz, k integer, f interval)
RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t timestamptz := clock - k * make_interval(secs => extract(epoch FROM f));
BEGIN
    -- A strict comparison flips one microsecond (the clock's resolution) after its zero.
    IF t >= clock THEN
        RETURN greatest(t, clock + interval '1 microsecond');
    END IF;
    RETURN NULL;
END
$$;

"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS segql.ring(text[]);
DROP TABLE IF EXISTS segql.settings;
DROP TABLE IF EXISTS segql.user_groups;
CREATE OR REPLACE FUNCTION segql.crossing(clock timestamptz, k integer, f interval)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN t > clock THEN t
        WHEN t + interval '1 microsecond' > clock THEN t + interval '1 microsecond'
    END
    FROM (SELECT clock - k * make_interval(secs => extract(epoch FROM f)) AS t) s
$$;
ALTER TABLE segql.feature_state DROP COLUMN IF EXISTS recent;
ALTER TABLE segql.segments DROP COLUMN IF EXISTS timer_key;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
