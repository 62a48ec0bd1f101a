"""The timer worker: how fast it drains due timers, and how late after their due time it acts.

Drain: one windowed segment, the clock pinned, N users' events in one COPY (so N members and N
timers), the pinned clock moved past the window, then `SELECT segql.tick(10000)` in its own
transaction until it returns 0, as `segql worker` runs it. Once with every timer due at the same
instant (a campaign's window closing), once with every timer at its own instant (the usual shape
on the real clock, where every event has its own timestamp). Baseline: the least a hand-built
system does to apply the same expiries, one statement over the same rows in the same tables:
DELETE the timers RETURNING them, DELETE those memberships, INSERT the exits into the change log.

Lateness: the real clock, a live worker, U users whose windows close at instants spread over S
seconds, and a listener recording when each `segql` notification arrives. Lateness is arrival
minus the change's `at` (its due time), with the client's clock mapped onto the server's.
Baseline: the same timers applied by `segql.tick()` on a one-second polling grid, which is what
`segql worker --install-cron` schedules with pg_cron.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result, percentile
from segql import worker

NAME = "timers"
BATCH = 10_000
T0 = data.END  # the pinned clock while the drain's events arrive

Ticker = Callable[[str, worker.StopEvent], None]  # applies due timers until the event is set


@dataclass(frozen=True)
class Sizes:
    at_once: int  # timers due at one instant
    distinct: int  # timers due at distinct instants
    late_users: int  # timers for the lateness measurement ...
    late_spread: float  # ... due over this many seconds


SIZES = {
    "smoke": Sizes(5_000, 500, 20, 1.0),
    "small": Sizes(100_000, 2_000, 200, 10.0),
    "full": Sizes(1_000_000, 10_000, 200, 10.0),
}


@dataclass(frozen=True)
class AtLeast(Goal):
    """segql's own figure must be at least `min_segql` (the harness's Goal has no such bound)."""

    min_segql: float = 0.0

    def met(self, result: Result) -> bool | None:
        return None if result.segql is None else result.segql >= self.min_segql


DRAIN_GOAL = AtLeast("≥ 20,000/s", min_segql=20_000)
LATENESS_GOALS = {50: Goal("≤ 50 ms", max_segql=50.0), 99: Goal("≤ 250 ms", max_segql=250.0)}


def run(ctx: Context) -> list[Result]:
    sizes = SIZES[ctx.scale.name]
    skipped = segments.availability()
    # One scratch database for every measurement, emptied in between: creating and dropping a
    # database costs a checkpoint each, more than the smoke scale's measurements themselves.
    with ctx.scratch("timers") as url:
        if not skipped:
            segments.deploy_text(url, SEGMENTS)
        results = [
            _drain_result(ctx, url, sizes.at_once, timedelta(0), skipped),
            _drain_result(ctx, url, sizes.distinct, timedelta(milliseconds=1), skipped),
        ]
        grid = measured = None
        if not skipped:
            grid = _lateness(ctx, url, sizes, _polling_grid, "a 1 s polling grid")
            measured = _lateness(ctx, url, sizes, _live_worker, "the worker")
    for q in (50, 99):
        results.append(
            Result(
                NAME,
                f"worker lateness p{q}, {sizes.late_users:,} timers over {sizes.late_spread:g} s",
                "ms",
                segql=percentile(measured.client_ms, q) if measured else None,
                baseline=percentile(grid.client_ms, q) if grid else None,
                goal=LATENESS_GOALS[q],
                note=skipped or "",
                details={
                    "baseline": "segql.tick() every second, pg_cron's grid",
                    "segql_server_ms": percentile(measured.server_ms, q) if measured else None,
                    "segql_max_ms": measured.client_ms[-1] if measured else None,
                    "baseline_max_ms": grid.client_ms[-1] if grid else None,
                    "clock_offset_ms": measured.offset_ms if measured else None,
                },
            )
        )
    return results


LATENESS_WINDOW = 20  # seconds; longer than any scale's spread, so every probe enters at once
SEGMENTS = (
    "CREATE SEGMENT bench_timers AS did('add_to_cart', within => '1 hour');\n"
    "CREATE SEGMENT bench_lateness AS "
    f"did('lateness_probe', within => '{LATENESS_WINDOW} seconds');\n"
)


def _empty(url: str) -> None:
    """Back to no users, no state, no changes, the clock unpinned; the segments stay deployed."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "TRUNCATE segql.events, segql.users, segql.feature_state, segql.members, "
            "segql.user_groups, "
            "segql.changes, segql.timers"
        )
        conn.execute("UPDATE segql.clock SET pinned_at = NULL")


