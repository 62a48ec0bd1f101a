"""The relay: NOTIFY on behalf of writers, when the database runs in 'relay' notify mode.

In 'direct' mode (the default) each writer's transaction that changes membership sends NOTIFY,
so a listener wakes the moment it commits; but NOTIFY takes a cluster-wide lock at commit, which
serialises the commits of many concurrent writers. In 'relay' mode writers only append to the
change log; this loop finds the transactions that committed since its last look (the change
feed's snapshot rule, so a transaction that took its seqs early and committed late is not
missed) and sends one NOTIFY per segment and batch. Listeners then wake up to `interval` later.
"""

from __future__ import annotations

import logging
import time

import psycopg

from segql.errors import SegqlError
from segql.sqlfiles import query

MODES = ("direct", "relay")
log = logging.getLogger("segql.relay")


class NotifyModeError(SegqlError):
    """The notify mode is 'direct' or 'relay'."""


def notify_mode(conn: psycopg.Connection) -> str:
    row = conn.execute(query("notify_mode", "feed.sql")).fetchone()
    return "direct" if row is None else str(row[0])


def set_notify_mode(conn: psycopg.Connection, mode: str) -> None:
    if mode not in MODES:
        raise NotifyModeError(f"unknown notify mode '{mode}': use 'direct' or 'relay'")
    conn.execute(query("set_notify_mode", "feed.sql"), {"mode": mode})
    conn.commit()


class Relay:
    """Rings the doorbell for transactions committed since the previous `step`."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn  # autocommit: every step reads a fresh snapshot
        self.base: str | None = None

    def step(self) -> int:
        """One look at the change log; returns how many segments were announced."""
        if self.base is None:
            self.base = str(self.conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])  # type: ignore[index]
            return 0
        row = self.conn.execute(query("relay_committed", "feed.sql"), {"base": self.base})
        snapshot, segments = row.fetchone()  # type: ignore[misc]
        self.base = str(snapshot)
        if segments:
            self.conn.execute(query("relay_ring", "feed.sql"), {"segments": list(segments)})
        return len(segments)


def run_relay(url: str, interval: float, stop_after: float | None = None) -> None:
    """Announce committed changes every `interval` seconds until interrupted."""
    deadline = None if stop_after is None else time.monotonic() + stop_after
    with psycopg.connect(url, autocommit=True) as conn:
        relay = Relay(conn)
        while deadline is None or time.monotonic() < deadline:
            announced = relay.step()
            if announced:
                log.debug("announced changes of %d segment(s)", announced)
            time.sleep(interval)
