"""segql.now() in PL/pgSQL, whose plan is made once per session.

As SQL its body (with a subquery on segql.clock) cannot be inlined, so every call from a
trigger or a column default went through the SQL-function executor and was planned again:
two plannings per INSERT, a measurable part of a single-row write. The value is the same.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE OR REPLACE FUNCTION segql.now() RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    RETURN coalesce(nullif(current_setting('segql.now', true), '')::timestamptz,
                    (SELECT pinned_at FROM segql.clock), now());
END
$fn$;
"""

DOWNGRADE = r"""
CREATE OR REPLACE FUNCTION segql.now() RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT coalesce(nullif(current_setting('segql.now', true), '')::timestamptz,
                  (SELECT pinned_at FROM segql.clock), now()) $$;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
