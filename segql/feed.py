"""The change feed: every membership change in `segql.changes`, in commit order, never skipped.

## Why seq order is not enough

`seq` is taken when a change is inserted, not when its transaction commits: a transaction can
take seq 10, another take seq 11 and commit first. A reader that remembers "last seq = 11" then
skips 10 forever. Waiting for every transaction older than the oldest running one (the snapshot's
xmin) fixes the skip but not the order: xids are also taken before commit, so two transactions
on the same user can commit in the opposite order of their xids, and a long transaction anywhere
in the database would hold back delivery of everything else for as long as it runs.

## Batches between snapshots

Every change row carries the xid of its transaction. The feed reads in *batches*: batch k is every
change whose transaction is visible in snapshot S(k) and was not visible in S(k-1), where S(k) is
`pg_current_snapshot()` taken when the batch is opened (PgQ's ticks work the same way). Then:

- **No skip.** Snapshots taken one after the other see ever larger sets of committed
  transactions, so every committed transaction falls in exactly one batch: the first whose
  snapshot sees it. Rows of a transaction that commits later are in a later batch, whatever
  their seq. A batch is a pure function of its two snapshots (`pg_visible_in_snapshot`), so it
  can be re-read after a crash or a server restart and yields the same rows in the same order.
- **No stall.** A running transaction only keeps its own rows out of a batch; everything that
  committed is delivered at once.
- **Commit order.** Within a batch, transactions are ordered by their last seq, and a
  transaction's changes by seq. If transaction B waited for A (the triggers lock each user's row,
  so any two transactions that change the same user do), A's commit is visible before B's, and
  B takes its seqs for that user after A committed; so A comes before B, either in an earlier
  batch or, in the same batch, by last seq. Each transaction's changes arrive together.

## The cursor

A position is (batch, last seq of the change's transaction, seq). A named consumer stores in
`segql.consumers` the position of its last acknowledged change: `base` (the previous snapshot: all
changes visible in it are acknowledged, as are those up to `floor_seq` when a consumer started
after a seq), `batch` (the snapshot of the batch in progress) and `batch_tx`, `batch_seq`. The
invariant: every change before that position in delivery order is acknowledged, none after it.
Restarting re-reads the batch in progress from after that position. Acknowledgements are
cumulative (as Kafka offsets), durable when `ack` returns, and delivery is at least once: what
was delivered but not acknowledged is delivered again, and `seq` is the idempotency key.

## Waking up

NOTIFY is only the doorbell. The subscriber LISTENs on a connection of its own (autocommit, never
pooled, running no queries) and reads with a second one. It LISTENs before reading, so a
notification can only make it read once too often, never once too few; when no notification comes
within `poll_interval` it reads anyway, which also notices a dead server. Lost connections are
re-established with capped exponential backoff; the position is kept in memory meanwhile, and
after a restart of the server the batch in progress is simply re-read.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import count
from types import TracebackType
from typing import Any, NamedTuple, Protocol

import psycopg
from psycopg import sql

from segql import db, generate
from segql.errors import SegqlError, first_line
from segql.sqlfiles import query

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL = 5.0
PAGE_SIZE = 1000
CHANNEL = "segql"
# A snapshot in which nothing is visible: a base that acknowledges nothing.
EMPTY_SNAPSHOT = "1:1:"
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0
_BUSY_WAIT = 10.0  # how long to wait for a consumer name held by a process that just died
_IDLE_SAVE_INTERVAL = 10.0
_REMEMBERED_POSITIONS = 10_000  # seqs that ack(seq) can find; ack(change) needs none
_LOST_CONNECTION = (psycopg.OperationalError, psycopg.InterfaceError)


class FeedError(SegqlError):
    """The change feed cannot go on."""


class ConsumerBusy(FeedError):
    """Another process is reading with this consumer name."""


@dataclass(frozen=True)
class Batch:
    """The changes of transactions visible in `snapshot` and not acknowledged by `base`."""

    number: int  # order of batches within one subscription
    base: str
    floor_seq: int | None
    snapshot: str


@dataclass(frozen=True, order=True)
class Position:
    """Where a change is in delivery order."""

    batch_number: int
    tx: int  # the last seq of the change's transaction
    seq: int
    batch: Batch = field(compare=False)


@dataclass(frozen=True)
class Change:
    """One enter or exit, as recorded in segql.changes."""

    seq: int
    segment: str
    user_id: str
    kind: str  # 'enter' | 'exit'
    at: datetime
    cause: str  # event, profile, time, deploy, redeploy, drop, clock, history, refresh
    version: int
    # A move between two tiers of one group: [group, the other tier] (segql.tier_move).
    tier_move: list[str] | None = None
    position: Position | None = field(default=None, repr=False, compare=False)

    @property
    def tier_change(self) -> dict[str, str] | None:
        """The move this change is half of: group, from and to."""
        if not self.tier_move:
            return None
        group, other = self.tier_move
        moved = (self.segment, other) if self.kind == "exit" else (other, self.segment)
        return {"tiers": group, "from": moved[0], "to": moved[1]}

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "segment": self.segment,
            "user_id": self.user_id,
            "kind": self.kind,
            "at": self.at.astimezone(UTC).isoformat(),
            "cause": self.cause,
            "version": self.version,
        }
        if self.tier_change is not None:
            out["tier_change"] = self.tier_change
        return out


class Stop(Protocol):
    """A flag that ends a subscription, set from a signal handler or another thread.

    Its file descriptor becomes readable when it is set, so a wait ends at once
    (`segql.worker.StopEvent` is one).
    """

    def is_set(self) -> bool: ...

    def fileno(self) -> int: ...

    def wait(self, timeout: float | None) -> bool: ...


class _Tx(NamedTuple):
    xid: str
    last: int
    matching: int


def subscribe(
    database_url: str,
    segments: Sequence[str] | None = None,
    consumer: str | None = None,
    since: int | None = None,
    *,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: float | None = None,
    read_only: bool = False,
    stop: Stop | None = None,
    page_size: int = PAGE_SIZE,
) -> Subscription:
    """Iterate over membership changes as they commit.

    - `segments`: only these segments (default: all).
    - `consumer`: a name whose position is kept in the database; the subscription resumes after
      its last acknowledged change. Acknowledge with `sub.ack(change)` (cumulative). A new
      consumer starts now, or after `since`; an existing one ignores `since` (so that a service
      restarted with the same arguments resumes): drop it to start over.
    - `since`: start after this seq (0: the whole log). A seq is only a rough position: a change
      with a smaller seq that commits after the start is still delivered, one that had committed
      is not.
    - Without either, start now.
    - `poll_interval`: read even without a notification this often (seconds).
    - `timeout`: stop iterating after this many seconds without a change (default: never).
    - `read_only`: read a consumer's position but never move it.
    - `stop`: iteration ends soon after this flag is set (see `Stop`).
    """
    return Subscription(
        database_url,
        segments=segments,
        consumer=consumer,
        since=since,
        poll_interval=poll_interval,
        timeout=timeout,
        read_only=read_only,
        stop=stop,
        page_size=page_size,
    )


class Subscription(Iterator[Change]):
    """An open subscription; see `subscribe`. Close it, or use it as a context manager."""

    def __init__(
        self,
        database_url: str,
        *,
        segments: Sequence[str] | None,
        consumer: str | None,
        since: int | None,
        poll_interval: float,
        timeout: float | None,
        read_only: bool,
        stop: Stop | None,
        page_size: int,
    ) -> None:
        self.url = database_url
        self.segments = sorted(set(segments)) if segments else None
        self.consumer = consumer
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.read_only = read_only
        self.page_size = page_size
        self._stop = stop
        self._numbers = count()
        self._buffer: deque[Change] = deque()
        self._positions: OrderedDict[int, Position] = OrderedDict()
        self._query: psycopg.Connection | None = None
        self._listen: psycopg.Connection | None = None
        self._closed = False
        # Reading state: the open batch and the position of the last change read from it, or,
        # between batches, the base (and floor) the next batch starts from.
        self._base = EMPTY_SNAPSHOT
        self._floor: int | None = None
        self._batch: Batch | None = None
        self._pos: tuple[int, int] = (0, 0)
        self._txs: deque[_Tx] | None = None
        self._delivered: Position | None = None
        self._acked: Position | None = None
        self._saved_base: str | None = None
        self._saved_at = 0.0
        self._connect()
        try:
            self._start(since)
        except BaseException:
            self.close()
            raise

    # -- public ----------------------------------------------------------------------------------

    def __iter__(self) -> Subscription:
        return self

    def __next__(self) -> Change:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        while not self._buffer:
            if self._closed or self._stopping():
                raise StopIteration
            try:
                if self._retrying(self._fill, deadline):
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    raise StopIteration
                self._retrying(lambda: self._wait(deadline), deadline)
            except _GaveUp:
                raise StopIteration from None
        change = self._buffer.popleft()
        assert change.position is not None
        self._delivered = change.position
        if self.consumer is not None:
            self._positions[change.seq] = change.position
            if len(self._positions) > _REMEMBERED_POSITIONS:
                self._positions.popitem(last=False)
        return change

    @property
    def buffered(self) -> int:
        """Changes already read and not yet delivered: 0 means the next one may need a wait."""
        return len(self._buffer)

    def ack(self, change: Change | int) -> None:
        """Acknowledge a change (or a seq) and every change delivered before it; durable on return.

        Without a consumer name there is nothing to keep, and this does nothing.
        """
        if self.consumer is None or self.read_only:
            return
        position = change.position if isinstance(change, Change) else self._positions.get(change)
        if position is None:
            seq = change.seq if isinstance(change, Change) else change
            raise FeedError(f"change {seq} was not delivered by this subscription")
        if self._acked is not None and position <= self._acked:
            return
        batch = position.batch
        try:
            self._retrying(
                lambda: self._save(
                    batch.base,
                    batch.floor_seq,
                    batch.snapshot,
                    position.tx,
                    position.seq,
                    position.seq,
                ),
                None,
            )
        except _GaveUp:
            raise FeedError(
                f"stopped before the acknowledgement of change {position.seq} "
                "could be stored; it will be delivered again"
            ) from None
        self._acked = position

    def close(self) -> None:
        self._closed = True
        self._disconnect()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- starting --------------------------------------------------------------------------------

    def _start(self, since: int | None) -> None:
        """Find where to start: the consumer's position, after `since`, or now."""
        conn = self._conn()
        stored = None
        if self.consumer is not None:
            stored = conn.execute(
                query("consumer_cursor", "feed.sql"), {"name": self.consumer}
            ).fetchone()
        if stored is not None:
            base, floor, batch, tx, seq, segments = stored
            if (sorted(segments) if segments else None) != self.segments:
                raise FeedError(
                    f"consumer '{self.consumer}' reads {_describe(segments)}, not "
                    f"{_describe(self.segments)}: its position only holds for those; "
                    "use another consumer name, or give the same segments"
                )
            self._base, self._floor = base, floor
            if batch is not None:
                self._batch = Batch(next(self._numbers), base, floor, batch)
                self._pos = (tx, seq)
                self._acked = Position(self._batch.number, tx, seq, self._batch)
            self._saved_base = base
            return
        if since is None:
            self._base = self._snapshot()
        else:
            self._base, self._floor = EMPTY_SNAPSHOT, since
        if self.consumer is not None and not self.read_only:
            # Stored before anything is delivered, so that a crash before the first ack
            # restarts from here and not from a later "now".
            conn.execute(
                query("create_consumer", "feed.sql"),
                {
                    "name": self.consumer,
                    "base": self._base,
                    "floor": self._floor,
                    "segments": self.segments,
                },
            )
            self._saved_base = self._base

    # -- reading ---------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read the next page of changes into the buffer; False when nothing new has committed."""
        opened = False
        while True:
            if self._batch is None:
                snapshot, self._txs = self._open()
                self._batch = Batch(next(self._numbers), self._base, self._floor, snapshot)
                self._pos = (0, 0)
                opened = True
            if self._txs is None:
                self._txs = self._transactions(self._batch)
            while self._txs:
                changes = self._page(self._batch, self._txs)
                if changes:
                    self._buffer.extend(changes)
                    return True
            self._base, self._floor = self._batch.snapshot, None
            self._batch = None
            self._txs = None
            if opened:
                self._save_idle()
                return False

    def _transactions(self, batch: Batch) -> deque[_Tx]:
        """The batch's transactions not read yet (after `_pos`)."""
        _, txs = self._read_transactions(batch.base, batch.floor_seq, batch.snapshot)
        tx, _ = self._pos
        return deque(t for t in txs if t.last >= tx)

    def _open(self) -> tuple[str, deque[_Tx]]:
        """A new batch from the current snapshot, and its transactions, in one round trip."""
        return self._read_transactions(self._base, self._floor, None)

    def _read_transactions(
        self, base: str, floor: int | None, batch: str | None
    ) -> tuple[str, deque[_Tx]]:
        rows = (
            self._conn()
            .execute(
                query("batch_transactions", "feed.sql"),
                {"base": base, "batch": batch, "floor": floor, "segments": self.segments},
            )
            .fetchall()
        )
        txs = deque(_Tx(*r[1:]) for r in rows if r[1] is not None and r[3] > 0)
        return str(rows[0][0]), txs

    def _page(self, batch: Batch, txs: deque[_Tx]) -> list[Change]:
        chunk: list[_Tx] = []
        total = 0
        for t in txs:
            chunk.append(t)
            total += t.matching
            if total >= self.page_size:
                break
        tx, seq = self._pos
        rows = (
            self._conn()
            .execute(
                query("batch_changes", "feed.sql"),
                {
                    "xids": [t.xid for t in chunk],
                    "lasts": [t.last for t in chunk],
                    "tx": tx,
                    "seq": seq,
                    "floor": batch.floor_seq,
                    "segments": self.segments,
                    "limit": self.page_size,
                },
            )
            .fetchall()
        )
        if rows:
            self._pos = (rows[-1][7], rows[-1][0])
        if len(rows) < self.page_size:
            for _ in chunk:  # all of the chunk has been read
                txs.popleft()
        else:
            while txs and txs[0].last < self._pos[0]:
                txs.popleft()
        return [
            Change(
                seq,
                segment,
                user_id,
                kind,
                at,
                cause,
                version,
                move,
                position=Position(batch.number, tx, seq, batch),
            )
            for seq, segment, user_id, kind, at, cause, version, tx, move in rows
        ]

    def _snapshot(self) -> str:
        row = self._conn().execute(query("current_snapshot", "feed.sql")).fetchone()
        assert row is not None
        return str(row[0])

    def _save_idle(self) -> None:
        """Move a caught-up consumer past batches that held nothing for it.

        Otherwise an idle consumer's stored position would stay behind, holding back
        `prune-log` and making its next start re-scan everything since.
        """
        if self.consumer is None or self.read_only or self._base == self._saved_base:
            return
        if self._delivered is not None and self._delivered != self._acked:
            return  # something delivered is not acknowledged yet: only ack may move the position
        if time.monotonic() - self._saved_at < _IDLE_SAVE_INTERVAL:
            return
        self._save(self._base, self._floor, None, None, None, None)

    def _save(
        self,
        base: str,
        floor: int | None,
        batch: str | None,
        tx: int | None,
        seq: int | None,
        last_seq: int | None,
    ) -> None:
        self._conn().execute(
            query("save_cursor", "feed.sql"),
            {
                "name": self.consumer,
                "base": base,
                "floor": floor,
                "batch": batch,
                "tx": tx,
                "seq": seq,
                "last_seq": last_seq,
            },
        )
        self._saved_base = base
        self._saved_at = time.monotonic()

    # -- waiting ---------------------------------------------------------------------------------

    def _wait(self, deadline: float | None) -> None:
        """Block until a notification arrives, `poll_interval` passes or the stop flag is set."""
        timeout = self.poll_interval
        if deadline is not None:
            timeout = max(0.0, min(timeout, deadline - time.monotonic()))
        listen = self._listen
        if listen is None or listen.closed:
            raise psycopg.OperationalError("the listening connection is closed")
        waiting = [listen.fileno()] + ([self._stop.fileno()] if self._stop is not None else [])
        ready, _, _ = select.select(waiting, [], [], timeout)
        if listen.fileno() in ready:
            # The next read covers everything committed so far: fold all pending doorbells into
            # it. Reading the socket is also what reports a connection the server closed.
            for _ in listen.notifies(timeout=0):
                pass

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _sleep(self, seconds: float) -> None:
        if self._stop is not None:
            self._stop.wait(seconds)
        else:
            time.sleep(seconds)

    # -- connections -----------------------------------------------------------------------------

    def _connect(self) -> None:
        try:
            self._query = psycopg.connect(self.url, autocommit=True, application_name="segql feed")
            self._listen = psycopg.connect(
                db.with_keepalives(self.url), autocommit=True, application_name="segql listen"
            )
            for channel in self._channels():
                self._listen.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            if self.consumer is not None:
                self._lock_consumer(self._query)
        except BaseException:
            self._disconnect()
            raise

    def _channels(self) -> list[str]:
        if self.segments is None:
            return [CHANNEL]
        return [generate.channel(name) for name in self.segments]

    def _lock_consumer(self, conn: psycopg.Connection) -> None:
        # A process killed a moment ago may still hold the lock until the server notices.
        give_up = time.monotonic() + _BUSY_WAIT
        while True:
            row = conn.execute(query("lock_consumer", "feed.sql"), {"name": self.consumer})
            got = row.fetchone()
            if got is not None and got[0]:
                return
            if time.monotonic() >= give_up or self._stopping():
                raise ConsumerBusy(f"consumer '{self.consumer}' is in use by another process")
            self._sleep(0.1)

    def _conn(self) -> psycopg.Connection:
        if self._query is None or self._query.closed:
            raise psycopg.OperationalError("the reading connection is closed")
        return self._query

    def _disconnect(self) -> None:
        for conn in (self._listen, self._query):
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()
        self._listen = self._query = None

    def _retrying(self, step: Any, deadline: float | None) -> Any:
        """Run `step`, reconnecting with backoff for as long as the connection keeps failing."""
        delay = _BACKOFF_FIRST
        while True:
            try:
                return step()
            except _LOST_CONNECTION as exc:
                if self._closed:
                    raise
                log.warning("lost the database connection (%s); reconnecting", first_line(exc))
                self._disconnect()
            while True:
                if self._stopping() or (
                    deadline is not None and time.monotonic() + delay > deadline
                ):
                    raise _GaveUp from None
                self._sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, _BACKOFF_MAX)
                try:
                    self._connect()
                except _LOST_CONNECTION as exc:
                    self._disconnect()
                    # Once is news; every attempt of a long outage would drown the log.
                    log.debug("cannot reconnect yet (%s)", first_line(exc))
                    continue
                log.warning("reconnected")
                break


