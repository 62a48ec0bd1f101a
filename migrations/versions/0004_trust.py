"""Least privilege: segql's functions run for its owner only, unless granted.

Revision ID: 0004
Revises: 0003

`segql grant ingest|read|admin ROLE` hands out what each kind of role needs. The write path's
functions run with their owner's rights (SECURITY DEFINER, search_path pinned), so a role that
may only write events needs no rights on segql's internal tables.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER FUNCTION segql.track(text, text, jsonb, timestamptz)
    SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp;
ALTER FUNCTION segql.identify(text, jsonb)
    SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA segql FROM PUBLIC;
"""

DOWNGRADE = """
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA segql TO PUBLIC;
ALTER FUNCTION segql.track(text, text, jsonb, timestamptz) SECURITY INVOKER RESET search_path;
ALTER FUNCTION segql.identify(text, jsonb) SECURITY INVOKER RESET search_path;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
