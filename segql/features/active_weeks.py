"""active_weeks(['<event>', ]within => ...): distinct ISO weeks (UTC) with a matching event.

Weeks run Monday 00:00 to Sunday 24:00 in UTC, as `date_trunc('week', ...)` cuts them. Like
active_days it is only windowed (by `within` or `after`) and read from the window's events; a
week drops out exactly when its last event in the window leaves it.
"""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="active_weeks",
    kind="weeks",
    type="num",
    columns=("weeks",),
    value=lambda c: f"coalesce({c}weeks, 0)",
    needs_window=True,
    default_event="*",
    falls_with_clock=True,
    scanned=True,
)
