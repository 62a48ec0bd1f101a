"""did('<event>'[, within => ...]): whether the user has at least one matching event."""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="did",
    kind="did",
    type="bool",
    columns=("cnt",),
    value=lambda c: f"(coalesce({c}cnt, 0) > 0)",
    falls_with_clock=True,
    counts_events=True,
)
