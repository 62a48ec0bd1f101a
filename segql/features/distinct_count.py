"""distinct_count('<event>', '<prop>'[, within => ...]): how many distinct values a prop takes.

Values are compared as text (`props ->> '<prop>'`), so `"shoes"` and `"Shoes"` differ while
`1` and `"1"` are one value; a missing prop and JSON null are not values. 0 over no events.
Read from the source's events (the window's, or every one without a window), so repeated values
and deletes need no bookkeeping; a value leaves a window when its last event there does.
"""

from segql.features.base import EventAggregate

KIND = EventAggregate(
    function="distinct_count",
    kind="distinct",
    type="num",
    columns=("dist",),
    value=lambda c: f"coalesce({c}dist, 0)",
    takes_prop=True,
    falls_with_clock=True,
    scanned=True,
)