def _checkpoint(ctx: Context, url: str) -> None:
    # At smoke scale the figures only show that the scenario works, and a checkpoint on a busy
    # server would take longer than everything measured.
    if ctx.scale.name != "smoke":
        with psycopg.connect(url) as conn:
            data.checkpoint(conn)


# -- drain ---------------------------------------------------------------------------------------


def _drain_result(ctx: Context, url: str, n: int, spread: timedelta, skipped: str | None) -> Result:
    shape = "one instant" if not spread else "distinct instants"
    _empty(url)
    baseline = _baseline_drain(ctx, url, n, spread)
    ctx.log(f"{n:,} expiries at {shape} by hand: {baseline:,.0f}/s")
    measured: dict[str, float] = {}
    if not skipped:
        _empty(url)
        measured = _segql_drain(ctx, url, n, spread)
        ctx.log(f"{n:,} timers at {shape} by segql.tick(): {measured['rate']:,.0f}/s")
    return Result(
        NAME,
        f"timers drained, {n:,} due at {shape}",
        "timers/s",
        segql=measured.get("rate"),
        baseline=baseline,
        goal=DRAIN_GOAL,
        note=skipped or "",
        details={k: v for k, v in measured.items() if k != "rate"},
    )


def _events_copy(n: int, spread: timedelta) -> bytes:
    lines = []
    for i in range(n):
        ts = (T0 - spread * i).isoformat()
        lines.append(f"t{i:07d}\tadd_to_cart\t{ts}\t{{}}\n")
    return "".join(lines).encode()


def _segql_drain(ctx: Context, url: str, n: int, spread: timedelta) -> dict[str, float]:
    payload = _events_copy(n, spread)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0])
        conn.commit()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(data.COPY_EVENTS) as copy:
            copy.write(payload)
        conn.commit()
        setup = time.perf_counter() - started
        _expect(conn, "SELECT count(*) FROM segql.timers", n)
        conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0 + timedelta(hours=2)])
        conn.commit()
        conn.execute("ANALYZE segql.timers, segql.members, segql.users")
        conn.commit()
        _checkpoint(ctx, url)

        calls = 0
        started = time.perf_counter()
        while True:
            row = conn.execute(worker.TICK, [BATCH]).fetchone()
            conn.commit()
            calls += 1
            if not row or not row[0]:
                break
        elapsed = time.perf_counter() - started
        _expect(conn, "SELECT count(*) FROM segql.changes WHERE cause = 'time'", n)
        _expect(conn, "SELECT count(*) FROM segql.timers", 0)
    return {"rate": n / elapsed, "seconds": elapsed, "tick_calls": calls, "copy_seconds": setup}


def _baseline_drain(ctx: Context, url: str, n: int, spread: timedelta) -> float:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO segql.timers (segment, user_id, due_at) "
            "SELECT 'bench_timers', 't' || lpad(i::text, 7, '0'), %s - %s * i + interval '1 hour' "
            "FROM generate_series(0, %s - 1) i",
            [T0, spread, n],
        )
        conn.execute(
            "INSERT INTO segql.members (segment, user_id, since) "
            "SELECT segment, user_id, due_at - interval '1 hour' FROM segql.timers"
        )
        conn.commit()
        conn.execute("ANALYZE segql.timers, segql.members")
        conn.commit()
        _checkpoint(ctx, url)
        started = time.perf_counter()
        conn.execute(
            """
            WITH due AS (
                DELETE FROM segql.timers WHERE due_at <= %s RETURNING segment, user_id, due_at
            ), gone AS (
                DELETE FROM segql.members m USING due
                WHERE m.segment = due.segment AND m.user_id = due.user_id
                RETURNING m.segment, m.user_id, due.due_at
            )
            INSERT INTO segql.changes (segment, user_id, kind, at, cause, version)
            SELECT segment, user_id, 'exit', due_at, 'time', 1 FROM gone
            """,
            [T0 + timedelta(hours=2)],
        )
        conn.commit()
        elapsed = time.perf_counter() - started
        _expect(conn, "SELECT count(*) FROM segql.changes", n)
    return n / elapsed


def _expect(conn: psycopg.Connection, query: str, expected: int) -> None:
    row = conn.execute(query.encode()).fetchone()
    got = row[0] if row else None
    if got != expected:
        raise RuntimeError(f"{query!r} gave {got}, expected {expected}")


