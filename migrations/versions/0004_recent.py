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
