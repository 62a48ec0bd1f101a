"""Least privilege, and rows the write path refuses.

Revision ID: 0005
Revises: 0004

`segql grant ingest|read|admin ROLE` hands out what each kind of role needs. The write path's
functions run with their owner's rights (SECURITY DEFINER, search_path pinned), so a role that
may only write events needs no rights on segql's internal tables.

Rows inserted with plain SQL meet the same rules as `segql ingest`: a user and an event name,
a timestamp the clock arithmetic can use, props and traits that are JSON objects. The checks are
NOT VALID: they hold for every new row without scanning the rows already there; the constraint
names are the messages a writer sees.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER FUNCTION segql.track(text, text, jsonb, timestamptz)
    SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp;
ALTER FUNCTION segql.identify(text, jsonb)
    SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA segql FROM PUBLIC;

ALTER TABLE segql.events
    ADD CONSTRAINT "events.user_id must not be empty" CHECK (user_id <> '') NOT VALID,
    ADD CONSTRAINT "events.name must not be empty" CHECK (name <> '') NOT VALID,
    ADD CONSTRAINT "events.ts must be finite, in years 1 to 9999"
        CHECK (ts >= '0001-01-01 00:00:00+00' AND ts < '10000-01-01 00:00:00+00') NOT VALID,
    ADD CONSTRAINT "events.props must be a JSON object"
        CHECK (jsonb_typeof(props) = 'object') NOT VALID;
ALTER TABLE segql.profiles
    ADD CONSTRAINT "profiles.user_id must not be empty" CHECK (user_id <> '') NOT VALID,
    ADD CONSTRAINT "profiles.traits must be a JSON object"
        CHECK (jsonb_typeof(traits) = 'object') NOT VALID;
"""

DOWNGRADE = """
ALTER TABLE segql.profiles
    DROP CONSTRAINT IF EXISTS "profiles.user_id must not be empty",
    DROP CONSTRAINT IF EXISTS "profiles.traits must be a JSON object";
ALTER TABLE segql.events
    DROP CONSTRAINT IF EXISTS "events.user_id must not be empty",
    DROP CONSTRAINT IF EXISTS "events.name must not be empty",
    DROP CONSTRAINT IF EXISTS "events.ts must be finite, in years 1 to 9999",
    DROP CONSTRAINT IF EXISTS "events.props must be a JSON object";
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA segql TO PUBLIC;
ALTER FUNCTION segql.track(text, text, jsonb, timestamptz) SECURITY INVOKER RESET search_path;
ALTER FUNCTION segql.identify(text, jsonb) SECURITY INVOKER RESET search_path;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
