"""Incremental maintenance against full recompute, for the same batch of events.

What it will measure: applying a batch of events through the incremental program, next to
re-running every deployed segment's full-recompute query over all events afterwards. The two
must agree (the full query is the oracle); the incremental side should be far cheaper.
"""

from __future__ import annotations

from benchmarks.harness import Context, Result, not_yet_measured

NAME = "recompute"


def run(ctx: Context) -> list[Result]:
    return [
        not_yet_measured(
            NAME,
            "incremental vs full recompute, one batch",
            "ms",
            needs="timers and the worker",
            goal="incremental ≤ 0.1x full",
        )
    ]
