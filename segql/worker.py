"""The timer worker: applies each due timer at its exact due time, then sleeps until the next one.

`segql.timers` holds the next moment each user's membership can change with no new event, and
`segql.tick()` applies every timer due at the current clock. The worker calls it until nothing is
due, reads the earliest remaining due time, and sleeps exactly that long. A trigger that sets a
timer earlier than every existing one sends `NOTIFY segql_timers`, which wakes the worker early,
so the wake-up time is always the due time and never a point on a polling grid.

Two connections: one runs the ticks and the reads (autocommit, so every statement is its own
transaction and `now()` is fresh), the other only LISTENs. The listener runs nothing else, so a
notification can never be swallowed by a query in flight on it.

The worker outlives database restarts (it reconnects with exponential backoff) and stops cleanly
on SIGTERM or SIGINT: the tick in progress commits, the connections close, and `run_worker`
returns.
"""

from __future__ import annotations

import contextlib
import logging
import re
import selectors
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import FrameType
from typing import Any

import psycopg
from psycopg import sql

from segql import db, rfm
from segql.campaigns.deliver import Settings as DeliverySettings
from segql.errors import SegqlError, first_line
from segql.relay import RelayThread

log = logging.getLogger("segql.worker")

CHANNEL = "segql_timers"
MAX_SLEEP = 60.0  # seconds; a wake-up at least this often doubles as a health check
RFM_REFRESH_EVERY = 86400.0  # seconds between refreshes of the RFM cutpoints (daily)
PINNED_POLL = 1.0  # seconds between looks at a pinned clock, which only moves when someone moves it
RELAY_INTERVAL = 0.05  # seconds between looks in 'relay' mode: the most a listener waits
CONTENDED_SLEEP = 0.05  # seconds to give a transaction holding due timers before trying again
BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0

# Runtime statements. They are few and only this module runs them, so they live beside it.
TICK = "SELECT segql.tick(%s)"
NEXT_DUE = """
SELECT (SELECT min(due_at) FROM segql.timers),
       segql.now(),
       (SELECT pinned_at IS NOT NULL FROM segql.clock)
"""

# Half-open TCP connections (a server that vanished without a FIN) surface within about a minute
# instead of leaving the listener waiting forever. libpq ignores these on Unix sockets.


