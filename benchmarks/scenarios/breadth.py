"""COPY throughput with 10 segments of one construct each: distinct_count, active_weeks, after =>.

The same batches as `ingest`, into a fresh database per side: raw COPY with nothing deployed,
then, for each construct, ten segments that use it with varied events, windows and thresholds.
These features are read from the affected users' events at each evaluation (the window's, the
events since the bound, or all of a source's for distinct_count without a window), so the
figure shows what that costs against the raw load.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Result

NAME = "breadth"
N_SEGMENTS = 10


def _distinct(i: int) -> str:
    event = ("purchase", "product_viewed", "add_to_cart")[i % 3]
    within = ("", ", within => '7 days'", ", within => '30 days'")[(i // 3) % 3]
    return f"distinct_count('{event}', 'category'{within}) >= {2 + i % 3}"


def _weeks(i: int) -> str:
    event = ("", "'app_open', ", "'product_viewed', ", "'purchase', ")[i % 4]
    return f"active_weeks({event}within => '{7 * (2 + i % 3)} days') >= {1 + i % 3}"


def _after(i: int) -> str:
    if i % 3 == 0:
        return f"event_sum('add_to_cart', 'line_total', after => 'purchase') > {50 * (1 + i // 3)}"
    if i % 3 == 1:
        return f"event_count('product_viewed', within => '2 days', after => 'purchase') >= {i}"
    return f"event_sum('add_to_cart', 'quantity', after => 'purchase') >= {1 + i // 3}"


CONSTRUCTS: tuple[tuple[str, Callable[[int], str]], ...] = (
    ("distinct_count", _distinct),
    ("active_weeks", _weeks),
    ("after =>", _after),
)


def definitions(construct: Callable[[int], str]) -> str:
    return "\n".join(
        f"CREATE SEGMENT bench_breadth_{i:02d} AS {construct(i)};" for i in range(N_SEGMENTS)
    )


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    raw = _rows_per_second(ctx, batches, "raw", None)
    ctx.log(f"raw COPY: {raw:,.0f} rows/s")
    skipped = segments.availability()
    results = []
    for label, construct in CONSTRUCTS:
        result = Result(
            NAME,
            f"COPY {batches.events:,} events, {N_SEGMENTS} segments of {label}",
            "rows/s",
            baseline=raw,
            note=skipped or "",
            details={"batch_size": ctx.scale.batch_size, "example": construct(0)},
        )
        if not skipped:
            result.segql = _rows_per_second(ctx, batches, label, definitions(construct))
            ctx.log(f"COPY with {N_SEGMENTS} {label} segments: {result.segql:,.0f} rows/s")
        results.append(result)
    return results


def _rows_per_second(
    ctx: Context, batches: data.EventBatches, label: str, text: str | None
) -> float:
    slug = "".join(c for c in label if c.isalnum() or c == "_")
    with ctx.scratch(f"breadth_{slug}") as url:
        data.load_profiles(url, ctx)
        if text is not None:
            segments.deploy_text(url, text)
        with psycopg.connect(url) as conn:
            if ctx.scale.checkpoint:
                data.checkpoint(conn)
            started = time.perf_counter()
            rows = data.copy_batches(conn, batches)
            elapsed = time.perf_counter() - started
    ctx.log(f"{label}: {rows:,} rows in {elapsed:.2f} s")
    return rows / elapsed
