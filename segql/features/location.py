"""The user's last known location, read by distance_km() and in_zone().

It is the `lat`/`lon` of the user's latest event that carries both (latest `ts`; among events at
the same instant, the highest id), else the profile's `lat`/`lon` traits, else unknown. A value
counts when it is a number (or a numeric string, as props are read everywhere) with the latitude
in [-90, 90] and the longitude in [-180, 180]; an event with only one of them, or one out of
range, carries no location. Like the other unwindowed features, an event stamped after the clock
counts as soon as it is written: a location does not move with the clock, so it keeps no timer.

State: one feature_state row per located user, (last_ts, loc_id) ordering the events and
lat/lon the exact decimals. An arriving batch replaces the row only when its latest located
event comes after the stored one, in O(1) per user; an updated or deleted event rebuilds the
user's row from the remaining events, as every state feature does. The profile fallback is read
from the profile at evaluation, so profile writes need no state at all.
"""

from __future__ import annotations

from decimal import Decimal

from segql import ir

EVENT_LAT = "segql.geo_coord(e.props -> 'lat', 90)"
EVENT_LON = "segql.geo_coord(e.props -> 'lon', 180)"


def located(props: str = "e.props") -> str:
    """Does the event whose props are `props` carry a location? The key tests come first: most
    events carry none, and a key probe costs less than reading two values."""
    return (
        f"({props} ? 'lat' AND {props} ? 'lon' "
        f"AND segql.geo_coord({props} -> 'lat', 90) IS NOT NULL "
        f"AND segql.geo_coord({props} -> 'lon', 180) IS NOT NULL)"
    )


LOCATED = located()
HAS_KEYS = "(e.props ? 'lat' AND e.props ? 'lon')"

# The location inside a FILTER: the event's own.
EVENT_LOCATION = (EVENT_LAT, EVENT_LON)


def latest(fid: int | None, source: str, where: str = "") -> str:
    """Each user's latest located event of `source` as feature_state columns."""
    feature = f"{fid}, " if fid is not None else ""
    cond = f"{LOCATED} AND {where}" if where else LOCATED
    return (
        f"SELECT DISTINCT ON (e.user_id) {feature}e.user_id, e.ts AS last_ts, e.id AS loc_id, "
        f"{EVENT_LAT} AS lat, {EVENT_LON} AS lon FROM {source} e WHERE {cond} "
        "ORDER BY e.user_id, e.ts DESC, e.id DESC"
    )


def insert_sql(fid: int, source: str, where: str = "") -> str:
    """State rows from scratch (deploy backfill, rebuild, updated or deleted events)."""
    return (
        "INSERT INTO segql.feature_state (feature_id, user_id, last_ts, loc_id, lat, lon) "
        f"{latest(fid, source, where)};"
    )


def upsert_sql(fid: int, source: str) -> str:
    """An arriving batch: its latest located event per user replaces an older stored one."""
    return (
        "INSERT INTO segql.feature_state AS fs (feature_id, user_id, last_ts, loc_id, lat, lon) "
        f"{latest(fid, source)} "
        "ON CONFLICT (feature_id, user_id) DO UPDATE SET last_ts = excluded.last_ts, "
        "loc_id = excluded.loc_id, lat = excluded.lat, lon = excluded.lon "
        "WHERE fs.loc_id IS NULL OR (excluded.last_ts, excluded.loc_id) > (fs.last_ts, fs.loc_id);"
    )


def grouped(alias: str) -> str:
    """Every user's latest located event in one pass (the full query)."""
    return f"LEFT JOIN ({latest(None, 'segql.events')}) {alias} ON {alias}.user_id = u.user_id"


def lateral(alias: str) -> str:
    """The one outer user's latest located event (`segql why`)."""
    return (
        f"LEFT JOIN LATERAL (SELECT e.ts AS last_ts, e.id AS loc_id, {EVENT_LAT} AS lat, "
        f"{EVENT_LON} AS lon FROM segql.events e WHERE e.user_id = u.user_id AND {LOCATED} "
        f"ORDER BY e.ts DESC, e.id DESC LIMIT 1) {alias} ON true"
    )


def value(alias: str, traits: str = "p.traits") -> tuple[str, str]:
    """(lat, lon) of the user whose state row is `alias` and profile traits `traits`."""
    plat = f"segql.geo_coord({traits} -> 'lat', 90)"
    plon = f"segql.geo_coord({traits} -> 'lon', 180)"
    event = f"{alias}.loc_id IS NOT NULL"
    return (
        f"(CASE WHEN {event} THEN {alias}.lat WHEN {plon} IS NOT NULL THEN {plat} END)",
        f"(CASE WHEN {event} THEN {alias}.lon WHEN {plat} IS NOT NULL THEN {plon} END)",
    )


def resolved(alias: str, state: str, traits: str = "p.traits") -> str:
    """The location of the outer user as two plain columns `alias`.lat, `alias`.lon, from its
    state row `state` and its profile, computed once: distance_km and in_zone then read plain
    columns, which lets Postgres inline segql.geo_km instead of calling it."""
    lat, lon = value(state, traits)
    return f"LEFT JOIN LATERAL (SELECT {lat} AS lat, {lon} AS lon OFFSET 0) {alias} ON true"


def columns(alias: str) -> tuple[str, str]:
    return (f"{alias}.lat", f"{alias}.lon")


def source(alias: str) -> str:
    """Where the location comes from, for `segql why`."""
    return (
        f"(CASE WHEN {alias}.loc_id IS NOT NULL THEN 'event ' || {alias}.loc_id "
        f"|| ' at ' || {alias}.last_ts END)"
    )


def distance(location: tuple[str, str], lat: str, lon: str) -> str:
    return f"segql.geo_km({location[0]}, {location[1]}, {lat}, {lon})"


def in_zone(location: tuple[str, str], zone: ir.Zone) -> str:
    """Polygons: exact decimal arithmetic, edges and vertices inside. Circles: the haversine
    distance, in double precision, at most the radius."""
    if zone.kind == "circle":
        assert zone.radius_km is not None
        km = distance(location, _num(zone.lats[0]), _num(zone.lons[0]))
        return f"({km} <= {_num(zone.radius_km)})"
    lats = ", ".join(_num(v) for v in zone.lats)
    lons = ", ".join(_num(v) for v in zone.lons)
    lat, lon = location
    # The bounding box first: a point outside it is outside the polygon (edges are inside both),
    # and most points are far from any one zone. Half a location is no location: NULL.
    box = (
        f"{lat} BETWEEN {_num(min(zone.lats))} AND {_num(max(zone.lats))} "
        f"AND {lon} BETWEEN {_num(min(zone.lons))} AND {_num(max(zone.lons))}"
    )
    return (
        f"(CASE WHEN {lat} IS NULL OR {lon} IS NULL THEN NULL::boolean "
        f"ELSE {box} AND segql.geo_in_polygon({lat}, {lon}, "
        f"ARRAY[{lats}]::numeric[], ARRAY[{lons}]::numeric[]) END)"
    )


def _num(value: Decimal) -> str:
    text = format(value, "f")
    return f"({text})" if text.startswith("-") else text


def describe_zone(zone: ir.Zone) -> str:
    """A zone as CREATE ZONE writes it."""
    if zone.kind == "circle":
        return f"CIRCLE ({zone.lats[0]}, {zone.lons[0]}, {zone.radius_km})"
    points = ", ".join(f"{lon} {lat}" for lon, lat in zip(zone.lons, zone.lats, strict=True))
    return f"POLYGON (({points}))"
