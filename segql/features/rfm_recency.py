"""rfm_recency('<event>'): 1..5, 5 = most recent; NULL for a user with no such event.

The value is the duration now() - last_event_at('<event>'); it beats a cutpoint when it is
strictly shorter, so the score falls at the exact instant the duration reaches a cutpoint.
"""

from segql.features.base import EventAggregate
from segql.features.rfm import RfmScore, since_last

KIND = RfmScore(
    function="rfm_recency",
    signature=EventAggregate("rfm_recency", "last", "ts", ("last_ts",), lambda c: f"{c}last_ts"),
    windowed=False,
    value=since_last,
    beats="<",
    cut_type="interval",
    meaning="time since the last event",
)
