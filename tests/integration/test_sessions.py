"""session_count and avg_session_minutes: session ids and gaps, and the instants sessions leave.

A session is a session_id where events carry one, otherwise a run of the user's events without
one whose gaps are under 30 minutes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg

from segql import deploy, history, run
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY = timedelta(days=1)

SEGMENTS = """
CREATE SEGMENT three_sessions AS session_count(within => '1 day') >= 3;
CREATE SEGMENT two_buying_sessions AS session_count('buy', within => '1 day') >= 2;
CREATE SEGMENT long_sessions AS avg_session_minutes(within => '1 day') >= 20;
"""
NAMES = ("three_sessions", "two_buying_sessions", "long_sessions")


def _members(conn: psycopg.Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name in NAMES:
        out[name] = {u for u, _ in deploy.members(conn, name)}
        assert out[name] == deploy.full_members(conn, name), name
    conn.rollback()
    return out


def _track(
    conn: psycopg.Connection, user: str, *rows: tuple[str, datetime, dict[str, object]]
) -> None:
    conn.cursor().executemany(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, %s, %s, %s)",
        [(user, n, at, json.dumps(p)) for n, at, p in rows],
    )
    conn.commit()


def _setup(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(SEGMENTS, "sessions.sql"))
    conn.commit()


def test_gaps_split_sessions_at_30_minutes(conn: psycopg.Connection) -> None:
    _setup(conn)
    start = T0 - 5 * 60 * MIN
    # 29 minutes apart: one session; then exactly 30 minutes: a new one; then 45: a third.
    _track(
        conn,
        "a",
        ("view", start, {}),
        ("view", start + 29 * MIN, {}),
        ("buy", start + 59 * MIN, {}),
        ("view", start + 104 * MIN, {}),
    )
    assert "a" in _members(conn)["three_sessions"]
    # A late event 15 minutes after the second session's start bridges it with the third.
    _track(conn, "a", ("view", start + 80 * MIN, {}))
    members = _members(conn)
    assert "a" not in members["three_sessions"]
    # The sessions are 29 and 45 minutes long: the average is 37.
    e = history.why(conn, "long_sessions", "a")
    assert e.member and e.conditions[0].values[0].value == Decimal(37)


def test_session_ids_win_over_gaps(conn: psycopg.Connection) -> None:
    _setup(conn)
    # Two hours apart but one session id: one session; events without an id are split by gaps.
    _track(
        conn,
        "b",
        ("buy", T0 - 3 * 60 * MIN, {"session_id": "s1"}),
        ("view", T0 - 60 * MIN, {"session_id": "s1"}),
        ("buy", T0 - 100 * MIN, {}),
    )
    members = _members(conn)
    assert "b" in members["two_buying_sessions"] and "b" not in members["three_sessions"]
    conn.execute("DELETE FROM segql.events WHERE user_id = 'b' AND props = '{}'")
    conn.commit()
    assert "b" not in _members(conn)["two_buying_sessions"]


def test_sessions_leave_the_window_at_their_last_events_ts_plus_w(
    conn: psycopg.Connection,
) -> None:
    _setup(conn)
    first = T0 - 20 * 60 * MIN
    _track(
        conn,
        "c",
        ("buy", first, {}),
        ("view", first + 10 * MIN, {}),  # not a buy: the buying session leaves with its buy
        ("buy", T0 - 60 * MIN, {}),
        ("buy", T0 + 30 * MIN, {}),  # stamped in the future: a third session at its ts
    )
    assert "c" in _members(conn)["two_buying_sessions"]
    assert "c" not in _members(conn)["three_sessions"]
    run.clock_set(conn, T0 + 30 * MIN)
    run.tick(conn)
    assert "c" in _members(conn)["three_sessions"]
    run.clock_set(conn, first + DAY + 10 * MIN)
    run.tick(conn)
    members = _members(conn)
    assert "c" not in members["three_sessions"]
    rows = dict(
        conn.execute(
            "SELECT segment || ':' || kind, at FROM segql.changes WHERE user_id = 'c'"
        ).fetchall()
    )
    assert rows["three_sessions:enter"] == T0 + 30 * MIN
    assert rows["three_sessions:exit"] == first + 10 * MIN + DAY
    assert "two_buying_sessions:exit" not in rows  # two buying sessions are still in the window
