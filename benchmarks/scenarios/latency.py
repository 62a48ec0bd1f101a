"""From an INSERT to the notification a listener receives, over many sequential round trips.

Baseline: the writer does a single-row INSERT and a NOTIFY in one transaction, the least a
hand-built trigger-free system would do. segql: the writer only INSERTs an event that makes a new
user enter a deployed segment; segql's own NOTIFY on channel `segql` is what arrives. The clock
starts before the INSERT and stops when the listener thread is woken by the notification.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import psycopg
from psycopg import sql

from benchmarks import segments
from benchmarks.harness import Context, Goal, Result, percentile

NAME = "latency"
BASELINE_CHANNEL = "bench_baseline"
WARMUP = 20
WAIT_SECONDS = 5.0
GOALS = {50: Goal("≤ 10 ms", max_segql=10.0), 99: Goal("≤ 50 ms", max_segql=50.0)}

Write = Callable[[psycopg.Connection, int], None]


def run(ctx: Context) -> list[Result]:
    n = ctx.scale.round_trips
    with ctx.scratch("latency_base") as url:
        baseline = _round_trips(url, BASELINE_CHANNEL, _insert_and_notify, n)
    ctx.log(f"INSERT+NOTIFY p50 {percentile(baseline, 50):.2f} ms")
    skipped = segments.availability()
    measured = None
    if not skipped:
        with ctx.scratch("latency_segql") as url:
            segments.deploy_text(url, segments.latency_definition())
            measured = _round_trips(url, segments.NOTIFY_CHANNEL, _insert_entering_event, n)
    return [_result(q, n, baseline, measured, skipped) for q in (50, 99)]


def _result(
    q: int, n: int, baseline: list[float], measured: list[float] | None, skipped: str | None
) -> Result:
    return Result(
        NAME,
        f"INSERT -> notification p{q}, {n:,} round trips",
        "ms",
        segql=percentile(measured, q) if measured else None,
        baseline=percentile(baseline, q),
        goal=GOALS[q],
        note=skipped or "",
        details={
            "baseline_max_ms": baseline[-1],
            "segql_max_ms": measured[-1] if measured else None,
        },
    )


def _insert_and_notify(writer: psycopg.Connection, i: int) -> None:
    with writer.transaction():
        writer.execute(
            "INSERT INTO segql.events (user_id, name, props) VALUES (%s, 'add_to_cart', '{}')",
            (f"lat{i}",),
        )
        writer.execute("SELECT pg_notify(%s, %s)", (BASELINE_CHANNEL, str(i)))


def _insert_entering_event(writer: psycopg.Connection, i: int) -> None:
    writer.execute(
        "INSERT INTO segql.events (user_id, name, props) VALUES (%s, 'add_to_cart', '{}')",
        (f"lat{i}",),
    )


def _round_trips(url: str, channel: str, write: Write, n: int) -> list[float]:
    """Sorted latencies in milliseconds of `n` round trips after a short warm-up."""
    with (
        psycopg.connect(url, autocommit=True) as listener,
        psycopg.connect(url, autocommit=True) as writer,
    ):
        listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        arrivals: queue.SimpleQueue[float] = queue.SimpleQueue()
        stop = threading.Event()
        thread = threading.Thread(target=_listen, args=(listener, arrivals, stop), daemon=True)
        thread.start()
        try:
            samples = [_one(writer, write, i, arrivals, channel) for i in range(WARMUP + n)]
        finally:
            stop.set()
            thread.join()
    return sorted(samples[WARMUP:])


def _one(
    writer: psycopg.Connection,
    write: Write,
    i: int,
    arrivals: queue.SimpleQueue[float],
    channel: str,
) -> float:
    started = time.perf_counter()
    write(writer, i)
    try:
        arrived = arrivals.get(timeout=WAIT_SECONDS)
    except queue.Empty:
        raise RuntimeError(
            f"no notification on channel {channel!r} within {WAIT_SECONDS} s"
        ) from None
    return (arrived - started) * 1000


def _listen(
    conn: psycopg.Connection, arrivals: queue.SimpleQueue[float], stop: threading.Event
) -> None:
    """The listener owns its connection and runs nothing on it but waiting for notifications."""
    while not stop.is_set():
        for _ in conn.notifies(timeout=0.1):
            arrivals.put(time.perf_counter())
