"""active_days(['<event>', ]within => ...): distinct UTC calendar days with a matching event.

Without an event name it counts any event. Only windowed: over all time it would only grow.
"""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="active_days",
    kind="days",
    type="num",
    columns=("days",),
    value=lambda c: f"coalesce({c}days, 0)",
    needs_window=True,
    default_event="*",
    falls_with_clock=True,
    scanned=True,
)