# -- lateness ------------------------------------------------------------------------------------


@dataclass
class Lateness:
    client_ms: list[float]  # sorted: notification arrival (on the server's clock) - due time
    server_ms: list[float]  # sorted: the tick's transaction start - due time
    offset_ms: float


def _live_worker(url: str, stop: worker.StopEvent) -> None:
    worker.run_worker(url, stop_event=stop)


def _polling_grid(url: str, stop: worker.StopEvent) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.wait(1.0 - time.time() % 1.0):
            conn.execute("SELECT segql.tick()")


def _lateness(ctx: Context, url: str, sizes: Sizes, ticker: Ticker, label: str) -> Lateness:
    _empty(url)
    result = _measure_lateness(url, sizes, ticker)
    ctx.log(
        f"lateness with {label}: p50 {percentile(result.client_ms, 50):.1f} ms, "
        f"p99 {percentile(result.client_ms, 99):.1f} ms"
    )
    return result


def _measure_lateness(url: str, sizes: Sizes, ticker: Ticker) -> Lateness:
    arrivals: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
    stop = worker.StopEvent()
    errors: list[BaseException] = []

    def guarded(target: Callable[..., None], *args: object) -> None:
        try:
            target(*args)
        except BaseException as exc:  # reported by the scenario thread
            errors.append(exc)
            stop.set()

    with psycopg.connect(url, autocommit=True) as listener, psycopg.connect(url) as conn:
        listener.execute("LISTEN segql")
        threads = [
            threading.Thread(target=guarded, args=(_listen, listener, arrivals, stop)),
            threading.Thread(target=guarded, args=(ticker, url, stop)),
        ]
        for t in threads:
            t.start()
        try:
            offset = _clock_offset(conn)
            # Due times from 0.5 s to 0.5 s + spread from now, evenly: ts = due - window.
            conn.execute(
                "INSERT INTO segql.events (user_id, name, ts) "
                "SELECT 'l' || i, 'lateness_probe', "
                "       now() - make_interval(secs => %s) "
                "             + make_interval(secs => 0.5 + %s * i / %s) "
                "FROM generate_series(0, %s - 1) i",
                [LATENESS_WINDOW, sizes.late_spread, sizes.late_users, sizes.late_users],
            )
            conn.commit()
            deadline = time.monotonic() + sizes.late_spread + 10
            while _count_time_exits(conn) < sizes.late_users and not errors:
                if time.monotonic() > deadline:
                    raise RuntimeError("timers were not applied within 10 s of their due time")
                time.sleep(0.1)
            time.sleep(0.2)  # the last notifications are on their way
        finally:
            stop.set()
            for t in threads:
                t.join()
            stop.close()
        if errors:
            raise errors[0]
        rows = conn.execute(
            "SELECT xid::text, extract(epoch FROM at), extract(epoch FROM recorded_at - at) "
            "FROM segql.changes WHERE cause = 'time'"
        ).fetchall()
    first: dict[str, float] = {}
    while not arrivals.empty():
        xid, at = arrivals.get()
        first.setdefault(xid, at)
    missing = [r for r in rows if r[0] not in first]
    if missing:
        raise RuntimeError(f"{len(missing)} timer changes never announced on channel segql")
    client = sorted((first[x] + offset - float(at)) * 1000 for x, at, _ in rows)
    server = sorted(float(s) * 1000 for _, _, s in rows)
    return Lateness(client, server, offset * 1000)


def _listen(
    conn: psycopg.Connection,
    arrivals: queue.SimpleQueue[tuple[str, float]],
    stop: worker.StopEvent,
) -> None:
    """The listener runs nothing but waiting; arrival is stamped on the client's wall clock."""
    while not stop.is_set():
        for note in conn.notifies(timeout=0.1):
            arrivals.put((str(json.loads(note.payload)["xid"]), time.time()))


def _clock_offset(conn: psycopg.Connection) -> float:
    """Server clock minus client clock in seconds, from the round trip with the least delay."""
    best: tuple[float, float] | None = None
    for _ in range(20):
        before = time.time()
        row = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        after = time.time()
        assert row is not None
        sample = (after - before, float(row[0]) - (before + after) / 2)
        best = sample if best is None or sample < best else best
    conn.commit()
    assert best is not None
    return best[1]


def _count_time_exits(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM segql.changes WHERE cause = 'time'").fetchone()
    conn.commit()
    return int(row[0]) if row else 0
