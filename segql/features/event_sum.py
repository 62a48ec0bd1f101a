"""event_sum('<event>', '<prop>'[, within => ...]): the total of a numeric prop; 0 over none."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="event_sum",
    kind="sum",
    type="num",
    columns=("sum",),
    value=lambda c: f"coalesce({c}sum, 0)",
    takes_prop=True,
)
