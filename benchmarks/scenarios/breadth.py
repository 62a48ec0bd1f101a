"""COPY throughput with 10 segments of one construct each: distinct_count, active_weeks, after =>.

The same batches as `ingest`, into a fresh database per side: raw COPY with nothing deployed,
then, for each construct, ten segments that use it with varied events, windows and thresholds.
These features are read from the affected users' events at each evaluation (the window's, the
events since the bound, or all of a source's for distinct_count without a window), so the
figure shows what that costs against the raw load.
"""

from __future__ import annotations

from collections.abc import Callable

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
    raw = data.copy_rate(ctx, batches, "breadth_raw", None)
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
            text = definitions(construct)
            result.segql = data.copy_rate(ctx, batches, f"breadth_{label}", text)
            ctx.log(f"COPY with {N_SEGMENTS} {label} segments: {result.segql:,.0f} rows/s")
        results.append(result)
    return results
