"""event_max('<event>', '<prop>'[, within => ...]): the largest numeric value; NULL over none."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="event_max",
    kind="max",
    type="num",
    columns=("max",),
    value=lambda c: f"{c}max",
    takes_prop=True,
)
