"""Windowed counts read from the newest timestamps kept as state, at their edges.

The oracle covers these at random; these cases pin the edges that the state makes risky: more
events than the largest constant, several at one instant, events stamped in the future, and a
delete of the k-th newest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, run
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

SEGMENTS = """
CREATE SEGMENT exactly_two AS event_count('view', within => '1 hour') = 2;
CREATE SEGMENT under_three AS event_count('view', within => '1 hour') < 3;
CREATE SEGMENT two_to_three AS event_count('view', within => '1 hour') BETWEEN 2 AND 3;
CREATE SEGMENT viewed AS did('view', within => '1 hour');
"""


def _members(conn: psycopg.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in ("exactly_two", "under_three", "two_to_three", "viewed"):
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    return out


def _views(conn: psycopg.Connection, user: str, *ats: datetime) -> None:
    conn.cursor().executemany(
        "INSERT INTO segql.events (user_id, name, ts) VALUES (%s, 'view', %s)",
        [(user, at) for at in ats],
    )
    conn.commit()


def test_counts_beyond_the_largest_constant_and_bursts(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(SEGMENTS, "recent.sql"))
    conn.commit()
    burst = T0 - timedelta(minutes=10)
    _views(conn, "a", burst, burst, burst, burst, burst)  # five at one instant
    _views(conn, "b", T0 - timedelta(minutes=50), T0 - timedelta(minutes=5))
    members = _members(conn)
    assert "a" not in members["exactly_two"] and "a" not in members["under_three"]
    assert "b" in members["exactly_two"] and "b" in members["two_to_three"]
    run.clock_set(conn, T0 + timedelta(minutes=15))  # b's first view leaves the window
    run.tick(conn)
    members = _members(conn)
    assert "b" not in members["exactly_two"] and "b" in members["under_three"]


def test_future_events_and_deletes(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(SEGMENTS, "recent.sql"))
    conn.commit()
    _views(conn, "c", T0 - timedelta(minutes=30), T0 + timedelta(minutes=20))
    members = _members(conn)
    assert "c" in members["viewed"] and "c" not in members["exactly_two"]
    run.clock_set(conn, T0 + timedelta(minutes=25))  # the future view enters
    run.tick(conn)
    assert "c" in _members(conn)["exactly_two"]
    _views(conn, "d", *(T0 - timedelta(minutes=m) for m in (1, 2, 3, 4)))
    conn.execute(
        "DELETE FROM segql.events WHERE user_id = 'd' AND ts IN (%s, %s)",
        [T0 - timedelta(minutes=1), T0 - timedelta(minutes=2)],
    )
    conn.commit()
    assert "d" in _members(conn)["exactly_two"]
