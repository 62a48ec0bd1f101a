"""event_count('<event>'[, within => ...]): how many of the user's events match."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="event_count",
    kind="count",
    type="num",
    columns=("cnt",),
    value=lambda c: f"coalesce({c}cnt, 0)",
    falls_with_clock=True,
    counts_events=True,
)
