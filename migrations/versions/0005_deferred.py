"""Users whose evaluation a history load deferred.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- A history load (`segql ingest --history`) keeps feature state current batch by batch but
-- evaluates segments once, after its last batch, for the users recorded here. Rows left here by
-- an interrupted load are evaluated by the next `segql ingest`.
CREATE TABLE segql.deferred (
    user_id    text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

DOWNGRADE = """
DROP TABLE IF EXISTS segql.deferred;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
