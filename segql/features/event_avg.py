"""event_avg('<event>', '<prop>'[, within => ...]): the mean of the numeric values; NULL over none.

Kept as a sum and a count of values, so an arriving event updates it in O(1).
"""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="event_avg",
    kind="avg",
    type="num",
    columns=("sum", "vcnt"),
    value=lambda c: f"({c}sum / NULLIF({c}vcnt, 0))",
    takes_prop=True,
)
