"""first_event_at('<event>'[, within => ...]): the earliest matching event's ts; NULL over none."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="first_event_at",
    kind="first",
    type="ts",
    columns=("first_ts",),
    value=lambda c: f"{c}first_ts",
)
