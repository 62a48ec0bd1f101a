"""RFM cutpoints: `segql refresh` recomputes them and every user's scores; `segql rfm` shows them.

The cutpoints are the only thing that moves a score besides the user's own events and the
clock's crossing of a recency cutpoint, and only a refresh moves them: ticks and clock moves
never do, so a replay of history at a pinned clock is reproducible. A refresh is one
transaction: timers already due are applied at their own instants first, then the cutpoints are
computed at the current clock and every user is evaluated again, each difference logged with
cause `refresh`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from segql import grants, run
from segql.sqlfiles import query

_FILE = "rfm.sql"
CAUSE = "refresh"
TICK_LIMIT = 100_000


@dataclass(frozen=True)
class Cutpoints:
    score: str
    function: str
    event: str | None
    prop: str | None
    within_seconds: Decimal | None
    cutpoints: list[str] | None  # four values; durations as Postgres writes intervals
    population: int
    computed_at: datetime | None  # the segql clock when they were computed
    refreshed_at: datetime | None  # the database's time of that refresh

    def as_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "function": self.function,
            "event": self.event,
            "prop": self.prop,
            "within_seconds": None if self.within_seconds is None else float(self.within_seconds),
            "cutpoints": self.cutpoints,
            "population": self.population,
            "computed_at": self.computed_at.isoformat() if self.computed_at else None,
            "refreshed_at": self.refreshed_at.isoformat() if self.refreshed_at else None,
        }


@dataclass(frozen=True)
class RefreshResult:
    scores: int
    users: int
    enters: int
    exits: int
    seconds: float


def cutpoints(conn: psycopg.Connection) -> list[Cutpoints]:
    """Every deployed score's cutpoints and when they were computed."""
    rows = conn.execute(query("list_cutpoints", _FILE)).fetchall()
    return [Cutpoints(r[0], r[1], r[2], r[3], r[4], r[5], int(r[6]), r[7], r[8]) for r in rows]


def refresh(conn: psycopg.Connection, if_older_than: float | None = None) -> RefreshResult:
    """Recompute every score's cutpoints now and re-evaluate every user, in one transaction.

    With `if_older_than` (seconds), only when the stalest score was refreshed longer ago than
    that once the locks are held: two workers on one schedule refresh once.
    """
    started = time.perf_counter()
    with conn.transaction():
        grants.act_as_owner(conn)
        computes = conn.execute(query("compute_queries", _FILE)).fetchall()
        if not computes:
            return RefreshResult(0, 0, 0, 0, time.perf_counter() - started)
        conn.execute(query("lock_for_refresh", _FILE))
        conn.execute(query("lock_timers_for_refresh", _FILE))
        age = refresh_age(conn)
        if if_older_than is not None and age is not None and age < if_older_than:
            return RefreshResult(0, 0, 0, 0, time.perf_counter() - started)
        # Changes already due belong to their own instants, under the old cutpoints.
        while _tick(conn):
            pass
        for _, compute in computes:
            conn.execute(compute.encode())
        everyone = [r[0] for r in conn.execute(query("all_users"))]
        users = run.refresh_users(conn, everyone, CAUSE, entry="refresh_scores")
        counts: dict[str, int] = dict(
            conn.execute(query("changes_in_transaction", _FILE)).fetchall()
        )
    return RefreshResult(
        len(computes),
        users,
        int(counts.get("enter", 0)),
        int(counts.get("exit", 0)),
        time.perf_counter() - started,
    )


def _tick(conn: psycopg.Connection) -> int:
    row = conn.execute(query("tick_all", _FILE), {"limit": TICK_LIMIT}).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def refresh_age(conn: psycopg.Connection) -> float | None:
    """Seconds since the stalest score was refreshed (database time), None with no scores."""
    row = conn.execute(query("refresh_age", _FILE)).fetchone()
    if row is None or row[0] is None:
        return None
    return float(row[0])
