"""What every event-aggregate feature kind declares, and the per-user state they share.

An event aggregate reads one event source (a name or any event, an optional FILTER on props, an
optional window) and keeps its value in a row of *state columns*. The columns are shared: a
count and a sum over the same source are one row with `cnt` and `sum`, so the planner can read a
source once for every kind that needs it. A kind module says which columns it reads and how its
value is computed from them; this module says how each column is aggregated from events, how two
partial aggregates merge (an arriving batch into stored state), and when a windowed value next
changes with no new event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segql import ir


@dataclass(frozen=True)
class StateColumn:
    """One column of an event source's per-user state.

    `aggregate` is SQL over event rows `e`, with `{v}` the numeric prop value and `{t}` its
    text; `merge` combines
    stored state `fs` with a new batch's `excluded` in O(1). Columns whose merge cannot be
    undone (min, max, first, last) are rebuilt from the user's events when events are updated
    or deleted.
    """

    name: str
    sql_type: str
    aggregate: str
    merge: str | None = None  # None: not kept as unwindowed state


STATE_COLUMNS: dict[str, StateColumn] = {
    c.name: c
    for c in (
        StateColumn("cnt", "bigint", "count(*)", "fs.cnt + excluded.cnt"),
        StateColumn("vcnt", "bigint", "count({v})", "fs.vcnt + excluded.vcnt"),
        StateColumn(
            "sum",
            "numeric",
            "sum({v})",
            "CASE WHEN fs.sum IS NULL THEN excluded.sum WHEN excluded.sum IS NULL THEN fs.sum "
            "ELSE fs.sum + excluded.sum END",
        ),
        StateColumn("min", "numeric", "min({v})", "least(fs.min, excluded.min)"),
        StateColumn("max", "numeric", "max({v})", "greatest(fs.max, excluded.max)"),
        StateColumn(
            "first_ts", "timestamptz", "min(e.ts)", "least(fs.first_ts, excluded.first_ts)"
        ),
        StateColumn(
            "last_ts", "timestamptz", "max(e.ts)", "greatest(fs.last_ts, excluded.last_ts)"
        ),
        # Distinct UTC calendar days with an event: only windowed (active_days needs a window).
        StateColumn("days", "bigint", "count(DISTINCT (e.ts AT TIME ZONE 'UTC')::date)"),
        # Distinct ISO weeks (Monday to Sunday, UTC) with an event: like days, read by a scan.
        StateColumn(
            "weeks", "bigint", "count(DISTINCT date_trunc('week', e.ts AT TIME ZONE 'UTC'))"
        ),
        # Distinct values of a prop, as text: read by a scan of the source's events.
        StateColumn("dist", "bigint", "count(DISTINCT {t})"),
    )
}


@dataclass(frozen=True)
class EventAggregate:
    """A feature kind over the user's own events, as the language names it.

    - `function`, `takes_prop`, `needs_window`, `default_event`: its signature for the checker;
    - `type`: what it evaluates to;
    - `columns` and `value`: the state it reads and its value from that state (`c` is the
      column prefix, e.g. `w1.k2_`); over no events the value is what DESIGN.md promises
      (0 for counts and sums, NULL for avg/min/max/first/last);
    - `falls_with_clock`: windowed, its value can only fall as events leave the window (unless
      events stamped in the future are still to enter), which lets the timer skip users whose
      outcome waiting cannot change;
    - `counts_events`: windowed and only compared with constants, it can be read from the
      source's newest timestamps instead of the window's events (see plan.recent_features);
    - `describe`: how `why` names it.
    """

    function: str
    kind: ir.AggKind
    type: ir.Type
    columns: tuple[str, ...]
    value: Callable[[str], str]
    takes_prop: bool = False
    needs_window: bool = False
    default_event: str | None = None
    falls_with_clock: bool = False
    counts_events: bool = False  # its value is a count of matching events (or that one exists)
    scanned: bool = False  # its columns have no O(1) merge: always read from the user's events

    @property
    def usage(self) -> str:
        prop = ", '<prop>'" if self.takes_prop else ""
        window = "within => '<interval>'" if self.needs_window else "[, within => '<interval>']"
        sep = ", " if self.needs_window else ""
        event = "['<event>', ]" if self.default_event is not None else "'<event>'"
        if self.default_event is not None and not self.takes_prop:
            return f"{self.function}({event}{window})"
        return f"{self.function}('<event>'{prop}{sep}{window})"

    def describe(self, args: list[str]) -> str:
        return f"{self.function}({', '.join(args)})"


@dataclass(frozen=True)
class ScanKind:
    """A feature read from the user's own events each time the user is evaluated (sequences,
    sessions): no shared state to keep in step, so updates and deletes are exact as they are.

    - `read(alias, node)`: a LEFT JOIN LATERAL for the outer user `u` at `clk.now`, whose
      columns include `due`, the next instant the value can change with no new event;
    - `grouped(alias, node)`: every user's value in one pass (the full-recompute query), a
      LEFT JOIN on `u.user_id` with the same value columns;
    - `value(alias, node)`: the value from either; `empty(node)`: the value over no events;
    - `events(node)`: the event names whose arrival can change it (None: any event).
    """

    read: Callable[[str, Any], str]
    grouped: Callable[[str, Any], str]
    value: Callable[[str, Any], str]
    empty: Callable[[Any], str]
    events: Callable[[Any], list[str | None]]


def next_change(ts: str, width: str | None, clock: str) -> str:
    """When an event at `ts` next changes a window of `width` ending at `clock`: it enters at its
    ts if stamped after the clock, else it leaves at ts + width (never, with no width: a window
    that only an after => bound opens leaves no event behind with time)."""
    leaves = f"{ts} + {width}" if width is not None else "NULL::timestamptz"
    return f"CASE WHEN {ts} > {clock} THEN {ts} ELSE {leaves} END"
