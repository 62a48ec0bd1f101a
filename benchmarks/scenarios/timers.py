"""The timer worker: how many due timers it drains per second, and how late it acts.

What it will measure: with many timers due at once (windows expiring, "days since" crossing),
the rate at which the worker applies them; and, with timers spread over time, how long after
each timer's due_at the membership change is committed.
"""

from __future__ import annotations

from benchmarks.harness import Context, Result, not_yet_measured

NAME = "timers"


def run(ctx: Context) -> list[Result]:
    return [
        not_yet_measured(
            NAME, "timers drained", "timers/s", needs="timers and the worker", goal="≥ 10,000/s"
        ),
        not_yet_measured(
            NAME, "worker lateness p99", "ms", needs="timers and the worker", goal="≤ 1,000 ms"
        ),
    ]
