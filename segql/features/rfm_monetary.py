"""rfm_monetary('<event>', '<prop>'[, within => W]): 1..5 from event_sum('<event>', '<prop>'...).

NULL for a user with no such event at all.
"""

from segql.features import event_sum
from segql.features.base import EventAggregate
from segql.features.rfm import RfmScore, sum_of

_SUM = event_sum.KIND

KIND = RfmScore(
    function="rfm_monetary",
    signature=EventAggregate(
        "rfm_monetary", "sum", "num", _SUM.columns, _SUM.value, takes_prop=True
    ),
    windowed=True,
    value=sum_of,
    beats=">",
    cut_type="num",
    meaning="total of the prop",
)
