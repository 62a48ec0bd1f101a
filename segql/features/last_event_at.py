"""last_event_at('<event>'[, within => ...]): the latest matching event's ts; NULL over none."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="last_event_at",
    kind="last",
    type="ts",
    columns=("last_ts",),
    value=lambda c: f"{c}last_ts",
)
