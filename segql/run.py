"""Running the compiled program: the one clock and the timer tick."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from segql import history


def clock(conn: psycopg.Connection) -> tuple[datetime, bool]:
    row = conn.execute(
        "SELECT segql.now(), (SELECT pinned_at IS NOT NULL FROM segql.clock)"
    ).fetchone()
    assert row is not None
    return row[0], bool(row[1])


def clock_set(conn: psycopg.Connection, ts: str | datetime) -> datetime:
    """Pin segql.now(). Moving it backwards is allowed (replays), forwards processes nothing
    by itself: call tick() so that no due change is skipped."""
    value = history.parse_ts(ts) if isinstance(ts, str) else ts
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [value])
    conn.commit()
    return value


def clock_reset(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = NULL")
    conn.commit()


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
