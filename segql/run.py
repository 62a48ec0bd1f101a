"""Running the compiled program: the one clock, the timer tick and re-evaluation of users.

Moving the clock forward is the tick's job: every timer that falls due is applied at its own
instant. Moving it to an earlier instant is different: changes already applied belong to a
future the clock has left, and no timer points back. So a backward move re-evaluates every user
at the new instant through the deployed program's own entry point (`p<deploy>_refresh`), in the
transaction that moves the clock. Each difference is logged with cause `clock`, and every
segment function rewrites the user's timer from the new instant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from segql import times
from segql.sqlfiles import query

REFRESH_CHUNK = 5000  # users per call: bounded arrays, and a plan that still joins by hash
CLOCK_CAUSE = "clock"


def clock(conn: psycopg.Connection) -> tuple[datetime, bool]:
    row = conn.execute(
        "SELECT segql.now(), (SELECT pinned_at IS NOT NULL FROM segql.clock)"
    ).fetchone()
    assert row is not None
    return row[0], bool(row[1])


def clock_set(conn: psycopg.Connection, ts: str | datetime) -> datetime:
    """Pin segql.now(). Forwards processes nothing by itself: call tick() so that no due change
    is skipped. Backwards re-evaluates every user at the new instant (cause 'clock')."""
    value = times.parse_moment(ts, clock(conn)[0]) if isinstance(ts, str) else ts
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    _move_clock(conn, value)
    return value


def clock_reset(conn: psycopg.Connection) -> None:
    """Follow the database clock again; from a pin in the future that is a backward move."""
    _move_clock(conn, None)


def _move_clock(conn: psycopg.Connection, pinned: datetime | None) -> None:
    with conn.transaction():
        before = _fetch_one(conn, query("lock_clock"))
        conn.execute("UPDATE segql.clock SET pinned_at = %s", [pinned])
        after = _fetch_one(conn, "SELECT segql.now()")
        if after < before:
            refresh_all(conn, CLOCK_CAUSE)
    conn.commit()


def _fetch_one(conn: psycopg.Connection, statement: str) -> datetime:
    row = conn.execute(statement).fetchone()
    assert row is not None
    value: datetime = row[0]
    return value


def current_program(conn: psycopg.Connection) -> int | None:
    """The id of the deploy whose program is live, or None when nothing is deployed."""
    row = conn.execute(query("current_program")).fetchone()
    return None if row is None else int(row[0])


def refresh_function(conn: psycopg.Connection, entry: str = "refresh") -> sql.Identifier | None:
    """The live program's `p<deploy>_<entry>(users, cause)` (`refresh`: every segment;
    `refresh_scores`: those that read RFM scores), or None with nothing deployed."""
    deploy_id = current_program(conn)
    return None if deploy_id is None else sql.Identifier("segql", f"p{deploy_id}_{entry}")


def refresh_all(conn: psycopg.Connection, cause: str) -> int:
    """Re-evaluate every user at the current clock; returns how many users were evaluated."""
    if refresh_function(conn) is None:
        return 0
    users = [r[0] for r in conn.execute(query("all_users"))]
    return refresh_users(conn, users, cause)


def refresh_users(
    conn: psycopg.Connection, users: Sequence[str], cause: str, entry: str = "refresh"
) -> int:
    """Re-evaluate these users in every segment (or those `entry` evaluates) at the current
    clock, set-based, logging each difference with `cause` and rewriting their timers. Runs in
    the caller's transaction."""
    fn = refresh_function(conn, entry)
    if fn is None or not users:
        return 0
    call = sql.SQL("SELECT {}(%s::text[], %s)").format(fn)
    for start in range(0, len(users), REFRESH_CHUNK):
        chunk = list(users[start : start + REFRESH_CHUNK])
        conn.execute(query("lock_users"), {"users": chunk})
        conn.execute(call, [chunk, cause])
    return len(users)


def tick(conn: psycopg.Connection, batch: int = 10000) -> int:
    """Process every due timer, `batch` per transaction; returns how many were processed."""
    total = 0
    while True:
        row = conn.execute("SELECT segql.tick(%s)", [batch]).fetchone()
        conn.commit()
        done = int(row[0]) if row and row[0] is not None else 0
        total += done
        if done == 0:
            return total
