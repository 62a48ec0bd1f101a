"""Deploying a segment over existing history: segql's backfill against the bare full query.

On the largest history of the scale with 50 segments deployed, in the database the maintenance
scenario measures last (see `maintenance.largest`), one new segment at a time is deployed through
`segql.deploy.deploy`, the path of `segql deploy FILE`: it re-checks the deployed definitions,
swaps in the new program, backfills any new shared feature and evaluates the new segment for
every user, 5,000 at a time. segql's figure is that whole deploy and its commit; the baseline is
the new segment's own full query, run right after it (and which must return exactly the members
the deploy found). One segment of each shape: windowed, an unwindowed aggregate over a feature
no deployed segment reads yet, and traits only.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg

from benchmarks.harness import Context, Result
from benchmarks.scenarios import maintenance
from benchmarks.scenarios.maintenance import AtMost, Size

NAME = "backfill"
GOAL = AtMost("≤ 1.5x the full query", max_ratio=1.5)
SEGMENTS = (
    (
        "windowed",
        "bench_backfill_windowed",
        "event_count('product_viewed', within => '36 hours') >= 3 "
        "AND NOT did('purchase', within => '36 hours')",
    ),
    ("unwindowed aggregate", "bench_backfill_aggregate", "event_count('add_to_cart') >= 3"),
    ("trait", "bench_backfill_trait", "plan = 'premium' AND device = 'ios'"),
)


def run(ctx: Context) -> list[Result]:
    return maintenance.largest(ctx).backfill


def measure(ctx: Context, url: str, size: Size, skipped: str | None) -> list[Result]:
    results = []
    for kind, name, condition in SEGMENTS:
        result = Result(
            NAME,
            f"deploy a {kind} segment over {size.events:,} events of history",
            "s",
            goal=GOAL,
            note=skipped or "",
        )
        if not skipped:
            deployed = _deploy(url, f"CREATE SEGMENT {name} AS {condition};\n")
            result.segql = deployed.pop("seconds")
            result.baseline = _full_query(url, name)
            ctx.log(
                f"{name}: deploy {result.segql:.2f} s (backfill calls "
                f"{deployed['backfill_calls_seconds']:.2f} s), full query "
                f"{result.baseline:.2f} s"
            )
            result.details = {"definition": condition, **deployed}
        results.append(result)
    return results


def _deploy(url: str, text: str) -> dict[str, Any]:
    """Deploy `text` as `segql deploy` does; seconds in all, and how they divide."""
    from segql.deploy import deploy
    from segql.parse import parse_text

    marks: list[float] = []
    with psycopg.connect(url) as conn:
        tracked = maintenance.track_functions(conn)
        # An open transaction makes deploy's own a savepoint, so this transaction's function
        # times can be read before the commit.
        conn.execute("SELECT 1")
        started = time.perf_counter()
        deploy(
            conn,
            parse_text(text, "<benchmark backfill>"),
            progress=lambda _segment, _done, _total: marks.append(time.perf_counter()),
        )
        deployed = time.perf_counter() - started
        functions = maintenance.function_times(conn) if tracked else {}
        started = time.perf_counter()
        conn.commit()
        seconds = deployed + time.perf_counter() - started
    calls = marks[-1] - marks[0] if marks else 0.0
    return {
        "seconds": seconds,
        "backfill_calls_seconds": round(calls, 3),
        "rest_of_deploy_seconds": round(seconds - calls, 3),
        "where_the_time_goes": functions,
    }


def _full_query(url: str, name: str) -> float:
    """Seconds to run the segment's full query; raises unless it returns exactly its members."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT full_query FROM segql.segments WHERE name = %s", [name])
        query = row.fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        full = {r[0] for r in conn.execute(query.encode())}
        seconds = time.perf_counter() - started
        members = {
            r[0]
            for r in conn.execute("SELECT user_id FROM segql.members WHERE segment = %s", [name])
        }
    if full != members:
        raise RuntimeError(
            f"{name}: the deploy's backfill found {len(members)} members, "
            f"the full query {len(full)} ({len(members ^ full)} differ)"
        )
    return seconds
