"""Users whose evaluation a history load deferred.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
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

-- Evaluate up to p_limit recorded users through the live program's refresh entry point (cause
-- 'history'), in user order as the writers lock them; returns how many were taken. It runs with
-- its owner's rights, like the triggers that record the users, so a role that may only ingest
-- can finish its own history load.
CREATE FUNCTION segql.evaluate_deferred(p_limit integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp AS $fn$
DECLARE
    v_users text[];
    v_deploy bigint;
BEGIN
    WITH taken AS (
        DELETE FROM segql.deferred
        WHERE user_id IN (SELECT d.user_id FROM segql.deferred d ORDER BY d.user_id
                          LIMIT p_limit FOR UPDATE SKIP LOCKED)
        RETURNING user_id
    )
    SELECT array_agg(taken.user_id ORDER BY taken.user_id) INTO v_users FROM taken;
    IF v_users IS NULL THEN
        RETURN 0;
    END IF;
    SELECT d.id INTO v_deploy FROM segql.deploys d
    WHERE to_regprocedure(format('segql.%I(text[], text)', 'p' || d.id || '_refresh')) IS NOT NULL
    ORDER BY d.id DESC LIMIT 1;
    IF v_deploy IS NOT NULL THEN
        PERFORM 1 FROM segql.users WHERE user_id = ANY(v_users) ORDER BY user_id FOR UPDATE;
        EXECUTE format('SELECT segql.%I($1, $2)', 'p' || v_deploy || '_refresh')
            USING v_users, 'history';
    END IF;
    RETURN cardinality(v_users);
END
$fn$;
"""

DOWNGRADE = """
DROP FUNCTION IF EXISTS segql.evaluate_deferred(integer);
DROP TABLE IF EXISTS segql.deferred;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