class _GaveUp(Exception):
    """Reconnecting was cut short by the stop flag or the idle timeout."""


def _describe(segments: Sequence[str] | None) -> str:
    return "all segments" if not segments else "segments " + ", ".join(sorted(segments))


# -- consumers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsumerInfo:
    name: str
    segments: list[str] | None
    last_seq: int | None
    acked_at: datetime | None
    updated_at: datetime
    pending: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "segments": self.segments,
            "last_seq": self.last_seq,
            "acked_at": self.acked_at.isoformat() if self.acked_at else None,
            "updated_at": self.updated_at.isoformat(),
            "pending": self.pending,
        }


def consumers(conn: psycopg.Connection) -> list[ConsumerInfo]:
    return [ConsumerInfo(*r) for r in conn.execute(query("list_consumers", "feed.sql"))]


def drop_consumer(conn: psycopg.Connection, name: str) -> bool:
    """Forget a consumer's position; False when there was none."""
    return conn.execute(query("drop_consumer", "feed.sql"), {"name": name}).fetchone() is not None


# -- pruning ---------------------------------------------------------------------------------------


@dataclass
class PruneResult:
    cutoff: datetime
    deleted: dict[str, int]  # per segment
    held_back: int  # old changes kept because a named consumer has not acknowledged them
    held_by: dict[str, int]  # per consumer
    forced: bool
    dry_run: bool

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def prune(
    conn: psycopg.Connection, cutoff: datetime, *, force: bool = False, dry_run: bool = False
) -> PruneResult:
    """Delete changes recorded (`at`) before `cutoff` that no named consumer still needs.

    Each user's last change before the cutoff stays when it is an enter, so that `members_at`
    and `history` stay exact from the cutoff on. Without `force`, changes some named consumer has
    not acknowledged stay too. With `dry_run`, report what would go and delete nothing.
    """
    try:
        with conn.transaction():
            result = _prune(conn, cutoff, force, dry_run)
            if dry_run:
                raise _Rollback(result)
    except _Rollback as rolled_back:
        return rolled_back.result
    return result


def _prune(conn: psycopg.Connection, cutoff: datetime, force: bool, dry_run: bool) -> PruneResult:
    conn.execute(query("prune_reset", "feed.sql"))
    conn.execute(query("prune_candidates", "feed.sql"), {"cutoff": cutoff})
    conn.execute(query("prune_held", "feed.sql"))
    held_back, held_by = 0, {}
    if not force:
        for name, held in conn.execute(query("prune_held_back", "feed.sql")):
            if name is None:
                held_back = int(held)
            else:
                held_by[str(name)] = int(held)
    deleted = {
        str(seg): int(n)
        for seg, n in conn.execute(query("prune_delete", "feed.sql"), {"force": force})
    }
    result = PruneResult(cutoff, deleted, held_back, held_by, force, dry_run)
    if result.total and not dry_run:
        conn.execute(
            query("record_prune", "feed.sql"),
            {"cutoff": cutoff, "deleted": result.total, "force": force},
        )
    return result


class _Rollback(Exception):
    def __init__(self, result: PruneResult) -> None:
        self.result = result
