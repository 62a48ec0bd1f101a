"""event_min('<event>', '<prop>'[, within => ...]): the smallest numeric value; NULL over none."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="event_min",
    kind="min",
    type="num",
    columns=("min",),
    value=lambda c: f"{c}min",
    takes_prop=True,
)