class StopEvent:
    """A stop flag that wakes a sleeping worker at once.

    Safe to set from a signal handler or another thread: setting it sends one byte over a socket
    pair that the worker's sleep waits on beside the listener's socket (a socket rather than a
    pipe so that the same wait works wherever Python's selectors do).
    """

    def __init__(self) -> None:
        self._read, self._write = socket.socketpair()
        self._write.setblocking(False)
        self._set = False

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(OSError):
            self._write.send(b"x")

    def is_set(self) -> bool:
        return self._set

    def fileno(self) -> int:
        return self._read.fileno()

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to `timeout` seconds or until set; True when set."""
        if not self._set:
            _wait_readable([self.fileno()], timeout)
        return self._set

    def close(self) -> None:
        self._read.close()
        self._write.close()

    def __enter__(self) -> StopEvent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_readable(fds: list[int], timeout: float | None) -> None:
    """Block until one of `fds` is readable or `timeout` passes (any descriptor number)."""
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        selector.select(timeout)


@contextlib.contextmanager
def stop_on_signals(
    stop: StopEvent, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
) -> Iterator[None]:
    """Turn SIGTERM and SIGINT into `stop.set()` while the block runs (main thread only).

    The handler only sets the flag, so a tick in progress is not interrupted: its transaction
    commits and the worker exits after it.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handler) for s in signals}
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@dataclass
class _Backoff:
    first: float = BACKOFF_FIRST
    cap: float = BACKOFF_CAP
    failures: int = 0

    def next(self) -> float:
        delay = min(self.cap, self.first * 2.0**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0


def run_worker(
    url: str,
    *,
    stop_event: StopEvent | None = None,
    max_sleep: float = MAX_SLEEP,
    batch: int = 10_000,
    on_tick: Callable[[int], None] | None = None,
    pinned_poll: float = PINNED_POLL,
    campaigns: bool = True,
    senders: int = 4,
    delivery: DeliverySettings | None = None,
    refresh_every: float | None = RFM_REFRESH_EVERY,
    relay_interval: float | None = RELAY_INTERVAL,
) -> None:
    """Apply due timers at their due time until `stop_event` is set (forever without one), and
    plan and send campaign deliveries beside (`campaigns`, with `senders` sender threads).

    In 'relay' notify mode it also sends, every `relay_interval` seconds, the NOTIFYs writers
    skip (None: leave that to a separate `segql relay`).

    `batch` timers at most (about: one due instant is never split) are applied per transaction.
    `on_tick(n)` is called after each pass that ran `segql.tick()` until nothing was due, with the
    number of timers that pass applied (0 included). Each pass that applied timers is logged at
    INFO on the `segql.worker` logger; connection trouble at WARNING.

    Every `refresh_every` seconds of the database's own time (None: never) the RFM cutpoints
    are recomputed and every user re-evaluated (`segql refresh`), when any score is deployed.
    """
    stop = stop_event if stop_event is not None else StopEvent()
    worker = _Worker(url, stop, max_sleep, batch, on_tick, pinned_poll)
    worker.refresh_every = refresh_every
    runner = None
    if campaigns:
        from segql.campaigns.runner import CampaignRunner

        runner = CampaignRunner(url, stop, senders, delivery).start()
    relay = None if relay_interval is None else RelayThread(url, stop, relay_interval).start()
    try:
        worker.run()
    finally:
        worker.close()
        if runner is not None or relay is not None:
            stop.set()
        if runner is not None:
            runner.join()
        if relay is not None:
            relay.join()
        if stop_event is None:
            stop.close()


class _Worker:
    def __init__(
        self,
        url: str,
        stop: StopEvent,
        max_sleep: float,
        batch: int,
        on_tick: Callable[[int], None] | None,
        pinned_poll: float,
    ) -> None:
        self.url = url
        self.stop = stop
        self.max_sleep = max_sleep
        self.batch = batch
        self.on_tick = on_tick
        self.pinned_poll = pinned_poll
        self.work: psycopg.Connection | None = None
        self.listener: psycopg.Connection | None = None
        self.backoff = _Backoff()
        self.refresh_every: float | None = None

    def run(self) -> None:
        log.info("worker started on %s (batch %d)", db.mask_password(self.url), self.batch)
        while not self.stop.is_set():
            try:
                self._connect()
                self._cycle()
            except psycopg.Error as exc:
                self._failed(exc)
        log.info("worker stopped")

    def close(self) -> None:
        for conn in (self.work, self.listener):
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        self.work = self.listener = None

    def _connect(self) -> None:
        # The listener comes first: once it listens, no timer committed after the next read of
        # the earliest due time can go unnoticed.
        if self.listener is None:
            listener = psycopg.connect(
                db.with_keepalives(self.url),
                autocommit=True,
                application_name="segql worker listener",
            )
            listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self.listener = listener
        if self.work is None:
            self.work = psycopg.connect(self.url, autocommit=True, application_name="segql worker")

    def _cycle(self) -> None:
        """Apply what is due, then sleep until the next due time or an earlier timer appears."""
        done = self._drain()
        if self.backoff.failures:
            log.warning("worker reconnected; back to work")
            self.backoff.reset()
        if self.stop.is_set():
            return
        # Empty the listener's mailbox before reading the earliest due time: a doorbell rung
        # before the read is covered by the read, and one rung after it ends the sleep.
        self._swallow_notifications()
        assert self.work is not None
        row = self.work.execute(NEXT_DUE).fetchone()
        assert row is not None
        due, now, pinned = row
        contended = done == 0 and due is not None and due <= now
        seconds = self._seconds_until(due, now, bool(pinned), contended)
        self._sleep(min(seconds, self._refresh_if_due()))

    def _refresh_if_due(self) -> float:
        """Refresh the RFM cutpoints when the stalest is older than the schedule; returns the
        seconds until the next refresh is due (the schedule follows the database's time, not
        the segql clock, so a pinned clock never refreshes by itself)."""
        if self.refresh_every is None:
            return self.max_sleep
        assert self.work is not None
        age = rfm.refresh_age(self.work)
        if age is None:
            return self.max_sleep  # no score deployed; a deploy computes its first cutpoints
        if age < self.refresh_every:
            return self.refresh_every - age
        result = rfm.refresh(self.work, if_older_than=self.refresh_every)
        if result.scores == 0:
            return self.refresh_every  # another worker refreshed first
        log.info(
            "refreshed %d RFM score(s) for %d user(s) in %.1f s: %d enter(s), %d exit(s)",
            result.scores,
            result.users,
            result.seconds,
            result.enters,
            result.exits,
        )
        return self.refresh_every

    def _drain(self) -> int:
        """`segql.tick()` in its own transaction until it applies nothing; returns the total."""
        assert self.work is not None
        started = time.perf_counter()
        total = 0
        while not self.stop.is_set():
            try:
                row = self.work.execute(TICK, [self.batch]).fetchone()
            except psycopg.errors.UndefinedFunction:
                break  # nothing deployed yet: the first deploy creates segql.tick()
            except psycopg.errors.TransactionRollback as exc:
                # A deadlock or serialization failure rolled back this tick only; the
                # connection is fine and the timers are still there: try again at once.
                log.info("tick rolled back (%s); retrying", first_line(exc))
                continue
            done = int(row[0]) if row and row[0] is not None else 0
            total += done
            if done == 0:
                break
        if total:
            log.info(
                "processed %d timer(s) in %.1f ms", total, (time.perf_counter() - started) * 1000
            )
        if self.on_tick is not None:
            self.on_tick(total)
        return total

    def _seconds_until(
        self, due: datetime | None, now: datetime, pinned: bool, contended: bool
    ) -> float:
        if due is None:
            return self.max_sleep  # a trigger that sets the first timer rings the doorbell
        if contended:
            # Due but not taken: another worker or a writer holds those timers. Their commit
            # frees them; give it a moment rather than asking again at once.
            return CONTENDED_SLEEP
        if pinned:
            # Time does not pass on a pinned clock; it only jumps when someone moves it.
            return min(self.pinned_poll, self.max_sleep)
        return max(0.0, min((due - now).total_seconds(), self.max_sleep))

    def _sleep(self, seconds: float) -> None:
        assert self.listener is not None
        if seconds > 0:
            log.debug("sleeping %.3f s", seconds)
            _wait_readable([self.stop.fileno(), self.listener.fileno()], seconds)

    def _swallow_notifications(self) -> None:
        """Consume pending doorbells; they carry nothing but 'look again'."""
        assert self.listener is not None
        for _ in self.listener.notifies(timeout=0):
            pass

    def _failed(self, exc: psycopg.Error) -> None:
        self.close()
        delay = self.backoff.next()
        what = (
            "lost the database connection"
            if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
            else "tick failed"
        )
        message = f"{what} ({first_line(exc)}); retrying in {delay:.1f} s"
        if self.backoff.failures == 1:
            log.warning("%s", message)
        else:
            log.debug("%s", message)
        self.stop.wait(delay)


# -- pg_cron -------------------------------------------------------------------------------------

CRON_JOB = "segql-tick"
CRON_SCHEDULE = "1 second"
CRON_COMMAND = "SELECT segql.tick()"


class CronUnavailable(SegqlError):
    """pg_cron is not available on this server."""


@dataclass(frozen=True)
class CronJob:
    job_id: int
    name: str
    cron_database: str
    database: str


def install_cron(url: str) -> CronJob:
    """Schedule `SELECT segql.tick()` every second with pg_cron (1.5 or later).

    pg_cron keeps its jobs in one database (`cron.database_name`); for another database the job is
    scheduled from there with `cron.schedule_in_database` and named after the database, so that two
    segql databases on one server do not overwrite each other's job.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron'"
        ).fetchone()
        if available is None:
            raise CronUnavailable(
                "pg_cron is not installed on this server, so there is nothing to schedule the "
                "tick with. The Python worker is the default and needs no extension: run "
                "`segql worker` and keep it running. To use pg_cron instead, install it "
                "(e.g. the postgresql-NN-cron package), add pg_cron to shared_preload_libraries, "
                "restart PostgreSQL and run `segql worker --install-cron` again."
            )
        database = _one(conn, "SELECT current_database()")
        cron_database = _cron_database(conn)
    if cron_database is None:
        raise CronUnavailable(
            "pg_cron is installed but not loaded: add pg_cron to shared_preload_libraries and "
            "restart PostgreSQL, then run `segql worker --install-cron` again. The Python worker "
            "(`segql worker`) is the default and needs neither."
        )
    cron_url = url if cron_database == database else db.with_database(url, cron_database)
    with psycopg.connect(cron_url, autocommit=True) as cron:
        version = _one(
            cron,
            "SELECT coalesce(installed_version, default_version) FROM pg_available_extensions "
            "WHERE name = 'pg_cron'",
        )
        if _version_tuple(version) < (1, 5):
            raise CronUnavailable(
                f"pg_cron {version} cannot run a job every second (that needs 1.5 or later): "
                "upgrade the package and run `ALTER EXTENSION pg_cron UPDATE` (or remove the "
                "old extension), or use the Python worker (`segql worker`)."
            )
        cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        if cron_database == database:
            name = CRON_JOB
            job_id = _one(
                cron, "SELECT cron.schedule(%s, %s, %s)", [name, CRON_SCHEDULE, CRON_COMMAND]
            )
        else:
            name = f"{CRON_JOB}-{database}"
            job_id = _one(
                cron,
                "SELECT cron.schedule_in_database(%s, %s, %s, %s)",
                [name, CRON_SCHEDULE, CRON_COMMAND, database],
            )
    return CronJob(int(job_id), name, cron_database, database)


def _cron_database(conn: psycopg.Connection) -> str | None:
    """The database pg_cron keeps its jobs in, or None when its scheduler is not running.

    The launcher is visible to every role in pg_stat_activity, connected to that database, and
    only exists when pg_cron is in shared_preload_libraries: one look answers both questions.
    """
    row = conn.execute(
        "SELECT datname FROM pg_stat_activity WHERE backend_type = 'pg_cron launcher'"
    ).fetchone()
    return str(row[0]) if row and row[0] is not None else None


def _one(conn: psycopg.Connection, query: str, params: list[object] | None = None) -> Any:
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def _version_tuple(version: object) -> tuple[int, int]:
    """(major, minor) of an extension version such as '1.6' or Debian's '1.4-1'."""
    match = re.match(r"\s*(\d+)(?:\.(\d+))?", str(version))
    if match is None:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2) or 0))
