"""Feature kinds: one module per kind of per-user value a segment can read.

Each module declares a `KIND` (see `base.EventAggregate`): its signature for the checker, the
state it reads, its value, how it moves with the clock and how `why` names it. The checker,
the generator and `why` look kinds up here, so adding vocabulary is adding a module and a line
to `_MODULES`, not editing a switch.
"""

from __future__ import annotations

from segql import ir
from segql.features import (
    active_days,
    active_weeks,
    did,
    distinct_count,
    event_avg,
    event_count,
    event_max,
    event_min,
    event_sum,
    first_event_at,
    last_event_at,
    rfm_frequency,
    rfm_monetary,
    rfm_recency,
    sequence,
    sessions,
)
from segql.features.base import (
    STATE_COLUMNS,
    EventAggregate,
    ScanKind,
    StateColumn,
    next_change,
)
from segql.features.rfm import RfmScore

_MODULES = (
    event_count,
    did,
    event_sum,
    event_avg,
    event_min,
    event_max,
    first_event_at,
    last_event_at,
    active_days,
    active_weeks,
    distinct_count,
)

AGGREGATES: dict[str, EventAggregate] = {m.KIND.function: m.KIND for m in _MODULES}
_BY_KIND: dict[str, EventAggregate] = {m.KIND.kind: m.KIND for m in _MODULES}

# Scores place an aggregate among the population's values (see features.rfm).
SCORES: dict[str, RfmScore] = {
    m.KIND.function: m.KIND for m in (rfm_recency, rfm_frequency, rfm_monetary)
}


def of(agg: ir.Agg) -> EventAggregate:
    """The kind module of a checked aggregate."""
    return _BY_KIND[agg.kind]


def scan_kind(node: ir.Scan) -> ScanKind:
    """The kind module of a sequence or session feature."""
    return sequence.KIND if isinstance(node, ir.Sequence) else sessions.KIND


def value(agg: ir.Agg, alias: str, prefix: str = "") -> str:
    """An aggregate's value read from a state row `alias` whose columns carry `prefix`."""
    return of(agg).value(f"{alias}.{prefix}")


__all__ = [
    "AGGREGATES",
    "SCORES",
    "STATE_COLUMNS",
    "EventAggregate",
    "RfmScore",
    "ScanKind",
    "StateColumn",
    "next_change",
    "of",
    "scan_kind",
    "value",
]
