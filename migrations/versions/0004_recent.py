"""The newest timestamps of an event source, so windowed counts need no window re-read.

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

-- The k newest of some timestamps, newest first; repeated instants count as separate events.
CREATE FUNCTION segql.newest(ts timestamptz[], k integer) RETURNS timestamptz[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(t ORDER BY t DESC)
    FROM (SELECT t FROM unnest(ts) AS x(t) WHERE t IS NOT NULL ORDER BY t DESC LIMIT k) y
$$;

-- How many of the newest timestamps are in the window (after, upto].
CREATE FUNCTION segql.recent_count(recent timestamptz[], after timestamptz, upto timestamptz)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT count(*) FROM unnest(recent) AS x(t) WHERE t > after AND t <= upto
$$;

-- When the window (clock - width, clock] next loses one of them: the oldest inside it leaves.
CREATE FUNCTION segql.recent_due(recent timestamptz[], clock timestamptz, width interval)
RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT min(t) + width FROM unnest(recent) AS x(t) WHERE t > clock - width AND t <= clock
$$;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS segql.recent_due(timestamptz[], timestamptz, interval);
DROP FUNCTION IF EXISTS segql.recent_count(timestamptz[], timestamptz, timestamptz);
DROP FUNCTION IF EXISTS segql.newest(timestamptz[], integer);
ALTER TABLE segql.feature_state DROP COLUMN IF EXISTS recent;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
