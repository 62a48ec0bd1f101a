"""distinct_count, active_weeks and after => windows, at the edges the oracle meets only by luck.

A cart bounded by the latest purchase: an add at the purchase's own instant, a purchase stamped
in the future that empties the cart at its exact second, and deleting or moving the bound.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, history, rebuild, run, verify
from segql.commands.feed import explanation_lines
from segql.parse import parse_text

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)  # a Wednesday

SEGMENTS = """
CREATE SEGMENT big_cart AS event_sum('add_to_cart', 'price', after => 'purchase') > 100;
CREATE SEGMENT recent_cart
AS event_count('add_to_cart', within => '1 hour', after => 'purchase')
   FILTER (WHERE price > 5) >= 2;
CREATE SEGMENT broad AS distinct_count('purchase', 'category') >= 3;
CREATE SEGMENT broad_month AS distinct_count('purchase', 'category', within => '30 days') >= 2;
CREATE SEGMENT weekly AS active_weeks(within => '28 days') >= 3;
"""
NAMES = ("big_cart", "recent_cart", "broad", "broad_month", "weekly")


def _members(conn: psycopg.Connection) -> dict[str, set[str]]:
    out = {}
    for name in NAMES:
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    conn.rollback()
    return out


def _event(conn: psycopg.Connection, user: str, name: str, at: datetime, **props: object) -> None:
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, %s, %s, %s)",
        [user, name, at, json.dumps(props)],
    )
    conn.commit()


def _setup(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(SEGMENTS, "breadth.sql"))
    conn.commit()


def test_the_cart_empties_at_the_purchase_and_returns_when_it_is_deleted(
    conn: psycopg.Connection,
) -> None:
    _setup(conn)
    _event(conn, "a", "add_to_cart", T0 - timedelta(minutes=30), price=80)
    _event(conn, "a", "add_to_cart", T0 - timedelta(minutes=20), price=30)
    assert "a" in _members(conn)["big_cart"]
    assert "a" in _members(conn)["recent_cart"]
    paid = T0 - timedelta(minutes=10)
    _event(conn, "a", "purchase", paid, category="shoes")
    assert "a" not in _members(conn)["big_cart"]
    # An add at the purchase's own instant is before the bound: it was in what was bought.
    _event(conn, "a", "add_to_cart", paid, price=500)
    assert "a" not in _members(conn)["big_cart"]
    conn.execute("DELETE FROM segql.events WHERE user_id = 'a' AND name = 'purchase'")
    conn.commit()
    assert "a" in _members(conn)["big_cart"]


def test_a_purchase_stamped_in_the_future_empties_the_cart_at_its_second(
    conn: psycopg.Connection,
) -> None:
    _setup(conn)
    _event(conn, "b", "add_to_cart", T0 - timedelta(minutes=5), price=150)
    due = T0 + timedelta(minutes=7)
    _event(conn, "b", "purchase", due, category="toys")
    assert "b" in _members(conn)["big_cart"]
    row = conn.execute(
        "SELECT min(due_at) FROM segql.timers WHERE user_id = 'b' AND due_at > %s", [T0]
    ).fetchone()
    assert row is not None and row[0] == due
    conn.rollback()
    run.clock_set(conn, due + timedelta(seconds=30))
    run.tick(conn)
    assert "b" not in _members(conn)["big_cart"]
    at = conn.execute(
        "SELECT at FROM segql.changes WHERE segment = 'big_cart' AND user_id = 'b' "
        "AND kind = 'exit'"
    ).fetchone()
    assert at is not None and at[0] == due
    # Moving the purchase back after its ts passed: the bound is re-read, not remembered.
    conn.execute("UPDATE segql.events SET ts = %s WHERE user_id = 'b' AND name = 'purchase'", [T0])
    conn.commit()
    conn.execute(
        "UPDATE segql.events SET ts = %s WHERE user_id = 'b' AND name = 'purchase'",
        [due + timedelta(hours=1)],
    )
    conn.commit()
    assert "b" in _members(conn)["big_cart"]


def test_distinct_values_repeat_null_and_leave_the_window(conn: psycopg.Connection) -> None:
    _setup(conn)
    for days, category in ((40, "shoes"), (20, "shoes"), (10, None), (5, "toys")):
        props = {} if category is None else {"category": category}
        _event(conn, "c", "purchase", T0 - timedelta(days=days), **props)
    _event(conn, "c", "purchase", T0 - timedelta(days=3), category=None)  # JSON null
    members = _members(conn)
    assert "c" not in members["broad"] and "c" in members["broad_month"]
    _event(conn, "c", "purchase", T0 - timedelta(days=50), category="books")
    assert "c" in _members(conn)["broad"]
    # The month's shoes leave at 20 days + 30 days - now: exactly then, one value is left.
    leaves = T0 + timedelta(days=10)
    run.clock_set(conn, leaves + timedelta(hours=1))
    run.tick(conn)
    assert "c" not in _members(conn)["broad_month"]
    at = conn.execute(
        "SELECT at FROM segql.changes WHERE segment = 'broad_month' AND kind = 'exit'"
    ).fetchone()
    assert at is not None and at[0] == leaves


def test_active_weeks_count_iso_weeks_and_why_shows_them(conn: psycopg.Connection) -> None:
    _setup(conn)
    # Sunday and the next Monday are two ISO weeks; that Monday and Wednesday are one: 3.
    sunday = datetime(2026, 3, 1, 23, 0, tzinfo=UTC)
    for at in (sunday - timedelta(days=7), sunday, sunday + timedelta(hours=2), T0):
        _event(conn, "d", "app_open", at)
    assert "d" in _members(conn)["weekly"]
    explained = history.why(conn, "weekly", "d")
    lines = "\n".join(explanation_lines(explained))
    assert "active_weeks('*', within => '28 days') >= 3" in lines
    assert "= 3" in lines, lines
    explained = history.why(conn, "big_cart", "d")
    assert "after => 'purchase'" in "\n".join(explanation_lines(explained))


def test_verify_and_rebuild_find_nothing_to_fix(conn: psycopg.Connection) -> None:
    _setup(conn)
    _event(conn, "e", "add_to_cart", T0 - timedelta(minutes=5), price=150)
    _event(conn, "e", "purchase", T0 + timedelta(minutes=5), category="toys")
    _event(conn, "e", "purchase", T0 - timedelta(days=2), category="books")
    _event(conn, "e", "purchase", T0 - timedelta(days=9), category="home")
    assert verify.verify(conn).clean
    result = rebuild.rebuild(conn)
    assert (result.enters, result.exits) == (0, 0)
    assert verify.verify(conn).clean
    _members(conn)
