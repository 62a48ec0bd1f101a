"""Geo: the last known location in feature state, zones in the catalog, and exact geometry.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UPGRADE = r"""
-- A user's last known location is one feature_state row (see segql/features/location.py):
-- last_ts and loc_id order the located events (latest ts, then highest id), lat and lon are
-- the exact decimals the event carried.
ALTER TABLE segql.feature_state ADD COLUMN loc_id bigint;
ALTER TABLE segql.feature_state ADD COLUMN lat numeric;
ALTER TABLE segql.feature_state ADD COLUMN lon numeric;

-- Zones are definitions, deployed with segments: segments that read a zone compile its
-- geometry into their own SQL, so the stored text is what `segql list` and the next deploy
-- re-check.
CREATE TABLE segql.zones (
    name        text PRIMARY KEY,
    version     integer NOT NULL,
    definition  text NOT NULL,
    source      text,
    deployed_at timestamptz NOT NULL DEFAULT now()
);

-- A coordinate read from JSON (a number, or a numeric string, as segql.num reads props), or
-- NULL when it is missing or outside [-limit, limit]: a location needs both.
CREATE FUNCTION segql.geo_coord(v jsonb, limit_deg numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN abs(segql.num(v)) <= limit_deg THEN segql.num(v) END
$$;

-- Great-circle distance in km (haversine, mean Earth radius 6371.0088 km), in double
-- precision; NULL when a coordinate is. least(1, ...) keeps rounding from taking asin out of
-- its domain, and would turn a NULL into 1, hence the CASE.
CREATE FUNCTION segql.geo_km(lat1 numeric, lon1 numeric, lat2 numeric, lon2 numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN lat1 IS NOT NULL AND lon1 IS NOT NULL AND lat2 IS NOT NULL
                     AND lon2 IS NOT NULL
           THEN (2 * 6371.0088 * asin(least(1::float8, sqrt(
               power(sin(radians((lat2 - lat1)::float8) / 2), 2)
               + cos(radians(lat1::float8)) * cos(radians(lat2::float8))
                 * power(sin(radians((lon2 - lon1)::float8) / 2), 2)))))::numeric
           END
$$;

-- Is (lat, lon) inside the polygon of vertices (p_lons[i], p_lats[i]), edges and vertices
-- included? Exact: only products and differences of decimals, in numeric, so a point written
-- on an edge is on it, with no floating tolerance. A point is inside when it lies on an edge,
-- or when a ray from it towards +lon crosses the edges an odd number of times (an edge counts
-- when it straddles the point's latitude, half-open so a vertex is counted once). PL/pgSQL
-- because a loop over the vertices costs a few microseconds where a set-returning SQL body is
-- planned again on every call.
CREATE FUNCTION segql.geo_in_polygon(lat numeric, lon numeric, p_lats numeric[], p_lons numeric[])
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    n integer := cardinality(p_lats);
    x1 numeric;
    y1 numeric;
    x2 numeric;
    y2 numeric;
    side numeric;
    inside boolean := false;
BEGIN
    IF lat IS NULL OR lon IS NULL THEN
        RETURN NULL;
    END IF;
    x1 := p_lons[n];
    y1 := p_lats[n];
    FOR i IN 1..n LOOP
        x2 := p_lons[i];
        y2 := p_lats[i];
        -- Which side of the edge (x1, y1) -> (x2, y2) the point is on; 0: on its line.
        side := (x2 - x1) * (lat - y1) - (y2 - y1) * (lon - x1);
        IF side = 0 AND lon BETWEEN least(x1, x2) AND greatest(x1, x2)
           AND lat BETWEEN least(y1, y2) AND greatest(y1, y2) THEN
            RETURN true;
        END IF;
        -- The edge crosses the ray when it straddles lat and the point is left of it (seen
        -- going up the edge), i.e. side and (y2 - y1) have the same sign.
        IF (y1 > lat) <> (y2 > lat) AND sign(y2 - y1) * side > 0 THEN
            inside := NOT inside;
        END IF;
        x1 := x2;
        y1 := y2;
    END LOOP;
    RETURN inside;
END
$fn$;
"""

DOWNGRADE = r"""
DROP FUNCTION IF EXISTS segql.geo_in_polygon(numeric, numeric, numeric[], numeric[]);
DROP FUNCTION IF EXISTS segql.geo_km(numeric, numeric, numeric, numeric);
DROP FUNCTION IF EXISTS segql.geo_coord(jsonb, numeric);
DROP TABLE IF EXISTS segql.zones;
ALTER TABLE segql.feature_state DROP COLUMN IF EXISTS lon;
ALTER TABLE segql.feature_state DROP COLUMN IF EXISTS lat;
ALTER TABLE segql.feature_state DROP COLUMN IF EXISTS loc_id;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
