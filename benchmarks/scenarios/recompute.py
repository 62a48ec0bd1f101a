"""Incremental maintenance against full recompute, for the same batch of events.

On the largest history of the scale with 50 segments deployed, in the database the maintenance
scenario measures last (see `maintenance.largest`): segql's figure is the COPY of the
10,000-event batch through the incremental program, which is that scenario's figure for the
largest history; the baseline is what a system without incremental maintenance does after the
same batch, re-running every segment's full-recompute query (`segql.segments.full_query`) over
all events, one after the other. The full queries are the oracle: each must return exactly the
segment's members, or the scenario fails.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from benchmarks.harness import Context, Goal, Result
from benchmarks.scenarios import maintenance
from benchmarks.scenarios.maintenance import BATCH, SEGMENTS, Size

NAME = "recompute"
GOAL = Goal("≥ 100x cheaper (≤ 0.01x)", max_ratio=0.01)


def run(ctx: Context) -> list[Result]:
    return maintenance.largest(ctx).recompute


def measure(ctx: Context, url: str, size: Size, skipped: str | None) -> list[Result]:
    """Time every full query on `url`, where the batch has just been applied incrementally."""
    incremental, raw = Size.best(size.segql), Size.best(size.baseline)
    result = Result(
        NAME,
        f"{BATCH:,}-event batch on {size.events:,} events of history: incremental vs full "
        f"recompute of {SEGMENTS} segments",
        "ms",
        segql=incremental.seconds * 1000 if incremental else None,
        goal=GOAL,
        note=skipped or "",
    )
    if skipped or incremental is None:
        return [result]
    with psycopg.connect(url) as conn:
        seconds = full_recompute(conn)
    total = sum(seconds.values())
    result.baseline = total * 1000
    ctx.log(
        f"full recompute of {len(seconds)} segments: {total:.2f} s; "
        f"incremental: {incremental.seconds:.3f} s ({total / incremental.seconds:,.0f}x cheaper)"
    )
    details: dict[str, Any] = {
        "full_over_incremental": round(total / incremental.seconds, 1),
        # segql's figure includes writing the events; this is the maintenance alone.
        "incremental_less_raw_copy_ms": round((incremental.seconds - raw.seconds) * 1000, 1)
        if raw
        else None,
        "full_ms_by_kind": _by_kind(seconds),
        "oracle": f"members equal the full query's result for all {len(seconds)} segments",
    }
    if result.met is False:
        details["where_the_time_goes"] = {"generated_functions_ms": incremental.functions}
    result.details = details
    return [result]


def full_recompute(conn: psycopg.Connection) -> dict[str, float]:
    """Seconds per segment to run its full query; raises unless it returns exactly the members."""
    segments = conn.execute("SELECT name, full_query FROM segql.segments ORDER BY name").fetchall()
    seconds: dict[str, float] = {}
    wrong: list[str] = []
    for name, query in segments:
        started = time.perf_counter()
        full = {r[0] for r in conn.execute(query.encode())}
        seconds[name] = time.perf_counter() - started
        members = {
            r[0]
            for r in conn.execute("SELECT user_id FROM segql.members WHERE segment = %s", [name])
        }
        if full != members:
            wrong.append(
                f"{name} ({len(members - full)} members not in the full query, "
                f"{len(full - members)} missing)"
            )
    conn.commit()
    if wrong:
        raise RuntimeError(
            "incremental membership differs from full recompute: " + "; ".join(wrong)
        )
    return seconds


def _by_kind(seconds: dict[str, float]) -> dict[str, float]:
    """Milliseconds summed per kind of benchmark segment (bench_<kind>_<n>)."""
    kinds: dict[str, float] = {}
    for name, s in seconds.items():
        kind = name.removeprefix("bench_").rsplit("_", 1)[0]
        kinds[kind] = kinds.get(kind, 0.0) + s * 1000
    return {k: round(v, 1) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])}
