"""rfm_frequency('<event>'[, within => W]): 1..5 from event_count('<event>'[, within => W]).

NULL for a user with no such event at all; a user whose events are all outside the window has
a count of 0 and scores from it like anyone else.
"""

from segql.features import event_count
from segql.features.base import EventAggregate
from segql.features.rfm import RfmScore, count_of

_COUNT = event_count.KIND

KIND = RfmScore(
    function="rfm_frequency",
    signature=EventAggregate("rfm_frequency", "count", "num", _COUNT.columns, _COUNT.value),
    windowed=True,
    value=count_of,
    beats=">",
    cut_type="num",
    meaning="number of events",
)
