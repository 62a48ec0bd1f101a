"""Geo: the last known location, distance_km, zones and in_zone, at the edges the oracle may miss.

Points exactly on a polygon's edges and vertices, the profile fallback, events without (or with
half of) a location, updates and deletes of the latest located event, and a redeploy of a changed
zone.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files

import psycopg
import pytest

from segql import deploy, estimate, history, rebuild, run, synth, verify
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# A unit square with its lower-left corner at lon 2, lat 48, and a circle of 2 km round Paris.
ZONES = """
CREATE ZONE square AS POLYGON ((2 48, 3 48, 3 49, 2 49));
CREATE ZONE paris AS CIRCLE (48.8566, 2.3522, 2);
"""
SEGMENTS = """
CREATE SEGMENT in_square AS in_zone('square');
CREATE SEGMENT near_paris AS distance_km(48.8566, 2.3522) <= 2;
CREATE SEGMENT in_paris AS in_zone('paris');
CREATE SEGMENT visited_square AS did('*', within => '1 day') FILTER (WHERE in_zone('square'));
"""
NAMES = ["in_square", "near_paris", "in_paris", "visited_square"]


def _deploy(conn: psycopg.Connection, text: str = ZONES + SEGMENTS) -> deploy.DeployResult:
    return deploy.deploy(conn, parse_text(text, "geo.sql"), prune=True)


def _event(conn: psycopg.Connection, user: str, props: dict[str, object], at: datetime) -> None:
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, 'ping', %s, %s)",
        [user, at, json.dumps(props)],
    )
    conn.commit()


def _members(conn: psycopg.Connection) -> dict[str, set[str]]:
    out = {}
    for name in NAMES:
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    conn.rollback()
    return out


@pytest.fixture
def geo(conn: psycopg.Connection) -> psycopg.Connection:
    run.clock_set(conn, T0)
    _deploy(conn)
    return conn


@pytest.mark.parametrize(
    "lon, lat, inside",
    [
        (2, 48, True),  # a vertex
        (3, 49, True),
        (2.5, 48, True),  # on the bottom edge
        (3, 48.5, True),  # on the right edge
        (2, 48.000001, True),  # on the left edge
        (2.5, 48.5, True),
        (3.0000001, 48.5, False),
        (2.5, 47.9999999, False),
        (1.9999999, 49, False),
    ],
)
def test_polygon_edges_and_vertices_are_inside(
    geo: psycopg.Connection, lon: float, lat: float, inside: bool
) -> None:
    _event(geo, "u", {"lat": lat, "lon": lon}, T0)
    assert ("u" in _members(geo)["in_square"]) is inside


def test_latest_located_event_wins_and_profile_is_the_fallback(geo: psycopg.Connection) -> None:
    geo.execute(
        "INSERT INTO segql.profiles (user_id, traits) VALUES ('u', %s)",
        [json.dumps({"lat": 48.5, "lon": 2.5})],
    )
    geo.commit()
    assert "u" in _members(geo)["in_square"]
    # Half a location, or none, leaves the profile's in place.
    _event(geo, "u", {"lat": 10}, T0)
    _event(geo, "u", {"lat": 10, "lon": "east"}, T0)
    _event(geo, "u", {"lat": 91, "lon": 2}, T0)
    assert "u" in _members(geo)["in_square"]
    # An event near Paris replaces it; an older one does not.
    _event(geo, "u", {"lat": 48.86, "lon": 2.35}, T0)
    _event(geo, "u", {"lat": 0, "lon": 0}, T0 - timedelta(hours=1))
    m = _members(geo)
    assert "u" in m["near_paris"] and "u" in m["in_paris"] and "u" in m["in_square"]
    _event(geo, "u", {"lat": 0, "lon": 0}, T0 + timedelta(seconds=1))
    m = _members(geo)
    assert "u" not in m["near_paris"] and "u" not in m["in_square"]
    assert "u" in m["visited_square"]  # it was in the square within the day
    # Deleting the latest located event brings the one before it back.
    geo.execute("DELETE FROM segql.events WHERE user_id = 'u' AND ts > %s", [T0])
    geo.commit()
    assert "u" in _members(geo)["near_paris"]
    geo.execute("DELETE FROM segql.events WHERE user_id = 'u'")
    geo.commit()
    assert "u" in _members(geo)["in_square"]  # the profile again
    geo.execute("DELETE FROM segql.profiles WHERE user_id = 'u'")
    geo.commit()
    assert all("u" not in m for m in _members(geo).values())


def test_unknown_location_is_neither_in_nor_out(geo: psycopg.Connection) -> None:
    _deploy(
        geo,
        ZONES
        + "CREATE SEGMENT outside AS NOT in_zone('square');"
        + "CREATE SEGMENT unknown AS distance_km(0, 0) IS NULL;",
    )
    _event(geo, "u", {"amount": 3}, T0)
    assert {u for u, _ in deploy.members(geo, "outside")} == set()
    assert {u for u, _ in deploy.members(geo, "unknown")} == {"u"}
    _event(geo, "u", {"lat": 0, "lon": 0}, T0)
    assert {u for u, _ in deploy.members(geo, "outside")} == {"u"}
    assert {u for u, _ in deploy.members(geo, "unknown")} == set()


def test_changed_zone_re_evaluates_its_segments(geo: psycopg.Connection) -> None:
    _event(geo, "u", {"lat": 48.5, "lon": 3.5}, T0)
    assert "u" not in _members(geo)["in_square"]
    wider = ZONES.replace("(2 48, 3 48, 3 49, 2 49)", "(2 48, 4 48, 4 49, 2 49)")
    result = _deploy(geo, wider + SEGMENTS)
    assert result.zones.changed == ["square"]
    assert sorted(result.changed) == ["in_square", "visited_square"]
    assert "u" in _members(geo)["in_square"]
    rows = geo.execute(
        "SELECT segment, kind, cause FROM segql.changes WHERE cause = 'redeploy' ORDER BY 1"
    ).fetchall()
    assert rows == [("in_square", "enter", "redeploy"), ("visited_square", "enter", "redeploy")]
    geo.rollback()
    assert _deploy(geo, wider + SEGMENTS).nothing_to_do


def test_zone_drop_needs_its_readers_gone(geo: psycopg.Connection) -> None:
    with pytest.raises(deploy.DeployError, match="in_zone"):
        deploy.deploy(geo, [], drop=["square"])
    result = deploy.deploy(geo, [], drop=["square"], cascade=True)
    assert result.zones.dropped == ["square"]
    assert sorted(result.dropped) == ["in_square", "visited_square"]


def test_rebuild_verify_estimate_and_why(geo: psycopg.Connection) -> None:
    _event(geo, "u", {"lat": 48.8570, "lon": 2.3530}, T0)
    result = rebuild.rebuild(geo)
    assert (result.enters, result.exits) == (0, 0)
    geo.commit()
    assert verify.verify(geo).clean
    # A location state row gone wrong is put right by rebuild, and the repair is logged.
    geo.execute("UPDATE segql.feature_state SET lat = 0, lon = 0 WHERE loc_id IS NOT NULL")
    geo.commit()
    assert rebuild.rebuild(geo).exits == 0
    geo.execute("DELETE FROM segql.members WHERE segment = 'near_paris'")
    geo.commit()
    assert not verify.verify(geo).clean
    assert rebuild.rebuild(geo).enters == 1
    assert verify.verify(geo).clean
    text = "CREATE ZONE near AS CIRCLE (48.857, 2.353, 0.1); CREATE SEGMENT e AS in_zone('near');"
    (reach,) = estimate.estimate(geo, parse_text(text, "e.sql"))
    assert (reach.segment, reach.size) == ("e", 1)
    explained = history.why(geo, "near_paris", "u")
    assert explained.holds
    labels = [v.label for v in explained.conditions[0].values]
    assert labels[0] == "last known location (lat, lon)"
    assert str(explained.conditions[0].values[0].value).startswith("48.857, 2.353 (event ")
    assert explained.conditions[0].left is not None
    assert explained.conditions[0].left.label == "distance_km(48.8566, 2.3522)"


# -- examples/geo.sql ----------------------------------------------------------------------------

SOHO = {"lat": 40.7233, "lon": -74.0030}
MIDTOWN = {"lat": 40.7527, "lon": -73.9772}  # in the delivery zone, 3.9 km from SoHo
BROOKLYN = {"lat": 40.6782, "lon": -73.9442}  # outside both


def _examples(conn: psycopg.Connection) -> None:
    path = files("segql.examples").joinpath("geo.sql")
    deploy.deploy(conn, deploy.load_files([str(path)]))
    conn.commit()


def _expect(conn: psycopg.Connection, segment: str, expected: set[str]) -> None:
    assert {u for u, _ in deploy.members(conn, segment)} == expected, segment
    assert deploy.full_members(conn, segment) == expected, segment
    conn.rollback()


def test_geo_examples_store_proximity_and_delivery_zone(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    _examples(conn)
    for name in ("near_a_store", "in_delivery_zone", "visited_soho_store", "deliverable_carts"):
        assert deploy.list_segments(conn), name
    conn.execute(
        "INSERT INTO segql.profiles (user_id, traits) VALUES ('paris', %s), ('nowhere', '{}')",
        [json.dumps({"lat": 48.8600, "lon": 2.3500})],
    )
    conn.commit()
    _event(conn, "soho", {"channel": "app", **SOHO}, T0 - timedelta(days=3))
    _event(conn, "midtown", {"channel": "app", **MIDTOWN}, T0 - timedelta(hours=2))
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES "
        "('midtown', 'add_to_cart', %s, '{}'), ('brooklyn', 'add_to_cart', %s, %s)",
        [T0 - timedelta(hours=1), T0 - timedelta(hours=1), json.dumps(BROOKLYN)],
    )
    conn.commit()
    _expect(conn, "near_a_store", {"soho", "paris"})
    _expect(conn, "in_delivery_zone", {"soho", "midtown"})
    _expect(conn, "visited_soho_store", set())  # the SoHo visit was a ping, not an app_open
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES ('soho', 'app_open', %s, %s)",
        [T0 - timedelta(days=29), json.dumps(SOHO)],
    )
    conn.commit()
    _expect(conn, "visited_soho_store", {"soho"})
    _expect(conn, "deliverable_carts", {"midtown"})
    # The SoHo app_open leaves the 30-day window a day later, at its exact instant.
    run.clock_set(conn, T0 + timedelta(days=1))
    run.tick(conn)
    _expect(conn, "visited_soho_store", set())
    # Midtown walks to SoHo: closer to the store, still in the zone.
    _event(conn, "midtown", {"channel": "app", **SOHO}, T0 + timedelta(days=1))
    _expect(conn, "near_a_store", {"soho", "paris", "midtown"})


@pytest.mark.slow
def test_geo_examples_on_the_synthetic_shop(conn: psycopg.Connection) -> None:
    """The examples agree with the full query on the synthetic shop and are not vacuous there."""
    synth.copy_profiles(conn, synth.generate_profiles(400, seed=7, end=T0))
    rows = synth.event_rows(8000, 400, seed=7, start=T0 - timedelta(days=20), end=T0)
    synth.copy_event_rows(conn, rows)
    run.clock_set(conn, T0)
    _examples(conn)
    sizes = {}
    for name in ("near_a_store", "in_delivery_zone", "visited_soho_store", "deliverable_carts"):
        members = {u for u, _ in deploy.members(conn, name)}
        assert members == deploy.full_members(conn, name), name
        sizes[name] = len(members)
    assert sizes["near_a_store"] > 0 and sizes["in_delivery_zone"] > 0, sizes


def test_half_a_location_in_a_filter_is_no_location(geo: psycopg.Connection) -> None:
    _deploy(
        geo,
        ZONES
        + "CREATE SEGMENT outside_pings AS "
        + "event_count('ping') FILTER (WHERE NOT in_zone('square')) >= 1;"
        + "CREATE SEGMENT far_pings AS "
        + "event_count('ping') FILTER (WHERE NOT distance_km(48, 2) < 1) >= 1;",
    )
    _event(geo, "half", {"lat": 10}, T0)
    _event(geo, "bad", {"lat": 10, "lon": 500}, T0)
    _event(geo, "far", {"lat": 10, "lon": 10}, T0)
    for name in ("outside_pings", "far_pings"):
        assert {u for u, _ in deploy.members(geo, name)} == {"far"}, name
        assert deploy.full_members(geo, name) == {"far"}, name


def test_polygon_test_matches_an_exact_reference(conn: psycopg.Connection) -> None:
    """segql.geo_in_polygon against even-odd and on-edge tests in exact fractions, on a concave
    ring with a vertex on a grid line, over every point of a grid through its vertices."""
    from fractions import Fraction as F

    ring = [(F(0), F(0)), (F(4), F(0)), (F(4), F(4)), (F(2), F(1)), (F(0), F(4))]  # (lon, lat)

    def reference(x: F, y: F) -> bool:
        inside = False
        for (x1, y1), (x2, y2) in zip(ring[-1:] + ring[:-1], ring, strict=True):
            cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
            if cross == 0 and min(x1, x2) <= x <= max(x1, x2) and min(y1, y2) <= y <= max(y1, y2):
                return True
            if (y1 > y) != (y2 > y) and x < x1 + (x2 - x1) * (y - y1) / (y2 - y1):
                inside = not inside
        return inside

    grid = [Decimal(i) / 2 for i in range(-1, 10)]
    points = [(x, y) for x in grid for y in grid]
    points += [(Decimal(3), Decimal("2.5")), (Decimal(1), Decimal("2.5"))]
    points += [(Decimal(2), Decimal("1.000000001")), (Decimal("2.000000001"), Decimal(1))]
    rows = conn.execute(
        "SELECT segql.geo_in_polygon(p.lat, p.lon, %s::numeric[], %s::numeric[]) "
        "FROM unnest(%s::numeric[], %s::numeric[]) WITH ORDINALITY AS p(lat, lon, i) ORDER BY i",
        [
            [Decimal(y.numerator) for _, y in ring],
            [Decimal(x.numerator) for x, _ in ring],
            [y for _, y in points],
            [x for x, _ in points],
        ],
    ).fetchall()
    assert [r[0] for r in rows] == [reference(F(x), F(y)) for x, y in points]
