"""The campaign side of `segql worker`: one planner thread and a few sender threads.

The planner LISTENs on `segql` (a membership change committed) and `segql_deliveries` (a delivery
was planned or replayed, by this worker or another) on a connection of its own, plans on a second
one, and wakes the senders. Each sender has its own connection and claims one due delivery at a
time, so a receiver that stalls holds one sender, not the others. Idle senders sleep until the
earliest due delivery, so AFTER and quiet hours are kept to the second, like timers.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import threading
from collections.abc import Iterator
from datetime import datetime

import httpx
import psycopg
from psycopg import sql

from segql import db
from segql.campaigns import deliver, plan
from segql.campaigns.plan import q
from segql.errors import first_line
from segql.feed import Stop

log = logging.getLogger("segql.worker")

CHANNELS = ("segql", "segql_deliveries")
POLL = 5.0  # seconds: plan and look for due deliveries at least this often without a doorbell
PINNED_POLL = 1.0
BACKOFF = (0.1, 5.0)


class CampaignRunner:
    def __init__(
        self, url: str, stop: Stop, senders: int = 4, settings: deliver.Settings | None = None
    ) -> None:
        self.url = url
        self.stop = stop
        self.settings = settings or deliver.Settings()
        self.wake = threading.Condition()
        self.generation = 0
        self.threads = [threading.Thread(target=self._plan_loop, name="segql planner", daemon=True)]
        self.threads += [
            threading.Thread(target=self._send_loop, name=f"segql sender {i}", daemon=True)
            for i in range(senders)
        ]

    def start(self) -> CampaignRunner:
        for thread in self.threads:
            thread.start()
        return self

    def join(self) -> None:
        self._ring()
        for thread in self.threads:
            thread.join()

    def _ring(self) -> None:
        with self.wake:
            self.generation += 1
            self.wake.notify_all()

    # -- planning ------------------------------------------------------------------------------

    def _plan_loop(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                with _listener(self.url) as listener, db.connect(self.url) as work:
                    failures = 0
                    self._plan_until_stopped(listener, work)
            except psycopg.Error as exc:
                failures += 1
                _backoff(self.stop, failures, "campaign planner", exc)
        self._ring()

    def _plan_until_stopped(self, listener: psycopg.Connection, work: psycopg.Connection) -> None:
        while not self.stop.is_set():
            for _ in listener.notifies(timeout=0):
                pass
            planned = plan.plan_all(work)
            if planned:
                log.info("planned %d campaign deliveries", planned)
            self._ring()
            _wait_readable([self.stop.fileno(), listener.fileno()], POLL)

    # -- sending -------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        failures = 0
        with deliver.client(self.settings) as http:
            while not self.stop.is_set():
                try:
                    with db.connect(self.url) as conn:
                        failures = 0
                        self._send_until_stopped(conn, http)
                except psycopg.Error as exc:
                    failures += 1
                    _backoff(self.stop, failures, "campaign sender", exc)

    def _send_until_stopped(self, conn: psycopg.Connection, http: httpx.Client) -> None:
        while not self.stop.is_set():
            with self.wake:
                seen = self.generation
            if deliver.send_one(conn, http, self.settings):
                continue
            wait = self._idle_wait(conn)
            with self.wake:
                if self.generation == seen and not self.stop.is_set():
                    self.wake.wait(wait)

    def _idle_wait(self, conn: psycopg.Connection) -> float:
        row = conn.execute(q("next_due")).fetchone()
        conn.commit()
        assert row is not None
        due, now, pinned = row
        return _seconds_until(due, now, bool(pinned))


def _seconds_until(due: datetime | None, now: datetime, pinned: bool) -> float:
    if due is None:
        return POLL
    if pinned:
        return PINNED_POLL
    return max(0.0, min((due - now).total_seconds(), POLL))


@contextlib.contextmanager
def _listener(url: str) -> Iterator[psycopg.Connection]:
    conn = psycopg.connect(
        db.with_keepalives(url), autocommit=True, application_name="segql campaign listener"
    )
    try:
        for channel in CHANNELS:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        yield conn
    finally:
        conn.close()


def _wait_readable(fds: list[int], timeout: float) -> None:
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        selector.select(timeout)


def _backoff(stop: Stop, failures: int, what: str, exc: psycopg.Error) -> None:
    delay = min(BACKOFF[1], BACKOFF[0] * 2.0 ** (failures - 1))
    # Every thread meets the same outage; the planner speaks for them all.
    level = logging.WARNING if failures == 1 and what == "campaign planner" else logging.DEBUG
    log.log(level, "%s: %s; retrying in %.1f s", what, first_line(exc), delay)
    stop.wait(delay)
