"""COPY throughput: raw `segql.events` with nothing deployed, then with 0, 10 and 50 segments.

Every side starts from a fresh database with the same profiles and replays the same COPY batches,
one committed transaction per batch, so statement-level triggers run once per batch as they would
under a steady stream of loads. The 50-segment database is kept for `state` and `insert`, which
would otherwise repeat the same load (`benchmarks.loaded`).
"""

from __future__ import annotations

import contextlib
import time

import psycopg

from benchmarks import data, loaded, segments
from benchmarks.harness import Context, Goal, Result

NAME = "ingest"
GOAL = Goal("≥ 0.5x raw COPY", min_ratio=0.5)
GOAL_AT_SEGMENTS = 50


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    raw = _rows_per_second(ctx, batches, "raw", None)
    ctx.log(f"raw COPY: {raw:,.0f} rows/s")
    skipped = segments.availability()
    results = []
    for n in ctx.scale.segment_counts:
        result = Result(
            NAME,
            f"COPY {batches.events:,} events, {n} segments",
            "rows/s",
            baseline=raw,
            goal=GOAL if n == GOAL_AT_SEGMENTS else None,
            note=skipped or "",
            details={"batch_size": ctx.scale.batch_size, "batches": len(batches.batches)},
        )
        if not skipped:
            result.segql = _rows_per_second(ctx, batches, f"seg{n}", n)
            ctx.log(f"COPY with {n} segments: {result.segql:,.0f} rows/s")
        results.append(result)
    return results


def _rows_per_second(
    ctx: Context, batches: data.EventBatches, label: str, n_segments: int | None
) -> float:
    """Load profiles, deploy (unless raw), then time COPY of every batch into an empty table."""
    keep = segments.availability() is None and loaded.wanted(ctx, n_segments)
    database = (
        contextlib.nullcontext(ctx.kept("loaded")) if keep else ctx.scratch(f"ingest_{label}")
    )
    with database as url:
        data.load_profiles(url, ctx)
        if n_segments is not None:
            segments.deploy_segments(url, n_segments)
        with psycopg.connect(url) as conn:
            if ctx.scale.checkpoint:
                data.checkpoint(conn)
            started = time.perf_counter()
            rows = data.copy_batches(conn, batches)
            elapsed = time.perf_counter() - started
            if keep:
                loaded.remember(ctx, url, conn, rows, elapsed)
    ctx.log(f"{label}: {rows:,} rows in {elapsed:.2f} s")
    return rows / elapsed
