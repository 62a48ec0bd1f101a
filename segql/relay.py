"""The relay: NOTIFY on behalf of writers, when the database runs in 'relay' notify mode.

In 'direct' mode (the default) each writer's transaction that changes membership sends NOTIFY,
so a listener wakes the moment it commits; but NOTIFY takes a cluster-wide lock at commit, which
serialises the commits of many concurrent writers. In 'relay' mode writers only append to the
change log; this loop finds the transactions that committed since its last look (the change
feed's snapshot rule, so a transaction that took its seqs early and committed late is not
missed) and sends one NOTIFY per segment and batch. Listeners then wake up to `interval` later.

`segql worker` runs this loop in a thread of its own (`RelayThread`), so a deployment that runs
the worker needs nothing more; `segql relay` runs it alone, where timers are ticked by pg_cron.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

import psycopg

from segql.errors import SegqlError, first_line
from segql.sqlfiles import query

MODES = ("direct", "relay")
log = logging.getLogger("segql.relay")
worker_log = logging.getLogger("segql.worker.relay")  # beside the worker's, in its log
MODE_EVERY = 1.0  # seconds between looks at the notify mode, so `segql notify` needs no restart
BACKOFF = (0.1, 5.0)


class Stop(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None) -> bool: ...


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

    def step(self, ring: bool = True) -> int:
        """One look at the change log; returns how many segments were announced.

        With `ring` False it only moves past what committed (in 'direct' mode the writers
        announced it), so that a switch to 'relay' mode starts from a recent base and a
        transaction that commits just after the switch is still announced.
        """
        if self.base is None:
            self.base = str(self.conn.execute("SELECT pg_current_snapshot()::text").fetchone()[0])  # type: ignore[index]
            return 0
        row = self.conn.execute(query("relay_committed", "feed.sql"), {"base": self.base})
        snapshot, segments = row.fetchone()  # type: ignore[misc]
        self.base = str(snapshot)
        if not ring:
            return 0
        if segments:
            self.conn.execute(query("relay_ring", "feed.sql"), {"segments": list(segments)})
        return len(segments)


def run_relay(url: str, interval: float, stop_after: float | None = None) -> None:
    """`segql relay`: the worker's relay loop on its own, until interrupted (or `stop_after`)."""
    stop = threading.Event()
    timer = None if stop_after is None else threading.Timer(stop_after, stop.set)
    if timer is not None:
        timer.start()
    try:
        RelayThread(url, stop, interval).run()
    finally:
        if timer is not None:
            timer.cancel()


class RelayThread:
    """The relay inside `segql worker`: rings every `interval` while the mode is 'relay'.

    In 'direct' mode it only keeps its base recent, once per `MODE_EVERY`. Several workers may
    each run one; a transaction is then announced more than once, which listeners absorb (a
    doorbell only means "read the log").
    """

    def __init__(self, url: str, stop: Stop, interval: float) -> None:
        self.url = url
        self.stop = stop
        self.interval = interval
        self.thread = threading.Thread(target=self.run, name="segql relay", daemon=True)

    def start(self) -> RelayThread:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join()

    def run(self) -> None:
        """Ring until stopped, reconnecting with a backoff when the database goes away."""
        failures = 0
        while not self.stop.is_set():
            try:
                with psycopg.connect(
                    self.url, autocommit=True, application_name="segql relay"
                ) as conn:
                    failures = 0
                    self._run(conn)
            except psycopg.Error as exc:
                failures += 1
                delay = min(BACKOFF[0] * 2 ** (failures - 1), BACKOFF[1])
                # One warning per outage, like the worker's own: its log is read by people.
                (worker_log.warning if failures == 1 else worker_log.debug)(
                    "relay: %s; retrying in %.1f s", first_line(exc), delay
                )
                self.stop.wait(delay)

    def _run(self, conn: psycopg.Connection) -> None:
        relay = Relay(conn)
        mode, looked = notify_mode(conn), time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - looked >= MODE_EVERY:
                mode, looked = notify_mode(conn), time.monotonic()
            if mode == "relay":
                announced = relay.step()
                if announced:
                    worker_log.debug("announced changes of %d segment(s)", announced)
                self.stop.wait(self.interval)
            else:
                relay.step(ring=False)
                self.stop.wait(MODE_EVERY)
