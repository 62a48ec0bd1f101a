"""One change feed per server process, fanned out to every open browser.

A thread reads the change feed (`segql.feed`: its own LISTEN connection and a reading one) and
hands each drained batch to the event loop, which keeps the last changes in delivery order and
puts them on every stream's queue. Sizes are counted once, in the snapshot the feed starts
from, and then follow the enters and exits the feed delivers; per-minute enters and exits of
the last day are kept in memory the same way. So neither a browser nor a busy ingest makes the
server count members or scan the change log again.

A browser that reconnects sends the seq of the last change it saw (`Last-Event-ID`): the changes
delivered after it are still in memory, or, when the process restarted since, read from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from segql import db, feed
from segql.feed import Change
from segql.sqlfiles import query
from segql.worker import StopEvent

log = logging.getLogger(__name__)

REMEMBERED = 20_000  # changes kept for reconnecting browsers
REPLAY_LIMIT = 5_000  # changes read back from the log for one reconnect; more asks for a reload
MINUTES = 24 * 60
SPARK_MINUTES = 60
RATE_MINUTES = 5
_MIN_FLUSH_INTERVAL = 0.1
_IDLE_POLL = 1.0
_QUEUE_SIZE = 1000
RELOAD = "reload"  # on a stream's queue: the browser fell behind and should reload
END = "end"  # on a stream's queue: the server is stopping; the browser reconnects later


def _dashboard_sql(name: str) -> str:
    return query(name, "dashboard.sql")


@dataclass
class Activity:
    """Per-minute enters and exits of one segment over the last day, and its size."""

    size: int = 0
    minutes: dict[int, list[int]] = field(default_factory=dict)  # epoch minute -> [in, out]

    def add(self, minute: int, kind: str, n: int = 1) -> None:
        counts = self.minutes.setdefault(minute, [0, 0])
        counts[0 if kind == "enter" else 1] += n

    def trim(self, now_minute: int) -> None:
        for minute in [m for m in self.minutes if m <= now_minute - MINUTES]:
            del self.minutes[minute]

    def net(self, now_minute: int, minutes: int) -> int:
        return sum(i - o for m, (i, o) in self.minutes.items() if m > now_minute - minutes)

    def summary(self, now: datetime) -> dict[str, Any]:
        """What the overview shows: size, change over an hour and a day, rates, a sparkline."""
        now_minute = _minute(now)
        recent = [self.minutes.get(now_minute - k, [0, 0]) for k in range(RATE_MINUTES)]
        spark = [self.size]
        for k in range(SPARK_MINUTES - 1):
            i, o = self.minutes.get(now_minute - k, [0, 0])
            spark.append(spark[-1] - (i - o))
        return {
            "size": self.size,
            "hour": self.net(now_minute, 60),
            "day": self.net(now_minute, MINUTES),
            "enters_per_min": round(sum(r[0] for r in recent) / RATE_MINUTES, 1),
            "exits_per_min": round(sum(r[1] for r in recent) / RATE_MINUTES, 1),
            "spark": spark[::-1],
        }


def _minute(ts: datetime) -> int:
    return int(ts.timestamp() // 60)


@dataclass(frozen=True)
class Update:
    """What one batch of the feed tells the browsers."""

    changes: list[Change]
    segments: dict[str, dict[str, Any]]  # name -> Activity.summary
    now: datetime
    position: int | None  # the seq of the last change delivered so far, of any segment


class Stream:
    """One browser's view of the hub: updates, optionally for one segment only, and with or
    without the changes themselves (the overview needs only the segments' figures)."""

    def __init__(self, segment: str | None, changes: bool = True) -> None:
        self.segment = segment
        self.changes = changes
        self.queue: asyncio.Queue[Update | str] = asyncio.Queue(_QUEUE_SIZE + 1)

    def wants(self, change: Change) -> bool:
        return self.changes and (self.segment is None or change.segment == self.segment)

    def offer(self, update: Update) -> None:
        segments = update.segments
        if self.segment is not None:
            segments = {k: v for k, v in segments.items() if k == self.segment}
        changes = [c for c in update.changes if self.wants(c)]
        if not changes and not segments:
            return
        if self.queue.qsize() >= _QUEUE_SIZE:
            # A browser that stopped reading is told to reload rather than fall behind forever.
            self.queue.put_nowait(RELOAD)
            return
        self.queue.put_nowait(Update(changes, segments, update.now, update.position))


class Hub:
    """The feed reader thread and the state it keeps; start it from inside the event loop."""

    def __init__(self, database_url: str, poll_interval: float = feed.DEFAULT_POLL_INTERVAL):
        self.url = database_url
        self.poll_interval = poll_interval
        self.activity: dict[str, Activity] = {}
        self.now: datetime | None = None
        self.position: int | None = None
        self._recent: deque[Change] = deque(maxlen=REMEMBERED)
        self._streams: set[Stream] = set()
        self._stop = StopEvent()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._stopped = False
        self._loaded_at = ""  # the snapshot sizes were counted in

    # -- lifecycle (event loop side) ---------------------------------------------------------------

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="segql-dashboard-hub", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        """Stop the reader thread; safe to call again (a server that failed to bind its port
        ran the startup but never the shutdown)."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self._stop.close()

    def end_streams(self) -> None:
        """Close every open stream (from any thread), so that a server can stop at once."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._end_streams)

    def _end_streams(self) -> None:
        for stream in list(self._streams):
            with contextlib.suppress(asyncio.QueueFull):
                stream.queue.put_nowait(END)

    # -- streams (event loop side) -----------------------------------------------------------------

    def open(
        self, segment: str | None, last_seq: int | None, changes: bool = True
    ) -> tuple[Stream, list[Change] | None]:
        """A new stream, and the changes after `last_seq` when memory still has them (None:
        read them from the log with `replay`). Atomic with `_publish`: both run on the loop."""
        stream = Stream(segment, changes)
        self._streams.add(stream)
        if last_seq is None or last_seq == self.position or not changes:
            return stream, []
        seqs = [c.seq for c in self._recent]
        if last_seq in seqs:
            after = list(self._recent)[seqs.index(last_seq) + 1 :]
            return stream, [c for c in after if stream.wants(c)]
        return stream, None

    def close(self, stream: Stream) -> None:
        self._streams.discard(stream)

    def snapshot(self) -> tuple[dict[str, dict[str, Any]], datetime | None]:
        now = self.now
        if now is None:
            return {}, None
        return {name: a.summary(now) for name, a in sorted(self.activity.items())}, now

    def _publish(self, update: Update) -> None:
        self._recent.extend(update.changes)
        self.position = update.position
        for stream in list(self._streams):
            stream.offer(update)

    # -- the reader thread -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except (psycopg.Error, feed.FeedError) as exc:
                log.warning("dashboard feed stopped (%s); starting again", exc)
                self._stop.wait(1.0)

    def _follow(self) -> None:
        with (
            feed.subscribe(
                self.url, poll_interval=self.poll_interval, timeout=_IDLE_POLL, stop=self._stop
            ) as sub,
            db.connect(self.url, autocommit=True) as conn,
        ):
            self._load(conn)
            self._ready.set()
            pending: list[Change] = []
            last_flush = 0.0
            while not self._stop.is_set():
                change = next(sub, None)  # None after a second without changes
                if change is not None:
                    pending.append(change)
                    if sub.buffered:
                        continue
                if not pending:
                    continue
                # Under a steady stream, batches are joined so that sizes are recounted a few
                # times a second, not once per committing transaction.
                wait = _MIN_FLUSH_INTERVAL - (time.monotonic() - last_flush)
                if wait > 0:
                    self._stop.wait(wait)
                self._flush(conn, pending)
                pending = []
                last_flush = time.monotonic()

    def _load(self, conn: psycopg.Connection) -> None:
        """Sizes and the last day's activity, in one snapshot, once per connection.

        The feed was opened (its base snapshot taken) just before, so its first batch may hold
        changes this snapshot already counted: `_flush` leaves those out of the counters.
        """
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute(_dashboard_sql("clock_and_position")).fetchone()
            assert row is not None
            self._loaded_at, now, position = row
            sizes = conn.execute(_dashboard_sql("sizes")).fetchall()
            activity = {name: Activity(int(n)) for name, n in sizes}
            since = now - timedelta(days=1)
            for segment, minute, kind, n in conn.execute(
                _dashboard_sql("activity"), {"since": since}
            ):
                if segment in activity:
                    activity[segment].add(int(minute), kind, int(n))
        self._hand_over(activity, now, position)

    def _hand_over(
        self, activity: dict[str, Activity], now: datetime, position: int | None
    ) -> None:
        def apply() -> None:
            self.activity, self.now = activity, now
            if self.position is None:
                self.position = position

        assert self._loop is not None
        self._loop.call_soon_threadsafe(apply)

    def _flush(self, conn: psycopg.Connection, changes: list[Change]) -> None:
        row = conn.execute(_dashboard_sql("clock_and_segments")).fetchone()
        assert row is not None
        now, deployed = row[0], set(row[1] or [])
        assert self._loop is not None
        counted = self._counted(conn, changes)
        self._loop.call_soon_threadsafe(self._apply, changes, counted, deployed, now)

    def _counted(self, conn: psycopg.Connection, changes: list[Change]) -> set[int]:
        """Seqs of the feed's first batch that `_load`'s snapshot already counted. Later batches
        open after that snapshot was taken, so none of their transactions were visible in it."""
        first = [c.seq for c in changes if c.position is not None and c.position.batch_number == 0]
        if not first:
            return set()
        rows = conn.execute(_dashboard_sql("counted"), {"seqs": first, "snapshot": self._loaded_at})
        return {int(r[0]) for r in rows}

    def _apply(
        self, changes: list[Change], counted: set[int], deployed: set[str], now: datetime
    ) -> None:
        """On the loop: fold a batch into sizes and activity and tell every stream."""
        self.now = now
        touched = {c.segment for c in changes}
        for c in changes:
            if c.segment not in deployed or c.seq in counted:
                continue
            activity = self.activity.setdefault(c.segment, Activity())
            activity.size += 1 if c.kind == "enter" else -1
            activity.add(_minute(c.at), c.kind)
        for name in touched:
            if name not in deployed:
                self.activity.pop(name, None)
            elif name in self.activity:
                self.activity[name].trim(_minute(now))
        summaries = {n: self.activity[n].summary(now) for n in sorted(touched) if n in deployed}
        if changes or summaries:
            position = changes[-1].seq if changes else self.position
            self._publish(Update(changes, summaries, now, position))


def replay(conn: psycopg.Connection, segment: str | None, after: int) -> list[Change] | None:
    """Changes after seq `after` from the log, for a browser this process has not served;
    None when there are too many to catch up on (the browser reloads instead)."""
    rows = conn.execute(
        _dashboard_sql("changes_after"),
        {"after": after, "segment": segment, "limit": REPLAY_LIMIT + 1},
    ).fetchall()
    if len(rows) > REPLAY_LIMIT:
        return None
    return [Change(*r) for r in rows]


def unseen(changes: Iterable[Change], seen: set[int]) -> list[Change]:
    return [c for c in changes if c.seq not in seen]
