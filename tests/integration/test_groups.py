"""Segments that read the same events share a function, a timer and a membership row per user.

`segql.user_groups` mirrors `segql.members` for the group's segments; these tests move it the
ways the oracle's random streams do not: a member dropped and created again under its name, a
database whose mirror is missing (as after an upgrade), and members lost outside segql.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, rebuild, run
from segql.parse import parse_text

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
BOTH = """
CREATE SEGMENT carted AS did('cart', within => '1 hour');
CREATE SEGMENT carted_twice AS event_count('cart', within => '1 hour') >= 2;
"""


def _exact(conn: psycopg.Connection, *names: str) -> dict[str, set[str]]:
    out = {}
    for name in names:
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    return out


def _cart(conn: psycopg.Connection, user: str, at: datetime) -> None:
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES (%s, 'cart', %s)", [user, at])
    conn.commit()


def test_a_member_dropped_and_created_again(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(BOTH, "g.sql"))
    _cart(conn, "a", T0)
    _cart(conn, "a", T0)
    assert _exact(conn, "carted", "carted_twice") == {"carted": {"a"}, "carted_twice": {"a"}}
    deploy.deploy(conn, [], drop=["carted_twice"])
    again = "CREATE SEGMENT carted_twice AS event_count('cart', within => '1 hour') >= 3;"
    deploy.deploy(conn, parse_text(again, "g.sql"))
    assert _exact(conn, "carted", "carted_twice")["carted_twice"] == set()
    _cart(conn, "a", T0)
    assert _exact(conn, "carted", "carted_twice")["carted_twice"] == {"a"}
    kinds = conn.execute(
        "SELECT kind, cause FROM segql.changes WHERE segment = 'carted_twice' ORDER BY seq"
    ).fetchall()
    assert kinds == [("enter", "event"), ("exit", "drop"), ("enter", "event")]


def test_a_missing_mirror_is_rebuilt_at_deploy(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(BOTH, "g.sql"))
    _cart(conn, "b", T0)
    conn.execute("DELETE FROM segql.user_groups")
    conn.execute("UPDATE segql.segments SET timer_key = NULL")  # as written by an older release
    conn.commit()
    # The first deploy that installs this release's program re-derives the mirror.
    other = "CREATE SEGMENT viewer AS did('view');"
    deploy.deploy(conn, parse_text(BOTH + other, "g.sql"))
    run.clock_set(conn, T0 + timedelta(hours=2))
    run.tick(conn)
    assert _exact(conn, "carted", "carted_twice")["carted"] == set()
    exits = conn.execute("SELECT count(*) FROM segql.changes WHERE kind = 'exit'").fetchone()
    assert exits == (1,)


def test_rebuild_restores_members_lost_outside_segql(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(BOTH, "g.sql"))
    _cart(conn, "c", T0)
    conn.execute("DELETE FROM segql.members")
    conn.commit()
    result = rebuild.rebuild(conn)
    assert (result.enters, result.exits) == (1, 0)
    run.clock_set(conn, T0 + timedelta(hours=2))
    run.tick(conn)
    assert _exact(conn, "carted")["carted"] == set()
