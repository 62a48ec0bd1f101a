"""RFM cutpoints, and tier groups in the catalog.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- One row per RFM score that a deployed segment reads: the four cutpoints, percentile_disc(0.2,
-- 0.4, 0.6, 0.8) of the population's values at `computed_at` (the segql clock then), and how
-- many users the population held. Recency cutpoints are durations (`durations`), frequency and
-- monetary ones numbers (`cuts`). `refreshed_at` is the database's own time of the refresh, which
-- the worker's schedule follows; `compute_sql` is the query that computes the row's cutpoints.
CREATE TABLE segql.rfm_cutpoints (
    score          text PRIMARY KEY,
    function       text NOT NULL,
    event          text,
    prop           text,
    within_seconds numeric,
    filter         text,
    cuts           numeric[],
    durations      interval[],
    population     bigint NOT NULL DEFAULT 0,
    computed_at    timestamptz,
    refreshed_at   timestamptz,
    compute_sql    text NOT NULL
);

-- A segment defined by CREATE TIERS: the group's name and the tier's place in it (1 = first).
ALTER TABLE segql.segments ADD COLUMN tiers text, ADD COLUMN tier_rank integer;

-- The other half of a move between two tiers of one group: for a change of a tier, the tier the
-- same user entered (for an exit) or left (for an enter) in the same transaction at the same
-- instant, with the group's name; NULL for any other change. Probes the change log by
-- (segment, user), once per sibling tier.
CREATE FUNCTION segql.tier_move(p_segment text, p_user text, p_xid xid8, p_at timestamptz,
                                p_kind text) RETURNS text[]
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

-- Roles already granted `read` (`segql grant read`) read the change log through tier_move and
-- why's scores through rfm_cutpoints: give them both, as the grant now does.
DO $grant$
DECLARE r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS role
             FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = 'segql.changes'::regclass AND a.privilege_type = 'SELECT'
               AND a.grantee <> 0 AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT SELECT ON segql.rfm_cutpoints TO %s', r.role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION '
                       'segql.tier_move(text, text, xid8, timestamptz, text) TO %s', r.role);
    END LOOP;
END
$grant$;
"""

DOWNGRADE = """
DROP FUNCTION IF EXISTS segql.tier_move(text, text, xid8, timestamptz, text);
ALTER TABLE segql.segments DROP COLUMN IF EXISTS tiers, DROP COLUMN IF EXISTS tier_rank;
DROP TABLE IF EXISTS segql.rfm_cutpoints;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
