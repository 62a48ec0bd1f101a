"""RFM: COPY throughput with the classic RFM map (examples/rfm.sql) deployed next to the 50
benchmark segments, as a ratio to raw COPY, and the time of `segql refresh` for every user.

Both sides load the first half of the run's events before any clock starts (the segql side
then deploys, computing cutpoints over that history, so scores and recency timers are real
during the timed part) and time the COPY of the second half, one transaction per batch. The
refresh is timed once at the end, over every user the events name (the scale's users), beside
the time of computing the cutpoints alone, so the rest is the re-evaluation of every user in
the segments that read scores (timers due after the load are applied first, untimed).
"""

from __future__ import annotations

import time

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result

NAME = "rfm"
GOAL = Goal("≥ 0.5x raw COPY", min_ratio=0.5)
BENCH_SEGMENTS = 50


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    history, timed = _halves(batches, ctx.scale.batch_size)
    raw, _ = _measure(ctx, history, timed, deploy=False)
    ctx.log(f"raw COPY: {raw:,.0f} rows/s")
    copy = Result(
        NAME,
        f"COPY {timed.events:,} events, RFM map + {BENCH_SEGMENTS} segments",
        "rows/s",
        baseline=raw,
        goal=GOAL,
        details={"history_events": history.events, "batch_size": ctx.scale.batch_size},
    )
    refresh = Result(
        NAME,
        f"segql refresh, {ctx.scale.users:,} users",
        "s",
        note="baseline: computing the cutpoints alone",
    )
    skipped = segments.availability()
    if skipped:
        copy.note = refresh.note = skipped
        return [copy, refresh]
    copy.segql, timings = _measure(ctx, history, timed, deploy=True)
    refresh.segql, refresh.baseline = timings["refresh"], timings["cutpoints"]
    refresh.details = {"users": timings["users"], "scores": timings["scores"]}
    ctx.log(f"COPY with the RFM map: {copy.segql:,.0f} rows/s; refresh {refresh.segql:.2f} s")
    return [copy, refresh]


def _halves(
    batches: data.EventBatches, batch_size: int
) -> tuple[data.EventBatches, data.EventBatches]:
    half = len(batches.batches) // 2
    first = data.EventBatches(batches.path, batches.batches[:half], half * batch_size)
    rest = data.EventBatches(batches.path, batches.batches[half:], batches.events - first.events)
    return first, rest


def _measure(
    ctx: Context, history: data.EventBatches, timed: data.EventBatches, deploy: bool
) -> tuple[float, dict[str, float]]:
    label = "rfm_segql" if deploy else "rfm_raw"
    timings: dict[str, float] = {}
    with ctx.scratch(label) as url:
        data.load_profiles(url, ctx)
        with psycopg.connect(url) as conn:
            data.copy_batches(conn, history)
        if deploy:
            segments.deploy_text(url, segments.definitions(BENCH_SEGMENTS) + segments.rfm_map())
        with psycopg.connect(url) as conn:
            if ctx.scale.checkpoint:
                data.checkpoint(conn)
            started = time.perf_counter()
            rows = data.copy_batches(conn, timed)
            elapsed = time.perf_counter() - started
            ctx.log(f"{label}: {rows:,} rows in {elapsed:.2f} s")
            if deploy:
                timings = _refresh(conn)
    return rows / elapsed, timings


def _refresh(conn: psycopg.Connection) -> dict[str, float]:
    from segql import rfm, run

    # Timers that fell due during the load are the tick's work, not the refresh's.
    run.tick(conn)
    computes = [r[0] for r in conn.execute("SELECT compute_sql FROM segql.rfm_cutpoints")]
    started = time.perf_counter()
    for compute in computes:
        conn.execute(compute.encode())
    cutpoints = time.perf_counter() - started
    conn.rollback()
    result = rfm.refresh(conn)
    return {
        "refresh": result.seconds,
        "cutpoints": cutpoints,
        "users": float(result.users),
        "scores": float(result.scores),
    }
