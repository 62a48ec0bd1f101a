"""Named consumers of the change feed, and a record of change-log pruning.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- Where a named consumer of the change feed stands. The feed delivers changes in batches: a batch
-- is every change whose transaction is visible in one snapshot (`batch`) and not in the previous
-- one (`base`), in the order described in segql/feed.py. The cursor is the position of the last
-- acknowledged change, so a restarted consumer re-reads the same batch and carries on after it.
CREATE TABLE segql.consumers (
    name       text PRIMARY KEY,
    -- The segments the consumer reads (NULL: all). Its position only means something for them.
    segments   text[],
    -- Every change whose transaction is visible in this snapshot is acknowledged.
    base       pg_snapshot NOT NULL,
    -- With an empty base: changes up to this seq count as acknowledged (a start after a seq).
    floor_seq  bigint,
    -- The batch being read, and the position in it of the last acknowledged change: the last
    -- seq of that change's transaction, then its own seq. NULL when no batch is in progress.
    batch      pg_snapshot,
    batch_tx   bigint,
    batch_seq  bigint,
    -- The last acknowledged change, for people reading this table.
    last_seq   bigint,
    acked_at   timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((batch IS NULL) = (batch_tx IS NULL) AND (batch_tx IS NULL) = (batch_seq IS NULL))
);

-- Each run of `segql prune-log`. Replaying the log for moments before the latest cutoff is not
-- exact any more, so `members --at` and `history` read the horizon from here.
CREATE TABLE segql.log_prunes (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pruned_at timestamptz NOT NULL DEFAULT now(),
    cutoff    timestamptz NOT NULL,
    deleted   bigint NOT NULL,
    forced    boolean NOT NULL
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS segql.log_prunes;
DROP TABLE IF EXISTS segql.consumers;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
