"""sequence(): the edges the oracle draws at random, pinned.

Equal timestamps never chain, an arrival out of order completes a chain, deleting a step undoes
it, a step stamped in the future enters at its ts, and `since` lets a chain go at its first
step's ts + L, each time logged at the exact instant.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
from typer.testing import CliRunner

from segql import deploy, estimate, history, rebuild, run, verify
from segql.cli import app
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

SEGMENTS = """
CREATE SEGMENT view_then_cart
AS sequence('view', 'cart' FILTER (WHERE price > 50), within => '10 minutes');
CREATE SEGMENT funnel_today AS sequence('view', 'cart', 'buy', since => '1 day');
CREATE SEGMENT fast_funnel
AS sequence('view', 'cart', 'buy', within => '1 hour', since => '2 hours');
"""
NAMES = ("view_then_cart", "funnel_today", "fast_funnel")


def _members(conn: psycopg.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in NAMES:
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    conn.rollback()
    return out


def _track(conn: psycopg.Connection, *rows: tuple[str, str, datetime, dict[str, object]]) -> None:
    conn.cursor().executemany(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, %s, %s, %s)",
        [(u, n, at, json.dumps(p)) for u, n, at, p in rows],
    )
    conn.commit()


def _setup(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(SEGMENTS, "seq.sql"))
    conn.commit()


def test_order_filter_and_span(conn: psycopg.Connection) -> None:
    _setup(conn)
    _track(
        conn,
        ("a", "view", T0 - 5 * MIN, {}),
        ("a", "cart", T0 - 2 * MIN, {"price": 80}),
        ("b", "cart", T0 - 5 * MIN, {"price": 80}),  # wrong order
        ("b", "view", T0 - 2 * MIN, {}),
        ("c", "view", T0 - 5 * MIN, {}),
        ("c", "cart", T0 - 2 * MIN, {"price": 10}),  # filtered out
        ("d", "view", T0 - 30 * MIN, {}),
        ("d", "cart", T0 - 2 * MIN, {"price": 80}),  # spans 28 minutes
        ("e", "view", T0 - 3 * MIN, {}),
        ("e", "cart", T0 - 3 * MIN, {"price": 80}),  # same instant: not "then"
    )
    assert _members(conn)["view_then_cart"] == {"a"}
    # b's view arrives late, stamped before the cart: the chain is there now.
    _track(conn, ("b", "view", T0 - 9 * MIN, {}))
    assert _members(conn)["view_then_cart"] == {"a", "b"}
    conn.execute("DELETE FROM segql.events WHERE user_id = 'a' AND name = 'view'")
    conn.commit()
    assert _members(conn)["view_then_cart"] == {"b"}


def test_future_step_enters_at_its_ts(conn: psycopg.Connection) -> None:
    _setup(conn)
    at = T0 + 5 * MIN
    _track(conn, ("f", "view", T0 - MIN, {}), ("f", "cart", at, {"price": 99}))
    assert "f" not in _members(conn)["view_then_cart"]
    run.clock_set(conn, T0 + 30 * MIN)
    run.tick(conn)
    assert "f" in _members(conn)["view_then_cart"]
    row = conn.execute(
        "SELECT at, cause FROM segql.changes WHERE segment = 'view_then_cart' AND user_id = 'f'"
    ).fetchone()
    assert row == (at, "time")


def test_since_lets_the_chain_go_at_the_first_steps_ts_plus_lookback(
    conn: psycopg.Connection,
) -> None:
    _setup(conn)
    first = T0 - 3 * timedelta(hours=1)
    _track(
        conn,
        ("g", "view", first, {}),
        ("g", "cart", first + MIN, {}),
        ("g", "buy", first + 2 * MIN, {}),
        ("h", "view", T0 - 90 * MIN, {}),
        ("h", "cart", T0 - 80 * MIN, {}),
        ("h", "buy", T0 - 70 * MIN, {}),
    )
    members = _members(conn)
    assert members["funnel_today"] == {"g", "h"}
    assert members["fast_funnel"] == {"h"}  # g's chain began more than 2 hours ago
    run.clock_set(conn, T0 + timedelta(days=1))
    run.tick(conn)
    members = _members(conn)
    assert members["funnel_today"] == set() and members["fast_funnel"] == set()
    exits = dict(
        conn.execute(
            "SELECT user_id || ':' || segment, at FROM segql.changes WHERE kind = 'exit'"
        ).fetchall()
    )
    assert exits["g:funnel_today"] == first + timedelta(days=1)
    assert exits["h:fast_funnel"] == T0 - 90 * MIN + timedelta(hours=2)
    assert exits["h:funnel_today"] == T0 - 90 * MIN + timedelta(days=1)


def test_why_shows_the_sequence_and_its_next_instant(conn: psycopg.Connection) -> None:
    _setup(conn)
    _track(conn, ("f", "view", T0 - MIN, {}), ("f", "cart", T0 + 5 * MIN, {"price": 99}))
    e = history.why(conn, "view_then_cart", "f")
    assert (e.member, e.holds) == (False, False)
    (chain,) = e.conditions
    assert chain.text == (
        "sequence('view', 'cart' FILTER (WHERE price > 50), within => '10 minutes')"
    )
    assert [(v.label, v.value) for v in chain.values] == [(chain.text, False)]
    assert e.next_timer == T0 + 5 * MIN


def test_why_command_prints_sequences_and_sessions(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        _setup(conn)
        deploy.deploy(
            conn,
            parse_text(
                "CREATE SEGMENT regulars AS session_count(within => '7 days') >= 2 "
                "AND sequence('view', 'cart', since => '1 day');",
                "more.sql",
            ),
        )
        conn.commit()
        _track(conn, ("w", "view", T0 - 90 * MIN, {}), ("w", "cart", T0 - 10 * MIN, {}))
    shown = CliRunner(env={"SEGQL_DATABASE_URL": database_url}).invoke(
        app, ["why", "regulars", "w"]
    )
    assert shown.exit_code == 0, shown.output
    assert "[yes] session_count(within => '7 days') >= 2" in shown.stdout
    assert "[yes] sequence('view', 'cart', since => '1 day')" in shown.stdout


def test_estimate_verify_and_rebuild_read_sequences_and_sessions(conn: psycopg.Connection) -> None:
    _setup(conn)
    _track(
        conn,
        ("a", "view", T0 - 5 * MIN, {"session_id": "x"}),
        ("a", "cart", T0 - 2 * MIN, {"price": 80}),
        ("b", "cart", T0 - 2 * MIN, {"price": 80}),
    )
    text = SEGMENTS + "CREATE SEGMENT twice AS session_count(within => '1 hour') >= 2;"
    reach = {e.segment: e.size for e in estimate.estimate(conn, parse_text(text, "seq.sql"))}
    assert reach["view_then_cart"] == 1 and reach["twice"] == 1
    assert verify.verify(conn).clean
    result = rebuild.rebuild(conn)
    assert (result.enters, result.exits) == (0, 0)
