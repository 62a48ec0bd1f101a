"""Moving the clock to an earlier instant leaves membership exact at the new instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, parse, run

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ABANDONED = """
CREATE SEGMENT abandoned_cart
AS  did('add_to_cart', within => '24 hours')
AND NOT did('add_to_cart', within => '1 hour');
CREATE SEGMENT carted_recently AS did('add_to_cart', within => '1 hour');
"""


def setup(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse.parse_text(ABANDONED, "shop.sql"))
    conn.execute("SELECT segql.track('frank', 'add_to_cart')")
    conn.commit()


def members(conn: psycopg.Connection, name: str) -> set[str]:
    found = {u for u, _ in deploy.members(conn, name)}
    assert found == deploy.full_members(conn, name)
    return found


def test_set_to_an_earlier_instant_undoes_what_the_future_did(conn: psycopg.Connection) -> None:
    setup(conn)
    run.clock_set(conn, T0 + timedelta(hours=2))
    run.tick(conn)
    assert members(conn, "abandoned_cart") == {"frank"}
    assert members(conn, "carted_recently") == set()

    run.clock_set(conn, T0 + timedelta(minutes=10))
    assert members(conn, "abandoned_cart") == set()
    assert members(conn, "carted_recently") == {"frank"}
    rows = conn.execute(
        "SELECT segment, kind, at, cause FROM segql.changes WHERE cause = 'clock' ORDER BY seq"
    ).fetchall()
    at = T0 + timedelta(minutes=10)
    assert rows == [
        ("abandoned_cart", "exit", at, "clock"),
        ("carted_recently", "enter", at, "clock"),
    ]
    # The timers were rebuilt from the new instant: frank leaves the 1-hour window again at
    # T0 + 1h and enters abandoned_cart then, as the first time round.
    due = conn.execute("SELECT min(due_at) FROM segql.timers WHERE user_id = 'frank'").fetchone()
    assert due == (T0 + timedelta(hours=1),)
    conn.rollback()
    run.clock_set(conn, T0 + timedelta(hours=1, minutes=1))
    run.tick(conn)
    assert members(conn, "abandoned_cart") == {"frank"}


def test_reset_from_a_pin_in_the_future(conn: psycopg.Connection) -> None:
    """The issue's path: pin two hours ahead of the real clock, then `clock reset`."""
    conn.execute("UPDATE segql.clock SET pinned_at = NULL")
    conn.commit()
    deploy.deploy(conn, parse.parse_text(ABANDONED, "shop.sql"))
    conn.execute("SELECT segql.track('frank', 'add_to_cart')")
    conn.commit()
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    run.clock_set(conn, now + timedelta(hours=2))
    run.tick(conn)
    assert members(conn, "abandoned_cart") == {"frank"}
    conn.rollback()

    run.clock_reset(conn)
    assert members(conn, "abandoned_cart") == set()
    assert members(conn, "carted_recently") == {"frank"}


def test_nothing_deployed_moves_freely(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0 + timedelta(days=1))
    run.clock_set(conn, T0)
    assert run.clock(conn) == (T0, True)
