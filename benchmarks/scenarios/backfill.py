"""Deploying a segment over existing history: segql's backfill against the bare full query.

What it will measure: the time `segql deploy` takes to backfill membership for a new segment
over the history already stored, next to running that segment's full query by itself.
"""

from __future__ import annotations

from benchmarks.harness import Context, Result, not_yet_measured

NAME = "backfill"


def run(ctx: Context) -> list[Result]:
    return [
        not_yet_measured(
            NAME,
            "backfill on deploy vs full query",
            "s",
            needs="timers and the worker",
            goal="≤ 1.5x the full query",
        )
    ]
