"""Per-event maintenance cost as history grows: 100k, 1M and 10M events already stored.

What it will measure: the time segql spends keeping feature state and membership current for one
more event, with the given history in `segql.events`, next to a plain INSERT on the same history.
The design promises work proportional to the change, not to history, so the figure should stay
flat from 100k to 10M. It waits on windowed features leaving at their exact expiry (timers).
"""

from __future__ import annotations

from benchmarks.harness import Context, Result, not_yet_measured

NAME = "maintenance"
HISTORY = (100_000, 1_000_000, 10_000_000)


def run(ctx: Context) -> list[Result]:
    return [
        not_yet_measured(
            NAME,
            f"per-event maintenance, {h:,} events of history",
            "µs/event",
            needs="timers and the worker",
            goal="flat as history grows",
        )
        for h in HISTORY
    ]
