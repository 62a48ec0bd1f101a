"""segql.tier_move() in PL/pgSQL, whose plan is made once per session.

As SQL its body (a join with a subquery) cannot be inlined, so the SQL-function executor
planned it again in every query that called it: the change feed's page query calls it per
change, and for a page of one change that planning was most of what a listener spent between
the doorbell and the line it prints. The value is the same.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION segql.tier_move(p_segment text, p_user text, p_xid xid8,
                                           p_at timestamptz, p_kind text) RETURNS text[]
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN (
        SELECT ARRAY[s.tiers, o.name]
        FROM segql.segments s
        JOIN segql.segments o ON o.tiers = s.tiers AND o.name <> s.name
        WHERE s.name = p_segment AND s.tiers IS NOT NULL
          AND EXISTS (SELECT 1 FROM segql.changes c
                      WHERE c.segment = o.name AND c.user_id = p_user AND c.xid = p_xid
                        AND c.at = p_at AND c.kind <> p_kind)
        LIMIT 1);
END
$fn$;
"""

DOWNGRADE = r"""
CREATE OR REPLACE FUNCTION segql.tier_move(p_segment text, p_user text, p_xid xid8,
                                           p_at timestamptz, p_kind text) RETURNS text[]
LANGUAGE sql STABLE AS $fn$
    SELECT ARRAY[s.tiers, o.name]
    FROM segql.segments s
    JOIN segql.segments o ON o.tiers = s.tiers AND o.name <> s.name
    WHERE s.name = p_segment AND s.tiers IS NOT NULL
      AND EXISTS (SELECT 1 FROM segql.changes c
                  WHERE c.segment = o.name AND c.user_id = p_user AND c.xid = p_xid
                    AND c.at = p_at AND c.kind <> p_kind)
    LIMIT 1
$fn$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
