"""COPY throughput with 10 segments of one construct (sequences, sessions), as a ratio to raw COPY.

Each construct is measured as the ingest scenario measures segments: a fresh database with the
same profiles, the same COPY batches, one committed transaction per batch. The ten segments of a
construct vary its parameters so that they are ten different features over the shop's events.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks import data, segments
from benchmarks.harness import Context, Result

NAME = "journeys"
SEGMENTS = 10


def _sequence(i: int) -> str:
    minutes = (5, 10, 30, 60, 120)[i % 5]
    if i % 2:
        return (
            f"sequence('product_viewed', 'add_to_cart', 'purchase', within => '{minutes} minutes')"
        )
    return f"sequence('product_viewed', 'add_to_cart', within => '{minutes} minutes')"


def _sessions(i: int) -> str:
    days = (1, 3, 7, 14, 30)[i % 5]
    if i % 2:
        return f"avg_session_minutes(within => '{days} days') >= {2 + i}"
    return f"session_count(within => '{days} days') >= {2 + i // 2}"


CONSTRUCTS: dict[str, Callable[[int], str]] = {"sequence": _sequence, "sessions": _sessions}


def definitions(construct: str) -> str:
    condition = CONSTRUCTS[construct]
    return "\n".join(
        f"CREATE SEGMENT bench_{construct}_{i:02d} AS {condition(i)};" for i in range(SEGMENTS)
    )


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    raw = data.copy_rate(ctx, batches, "journeys_raw", None)
    ctx.log(f"raw COPY: {raw:,.0f} rows/s")
    skipped = segments.availability()
    results = []
    for construct in CONSTRUCTS:
        result = Result(
            NAME,
            f"COPY {batches.events:,} events, {SEGMENTS} segments using {construct}",
            "rows/s",
            baseline=raw,
            note=skipped or "",
            details={"batch_size": ctx.scale.batch_size, "example": CONSTRUCTS[construct](0)},
        )
        if not skipped:
            result.segql = data.copy_rate(
                ctx, batches, f"journeys_{construct}", definitions(construct)
            )
            ctx.log(f"COPY with {SEGMENTS} {construct} segments: {result.segql:,.0f} rows/s")
        results.append(result)
    return results
