"""sequence('a', 'b', ... [, within => W] [, since => L]): the steps happened in this order.

True when the user has events e1, e2, ... matching the steps with e1.ts < e2.ts < ..., the last
at or before now(), spanning at most W (last.ts - first.ts <= W) and, with `since`, the first
after now() - L. Over no events it is false.

The two sides compute it differently, so that the oracle checks one against the other:

- the incremental read follows chains greedily, one index probe per step through
  `(user_id, name, ts)`: without `within`, forward from the earliest first step in range (each
  next step the earliest after the previous one); with `within`, back from each candidate last
  step (each earlier step the latest before the next one, within the span);
- the full query keeps, for every event of step k, the latest first step of any chain through
  it (a running maximum over the previous step's events, strictly earlier in ts): the latest
  start gives both the shortest span and the most recent first step.

With no new event, the value changes only when a chain's end comes due (an event stamped after
the clock) or, with `since`, when a chain's first step leaves the lookback (at its ts + L).
"""

from __future__ import annotations

from segql import ir
from segql.features.base import ScanKind
from segql.render import event_match, seconds

EARLIER = "interval '1 microsecond'"  # timestamps have microsecond resolution


def events(seq: ir.Sequence) -> list[str | None]:
    """The event names the steps read (None: any event)."""
    return [s.event for s in seq.steps]


def value(alias: str, seq: ir.Sequence) -> str:
    return f"coalesce({alias}.hit, false)"


def read(alias: str, seq: ir.Sequence) -> str:
    """The outer user's value at its own instant `clk.now`, and the next instant it can change
    with no new event (`due`), from that user's events only."""
    if seq.window is None:
        return _forward(alias, seq)
    return _backward(alias, seq)


def _forward(alias: str, seq: ir.Sequence) -> str:
    """Without a span, the earliest first step in range decides: from it, each next step is the
    earliest matching event after the previous one, which gives the earliest chain end, and
    later first steps can only end later."""
    steps = seq.steps
    start = ["e.user_id = u.user_id", event_match(steps[0].event, steps[0].filter)]
    if seq.since is not None:
        start.append(f"e.ts > clk.now - {seconds(seq.since)}")
    parts = [
        f"(SELECT e.ts FROM segql.events e WHERE {' AND '.join(start)} ORDER BY e.ts LIMIT 1) s1"
    ]
    for number, step in enumerate(steps[1:], start=2):
        cond = ["e.user_id = u.user_id", event_match(step.event, step.filter)]
        cond.append(f"e.ts > s{number - 1}.ts")
        parts.append(
            f"CROSS JOIN LATERAL (SELECT min(e.ts) AS ts FROM segql.events e "
            f"WHERE {' AND '.join(cond)}) s{number}"
        )
    last = f"s{len(steps)}.ts"
    leaves = ""
    if seq.since is not None:
        # The first step is read only while inside the lookback, so ts + L is still ahead.
        leaves = f" WHEN {last} IS NOT NULL THEN s1.ts + {seconds(seq.since)}"
    due_at = f"CASE WHEN {last} > clk.now THEN {last}{leaves} END"
    return (
        f"LEFT JOIN LATERAL (SELECT bool_or({last} <= clk.now) AS hit, min({due_at}) AS due "
        f"FROM {' '.join(parts)}) {alias} ON true"
    )


def _backward(alias: str, seq: ir.Sequence) -> str:
    """With a span, each candidate last step is followed back: each earlier step is the latest
    matching event before the next one, within the span, which gives the latest first step of
    any chain ending there (the shortest span and the most recent start). Funnels narrow, so
    the last step's events are usually the fewest to start from."""
    steps = seq.steps
    k = len(steps)
    width = seconds(seq.window) if seq.window is not None else ""
    end = ["e.user_id = u.user_id", event_match(steps[-1].event, steps[-1].filter)]
    if seq.since is not None:
        end.append(f"e.ts > clk.now - {seconds(seq.since)}")  # after the first step
    parts = [f"(SELECT e.ts FROM segql.events e WHERE {' AND '.join(end)}) s{k}"]
    for number in range(k - 1, 0, -1):
        step = steps[number - 1]
        cond = ["e.user_id = u.user_id", event_match(step.event, step.filter)]
        cond += [f"e.ts < s{number + 1}.ts", f"e.ts >= s{k}.ts - {width}"]
        parts.append(
            f"CROSS JOIN LATERAL (SELECT max(e.ts) AS ts FROM segql.events e "
            f"WHERE {' AND '.join(cond)}) s{number}"
        )
    last = f"s{k}.ts"
    live = ["s1.ts IS NOT NULL", f"{last} <= clk.now"]
    leaves = ""
    if seq.since is not None:
        live.append(f"s1.ts > clk.now - {seconds(seq.since)}")
        leaves = f" WHEN s1.ts + {seconds(seq.since)} > clk.now THEN s1.ts + {seconds(seq.since)}"
    due_at = f"CASE WHEN s1.ts IS NULL THEN NULL WHEN {last} > clk.now THEN {last}{leaves} END"
    return (
        f"LEFT JOIN LATERAL (SELECT bool_or({' AND '.join(live)}) AS hit, "
        f"min({due_at}) AS due FROM {' '.join(parts)}) {alias} ON true"
    )


def grouped(alias: str, seq: ir.Sequence) -> str:
    """Every user's value in one pass over the steps' events (the full-recompute query)."""
    chain = (
        f"(SELECT e.user_id, e.ts, e.ts AS start FROM segql.events e "
        f"WHERE {event_match(seq.steps[0].event, seq.steps[0].filter)})"
    )
    for step in seq.steps[1:]:
        # The latest start of a chain through any strictly earlier event of the previous step.
        chain = (
            "(SELECT w.user_id, w.ts, w.start FROM (SELECT m.user_id, m.ts, m.step, "
            "max(m.start) OVER (PARTITION BY m.user_id ORDER BY m.ts "
            f"RANGE BETWEEN UNBOUNDED PRECEDING AND {EARLIER} PRECEDING) AS start "
            f"FROM (SELECT p.user_id, p.ts, p.start, false AS step FROM {chain} p "
            "UNION ALL SELECT e.user_id, e.ts, NULL::timestamptz, true FROM segql.events e "
            f"WHERE {event_match(step.event, step.filter)}) m) w "
            "WHERE w.step AND w.start IS NOT NULL)"
        )
    cond = ["c.ts <= clk.now"]
    if seq.window is not None:
        cond.append(f"c.ts - c.start <= {seconds(seq.window)}")
    if seq.since is not None:
        cond.append(f"c.start > clk.now - {seconds(seq.since)}")
    return (
        f"LEFT JOIN (SELECT c.user_id, true AS hit FROM {chain} c CROSS JOIN clk "
        f"WHERE {' AND '.join(cond)} GROUP BY c.user_id) {alias} ON {alias}.user_id = u.user_id"
    )


KIND = ScanKind(
    read=read,
    grouped=grouped,
    value=value,
    empty=lambda seq: "false",
    events=events,
)
