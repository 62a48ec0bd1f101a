"""session_count(['<event>',] within => W) and avg_session_minutes(within => W).

A session is decided per event: an event whose props carry a `session_id` (not JSON null)
belongs to the session of that id; the user's events without one are split into sessions by
time, a gap of 30 minutes or more starting a new one. Only events at or before now() take part,
so an event stamped in the future joins (or bridges) sessions at its ts.

- `session_count`: the sessions with an event (of that name, or any) in the window
  `now() - W < ts <= now()`; 0 over none;
- `avg_session_minutes`: the mean length, first to last event in minutes, of the sessions with
  any event in the window, each measured over all its events (those before the window too);
  NULL over none.

Both change with time when a session's last (qualifying) event leaves the window, at its
ts + W, and when an event stamped in the future reaches its ts.

The incremental read sessionises the outer user's events in the window for counts (the window
is a contiguous range of time, so splitting its events by gaps gives the same sessions as
splitting all of them) and all the user's events for lengths; the full query always splits all
events, so the oracle checks the first shortcut.
"""

from __future__ import annotations

from decimal import Decimal

from segql import ir
from segql.features.base import ScanKind
from segql.render import event_match, seconds

GAP_SECONDS = 1800
_SID = "(e.props ->> 'session_id')"


def _split(user: str, clock: str, lower: str, hit: str) -> str:
    """Event rows (user_id, ts, hit, session) of the chosen users, up to `clock`: `session` is
    'i<id>' for events with a session id, 'g<n>' for the n-th run of events without one."""
    gap = seconds(Decimal(GAP_SECONDS))
    by = f"PARTITION BY e.user_id, {_SID} IS NULL ORDER BY e.ts"
    rows = (
        f"SELECT e.user_id, e.ts, {_SID} AS sid, {hit} AS hit, "
        f"CASE WHEN e.ts - lag(e.ts) OVER ({by}) < {gap} THEN 0 ELSE 1 END AS brk "
        f"FROM segql.events e WHERE {user}e.ts <= {clock}{lower}"
    )
    return (
        "SELECT b.user_id, b.ts, b.hit, CASE WHEN b.sid IS NOT NULL THEN 'i' || b.sid "
        "ELSE 'g' || sum(b.brk) OVER (PARTITION BY b.user_id, b.sid IS NULL ORDER BY b.ts "
        "ROWS UNBOUNDED PRECEDING) END AS session "
        f"FROM ({rows}) b"
    )


def _hit(node: ir.Session) -> str:
    return event_match(node.event, None) if node.kind == "count" else "true"


def _future(outer: str) -> str:
    """The user's next event stamped after the clock: sessions may change when it arrives."""
    return f"(SELECT min(f.ts) FROM segql.events f WHERE f.user_id = {outer} AND f.ts > clk.now)"


def read(alias: str, node: ir.Session) -> str:
    width = seconds(node.window)
    inside = f"g.last_hit > clk.now - {width}"
    # Counts need only the window's events; lengths need whole sessions.
    lower = f" AND e.ts > clk.now - {width}" if node.kind == "count" else ""
    split = _split("e.user_id = u.user_id AND ", "clk.now", lower, _hit(node))
    return (
        f"LEFT JOIN LATERAL (SELECT count(*) FILTER (WHERE {inside}) AS cnt, "
        f"avg(extract(epoch FROM g.last - g.first) / 60) FILTER (WHERE {inside}) AS avg, "
        f"LEAST(min(g.last_hit) FILTER (WHERE {inside}) + {width}, {_future('u.user_id')}) "
        "AS due "
        "FROM (SELECT r.session, min(r.ts) AS first, max(r.ts) AS last, "
        "max(r.ts) FILTER (WHERE r.hit) AS last_hit "
        f"FROM ({split}) r GROUP BY r.session) g) {alias} ON true"
    )


def grouped(alias: str, node: ir.Session) -> str:
    width = seconds(node.window)
    inside = f"g.last_hit > clk.now - {width}"
    split = _split("", "(SELECT clk.now FROM clk)", "", _hit(node))
    return (
        f"LEFT JOIN (SELECT g.user_id, count(*) FILTER (WHERE {inside}) AS cnt, "
        f"avg(extract(epoch FROM g.last - g.first) / 60) FILTER (WHERE {inside}) AS avg "
        "FROM (SELECT r.user_id, r.session, min(r.ts) AS first, max(r.ts) AS last, "
        "max(r.ts) FILTER (WHERE r.hit) AS last_hit "
        f"FROM ({split}) r GROUP BY r.user_id, r.session) g CROSS JOIN clk "
        f"GROUP BY g.user_id) {alias} ON {alias}.user_id = u.user_id"
    )


def value(alias: str, node: ir.Session) -> str:
    return f"coalesce({alias}.cnt, 0)" if node.kind == "count" else f"{alias}.avg"


KIND = ScanKind(
    read=read,
    grouped=grouped,
    value=value,
    empty=lambda node: "0" if node.kind == "count" else "NULL::numeric",
    events=lambda node: [None],
)
