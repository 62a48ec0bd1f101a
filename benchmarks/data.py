"""The synthetic shop's events, rendered once per run into COPY text and replayed from a file.

Generating events costs Python time; doing it while timing COPY would measure the generator on a
small machine as much as the database. So the events are rendered before any clock starts, to a
file of COPY text cut into batches, and every side of a comparison replays the very same bytes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

import psycopg

from benchmarks import segments
from benchmarks.harness import Context
from segql import synth

# A fixed end keeps runs comparable: the same seed gives the same bytes on every machine.
END = datetime(2025, 6, 1, tzinfo=UTC)
DAYS = 30
COPY_EVENTS = "COPY segql.events (user_id, name, ts, props) FROM STDIN"
PIN_CLOCK = "UPDATE segql.clock SET pinned_at = %s"


@dataclass(frozen=True)
class EventBatches:
    path: Path
    batches: list[tuple[int, int, str]]  # (offset, length, latest ts) of each batch in the file
    events: int

    def chunks(self) -> Iterator[tuple[bytes, str]]:
        """Each batch's COPY text with the latest timestamp in it."""
        with self.path.open("rb") as f:
            for offset, length, latest in self.batches:
                f.seek(offset)
                yield f.read(length), latest


def event_batches(ctx: Context) -> EventBatches:
    """The run's events as COPY batches, rendered on first use and shared by every scenario."""
    cached = ctx.cached("event_batches")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    scale = ctx.scale
    ctx.log(f"rendering {scale.events:,} events for {scale.users:,} users")
    rows = synth.event_rows(scale.events, scale.users, ctx.seed, END - timedelta(days=DAYS), END)
    path = ctx.workdir / "events.copy"
    batches = []
    with path.open("wb") as out:
        while batch := list(islice(rows, scale.batch_size)):
            data = "".join(map(synth.copy_line, batch)).encode()
            # Same format, same zone: the greatest string is the latest time.
            batches.append((out.tell(), len(data), max(row[2] for row in batch)))
            out.write(data)
    return ctx.remember("event_batches", EventBatches(path, batches, scale.events))  # type: ignore[no-any-return]


def copy_batches(
    conn: psycopg.Connection, data: EventBatches, on_batch: Callable[[], None] | None = None
) -> int:
    """COPY every batch, one transaction each, so statement triggers run once per batch.

    segql's clock is pinned to each batch's latest event first, as if the events were arriving
    live: windows then hold what they would hold in production, rather than having long expired
    (a real clock) or not begun (a clock at the end of the stream).
    """
    for chunk, latest in data.chunks():
        conn.execute(PIN_CLOCK, (latest,))
        with conn.cursor() as cur, cur.copy(COPY_EVENTS) as copy:
            copy.write(chunk)
        conn.commit()
        if on_batch:
            on_batch()
    return data.events


def load_profiles(url: str, ctx: Context) -> int:
    """Profiles for every user, so trait conditions (plan, city) have something to match."""
    with psycopg.connect(url) as conn:
        return synth.copy_profiles(conn, synth.generate_profiles(ctx.scale.users, ctx.seed, END))


def user_ids(ctx: Context) -> list[str]:
    return [synth.user_id(i) for i in range(ctx.scale.users)]


def checkpoint(conn: psycopg.Connection) -> None:
    """Flush dirty pages first, so a measurement does not pay for the setup's writes."""
    # A role without pg_checkpoint measures with whatever the server has pending.
    with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
        conn.execute("CHECKPOINT")
    conn.commit()


def copy_rate(ctx: Context, batches: EventBatches, label: str, definitions: str | None) -> float:
    """Rows/s of a COPY of every batch into a fresh database holding the profiles and, unless
    None (raw COPY), these definitions deployed first: the measure of every "COPY with N
    segments of X" row."""
    slug = "".join(c for c in label if c.isalnum() or c == "_")
    with ctx.scratch(slug) as url:
        load_profiles(url, ctx)
        if definitions is not None:
            segments.deploy_text(url, definitions)
        with psycopg.connect(url) as conn:
            if ctx.scale.checkpoint:
                checkpoint(conn)
            started = time.perf_counter()
            rows = copy_batches(conn, batches)
            elapsed = time.perf_counter() - started
    ctx.log(f"{label}: {rows:,} rows in {elapsed:.2f} s")
    return rows / elapsed
