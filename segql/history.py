"""Reading the change log back: membership at a past moment, a segment's history, and why a user
is (or is not) in a segment now.

The log is the truth: replaying it up to a moment gives the membership at that moment, as long as
the moment is not before the horizon of `segql prune-log` (the last change of each user before a
pruning cutoff is kept when it is an enter, so replays stay exact from the cutoff on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg

from segql import features, generate, ir, zones
from segql.check import check
from segql.deploy import require_segment
from segql.errors import SegqlError
from segql.features import location as location_kind
from segql.features import scan_kind
from segql.feed import Change
from segql.models import store as models
from segql.parse import parse_text
from segql.plan import FeatureKey, scans
from segql.render import Renderer, quote_literal
from segql.sqlfiles import query

Period = Literal["hour", "day", "week", "month"]
PERIODS: tuple[Period, ...] = ("hour", "day", "week", "month")


class HistoryError(SegqlError):
    """The change log cannot answer that."""


# -- membership at a moment --------------------------------------------------------------------


def members_at(conn: psycopg.Connection, name: str, ts: datetime) -> list[tuple[str, datetime]]:
    """Who was in segment `name` at `ts`, with when they entered, by replaying the change log."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    require_known(conn, name)
    row = conn.execute("SELECT segql.now()").fetchone()
    now: datetime = row[0] if row else datetime.now(UTC)
    if ts > now:
        raise HistoryError(
            f"{ts.isoformat()} is in the future (the segql clock reads {now.isoformat()}): "
            f"the log cannot know it yet; `segql members {name}` shows who is in it now"
        )
    pruned = horizon(conn)
    if pruned is not None and ts < pruned:
        raise HistoryError(
            f"the change log was pruned up to {pruned.isoformat()}; membership before then "
            "cannot be replayed"
        )
    rows = conn.execute(query("members_at", "feed.sql"), {"segment": name, "at": ts})
    return [(r[0], r[1]) for r in rows]


def log_start(conn: psycopg.Connection, name: str) -> datetime | None:
    """Where the segment's change log begins (its first deploy); None if it has none."""
    row = conn.execute(query("log_start", "feed.sql"), {"segment": name}).fetchone()
    return row[0] if row else None


def horizon(conn: psycopg.Connection) -> datetime | None:
    """Replays are exact from this moment on; None when the log was never pruned."""
    row = conn.execute(query("log_horizon", "feed.sql")).fetchone()
    return row[0] if row else None


def require_known(conn: psycopg.Connection, name: str) -> None:
    """A deployed segment, or one that left changes in the log (dropped since)."""
    row = conn.execute(query("segment_known", "feed.sql"), {"segment": name}).fetchone()
    if not (row and row[0]):
        require_segment(conn, name)  # raises with the list of deployed segments


# -- history -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodCount:
    """Enters and exits in one period, and the segment's size at its end."""

    start: datetime
    enters: int
    exits: int
    size: int

    def as_json(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "enters": self.enters,
            "exits": self.exits,
            "size": self.size,
        }


def user_changes(conn: psycopg.Connection, name: str, user_id: str) -> list[Change]:
    """Every enter and exit of one user, oldest first."""
    require_known(conn, name)
    rows = conn.execute(query("user_changes", "feed.sql"), {"segment": name, "user_id": user_id})
    return [Change(*r) for r in rows]


def recent_changes(conn: psycopg.Connection, name: str, limit: int) -> list[Change]:
    """The segment's last `limit` changes, oldest first."""
    require_known(conn, name)
    rows = conn.execute(query("recent_changes", "feed.sql"), {"segment": name, "limit": limit})
    return [Change(*r) for r in rows]


def series(conn: psycopg.Connection, name: str, every: Period = "day") -> list[PeriodCount]:
    """Enters, exits and size per period (UTC), from the first change on."""
    if every not in PERIODS:
        raise HistoryError(f"'{every}' is not a period; use one of {', '.join(PERIODS)}")
    require_known(conn, name)
    rows = conn.execute(query("history_series", "feed.sql"), {"segment": name, "every": every})
    return [PeriodCount(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]


# -- why ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Value:
    """A feature, trait or segment the condition reads, with the user's current value."""

    label: str
    value: Any

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "value": _json_value(self.value)}


@dataclass(frozen=True)
class Condition:
    """One top-level item of the definition: does it hold for the user now, and on what values.

    For a comparison, `left` and `right` are its two sides' values (a threshold is usually the
    right one); `holds` is None when SQL says unknown (a NULL compared), which counts as false.
    """

    text: str
    holds: bool | None
    values: list[Value]
    op: str | None = None
    left: Value | None = None
    right: Value | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "condition": self.text,
            "holds": self.holds,
            "values": [v.as_json() for v in self.values],
        }
        if self.op is not None and self.left is not None and self.right is not None:
            out["comparison"] = {
                "left": self.left.as_json(),
                "op": self.op,
                "right": self.right.as_json(),
            }
        return out


@dataclass(frozen=True)
class Explanation:
    segment: str
    version: int
    user_id: str
    known_user: bool
    now: datetime
    combinator: str | None  # 'and' | 'or' | None for a single condition
    conditions: list[Condition]
    holds: bool  # the whole definition, evaluated now
    member_since: datetime | None  # from segql.members
    last_change: Change | None
    next_timer: datetime | None
    definition: str = field(repr=False, default="")
    holds_at_next_timer: bool | None = None  # the definition at the timer, with no new event

    @property
    def next_timer_effect(self) -> str | None:
        """What the next timer does to this user if no event comes first."""
        if self.next_timer is None or self.holds_at_next_timer is None:
            return None
        if self.holds_at_next_timer != self.member:
            return "enter" if self.holds_at_next_timer else "exit"
        return "stay in" if self.member else "stay out"

    @property
    def member(self) -> bool:
        return self.member_since is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "version": self.version,
            "user_id": self.user_id,
            "known_user": self.known_user,
            "now": _iso(self.now),
            "member": self.member,
            "member_since": _iso(self.member_since) if self.member_since else None,
            "holds": self.holds,
            "combinator": self.combinator,
            "conditions": [c.as_json() for c in self.conditions],
            "last_change": self.last_change.as_json() if self.last_change else None,
            "next_timer": _iso(self.next_timer) if self.next_timer else None,
            "next_timer_effect": self.next_timer_effect,
        }


def why(conn: psycopg.Connection, name: str, user_id: str) -> Explanation:
    """Each condition of the segment's definition, evaluated for one user now."""
    require_segment(conn, name)
    row = conn.execute(
        "SELECT version, definition FROM segql.segments WHERE name = %s", [name]
    ).fetchone()
    assert row is not None
    version, definition = int(row[0]), str(row[1])
    known = [r[0] for r in conn.execute("SELECT name FROM segql.segments")]
    source = definition + ";"
    live_models = models.load(conn)
    checked = check(
        parse_text(source, f"<deployed {name}>"),
        known_segments=known,
        zones=zones.deployed(conn),
        models=live_models,
    )
    segment = next(s for s in checked if s.name == name)  # CREATE TIERS defines several
    combinator, items = _top_level(segment.condition)
    evaluated = _evaluate(conn, segment, items, user_id)
    conditions = [_condition(i, item, evaluated) for i, item in enumerate(items)]
    params = {"segment": name, "user_id": user_id}
    last = conn.execute(query("last_change", "feed.sql"), params).fetchone()
    since = conn.execute(query("membership", "feed.sql"), params).fetchone()
    due = conn.execute(query("next_timer", "feed.sql"), params).fetchone()
    user_known = conn.execute(query("user_known", "feed.sql"), {"user_id": user_id}).fetchone()
    later = _holds_at(conn, segment, user_id, due[0]) if due and due[0] else None
    return Explanation(
        segment=name,
        version=version,
        user_id=user_id,
        known_user=bool(user_known and user_known[0]),
        now=evaluated["now"],
        combinator=combinator,
        conditions=conditions,
        holds=bool(evaluated["holds"]),
        member_since=since[0] if since else None,
        last_change=Change(last[0], name, user_id, *last[1:]) if last else None,
        next_timer=due[0] if due else None,
        definition=definition,
        holds_at_next_timer=later,
    )


def _holds_at(conn: psycopg.Connection, segment: ir.Segment, user_id: str, at: datetime) -> bool:
    """The definition for this user at another instant, as the tick will evaluate it then."""
    conn.execute("SELECT set_config('segql.now', %s, true)", [at.isoformat()])
    try:
        return bool(_evaluate(conn, segment, [], user_id)["holds"])
    finally:
        conn.execute("SELECT set_config('segql.now', '', true)")


def _top_level(condition: ir.Expr) -> tuple[str | None, list[ir.Expr]]:
    """The items of a top-level AND (or OR), flattened: `a AND b AND c` is three items."""
    if not isinstance(condition, ir.BoolOp):
        return None, [condition]
    op = condition.op

    def flatten(node: ir.Expr) -> list[ir.Expr]:
        if isinstance(node, ir.BoolOp) and node.op == op:
            return [x for item in node.items for x in flatten(item)]
        return [node]

    return op, flatten(condition)


_LEAVES = (
    ir.Agg,
    ir.Sequence,
    ir.Session,
    ir.Trait,
    ir.InSegment,
    ir.Score,
    ir.Distance,
    ir.InZone,
)


def _leaves(node: ir.Expr) -> list[ir.Expr]:
    """What an item reads about the user: features, traits, other segments (each once); for an
    RFM score, the score, the value it scores and the cutpoints it was placed among."""
    out: dict[ir.Expr, None] = {}
    stack = [node]
    while stack:
        n = stack.pop(0)
        if isinstance(n, ir.Rfm):
            for leaf in (n, n.value, *(b.right for b in n.beats)):
                out.setdefault(leaf, None)
        elif isinstance(n, _LEAVES):
            # A score is one value here: `segql why <model> <user>` shows its terms.
            out.setdefault(n, None)
        else:
            stack = [*ir.children(n), *stack]
    return list(out)


def _evaluate(
    conn: psycopg.Connection, segment: ir.Segment, items: list[ir.Expr], user_id: str
) -> dict[str, Any]:
    """One query for one user: every item, both sides of comparisons, every leaf, the whole.

    The SQL is rendered from the checked definition the way the full-recompute query is (feature
    laterals over the user's own events, traits from the profile); the user id is a bind
    parameter.
    """
    aliases: dict[FeatureKey, str] = {}
    joins: list[str] = []
    for agg in (n for n in ir.walk(segment.condition) if isinstance(n, ir.Agg)):
        key = FeatureKey.of(agg)
        if key not in aliases:
            aliases[key] = f"a{len(aliases) + 1}"
            joins.append(generate.lateral(aliases[key], key))
    seqs = generate.scan_joins(scans(segment.condition), joins)

    def member(node: ir.InSegment) -> str:
        return (
            "EXISTS (SELECT 1 FROM segql.members m "
            f"WHERE m.segment = {quote_literal(node.name)} AND m.user_id = u.user_id)"
        )

    location = location_kind.EVENT_LOCATION
    if ir.reads_location(segment.condition):
        joins.append(location_kind.lateral("loc"))
        joins.append(location_kind.resolved("gl", "loc"))
        location = location_kind.columns("gl")
    render = Renderer(
        lambda a: features.value(a, aliases[FeatureKey.of(a)]),
        member,
        location=location,
        scan=lambda q: scan_kind(q).value(seqs[q], q),
    )
    columns = {"now": "clk.now", "holds": f"coalesce({render(segment.condition)}, false)"}
    for i, item in enumerate(items):
        columns[f"item{i}"] = render(item)
        if ir.reads_location(item):
            # Where the location came from: the latest located event, else the profile.
            columns[f"loc{i}"] = (
                f"{location[0]}::text || ', ' || {location[1]}::text || ' (' || "
                f"coalesce({location_kind.source('loc')}, 'profile lat/lon') || ')'"
            )
        if isinstance(item, ir.Compare):
            columns[f"left{i}"] = render(item.left)
            columns[f"right{i}"] = render(item.right)
        for j, leaf in enumerate(_leaves(item)):
            columns[f"leaf{i}_{j}"] = render(leaf)
    select = ",\n       ".join(f"{expr} AS {name}" for name, expr in columns.items())
    # The rendered SQL is a template for the driver: a LIKE pattern's % must not read as a
    # placeholder.
    text = (
        f"SELECT {select}\n".replace("%", "%%") + "FROM (SELECT %(user_id)s::text AS user_id) u\n"
        "CROSS JOIN (SELECT segql.now() AS now) clk\n"
        "LEFT JOIN segql.profiles p ON p.user_id = u.user_id\n"
        + "\n".join(joins).replace("%", "%%")
    )
    cur = conn.execute(text.encode(), {"user_id": user_id})
    row = cur.fetchone()
    assert row is not None and cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


def _condition(i: int, item: ir.Expr, evaluated: dict[str, Any]) -> Condition:
    values = [Value(_text(leaf), evaluated[f"leaf{i}_{j}"]) for j, leaf in enumerate(_leaves(item))]
    if f"loc{i}" in evaluated:
        values.insert(0, Value("last known location (lat, lon)", evaluated[f"loc{i}"]))
    holds = evaluated[f"item{i}"]
    if isinstance(item, ir.Compare):
        left = Value(_text(item.left), evaluated[f"left{i}"])
        right = Value(_text(item.right), evaluated[f"right{i}"])
        return Condition(_text(item), holds, values, item.op, left, right)
    return Condition(_text(item), holds, values)


def _text(node: ir.Expr) -> str:
    """A definition's node written back as definition text (spans do not cover every token)."""
    return _show(node, top=True)


def _show(node: ir.Expr, top: bool = False) -> str:
    def wrap(text: str) -> str:
        return text if top else f"({text})"

    if isinstance(node, ir.Const):
        return _show_const(node)
    if isinstance(node, ir.Now):
        return "now()"
    if isinstance(node, (ir.Trait, ir.Prop)):
        return node.key if _PLAIN_NAME.match(node.key) else '"' + node.key.replace('"', '""') + '"'
    if isinstance(node, ir.Agg):
        return _show_agg(node)
    if isinstance(node, ir.Sequence):
        return _show_sequence(node)
    if isinstance(node, ir.Session):
        return _show_session(node)
    if isinstance(node, ir.InSegment):
        return f"in_segment({_sql_string(node.name)})"
    if isinstance(node, ir.Rfm):
        return node.key  # the score as written, normalized
    if isinstance(node, ir.Cut):
        return f"cutpoint {node.index} of {node.score}"
    if isinstance(node, ir.Arith):
        return wrap(f"{_show(node.left)} {node.op} {_show(node.right)}")
    if isinstance(node, ir.Neg):
        return f"-{_show(node.operand)}"
    if isinstance(node, ir.Compare):
        # Arithmetic binds tighter than a comparison: its sides need no parentheses.
        left, right = (_show(s, top=isinstance(s, ir.Arith)) for s in (node.left, node.right))
        return wrap(f"{left} {node.op} {right}")
    if isinstance(node, ir.BoolOp):
        return wrap(f" {node.op.upper()} ".join(_show(i) for i in node.items))
    if isinstance(node, ir.Not):
        return wrap(f"NOT {_show(node.operand)}")
    if isinstance(node, ir.InList):
        return wrap(f"{_show(node.operand)} IN ({', '.join(_show(i) for i in node.items)})")
    if isinstance(node, ir.Like):
        op = "ILIKE" if node.case_insensitive else "LIKE"
        return wrap(f"{_show(node.operand)} {op} {_show(node.pattern)}")
    if isinstance(node, ir.IsNull):
        return wrap(f"{_show(node.operand)} IS NULL")
    if isinstance(node, ir.IsBool):
        return wrap(f"{_show(node.operand)} IS {'TRUE' if node.value else 'FALSE'}")
    if isinstance(node, ir.Distance):
        return f"distance_km({_show(node.lat, top=True)}, {_show(node.lon, top=True)})"
    if isinstance(node, ir.InZone):
        return f"in_zone({_sql_string(node.zone.name)})"
    if isinstance(node, ir.Score):
        return f"score({_sql_string(node.model)})"
    return repr(node)


_PLAIN_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def _show_agg(node: ir.Agg) -> str:
    args = [_sql_string(node.event if node.event is not None else "*")]
    if node.prop is not None:
        args.append(_sql_string(node.prop))
    if node.window is not None:
        args.append(f"within => {_sql_string(node.window_text or _interval_text(node.window))}")
    if node.after is not None:
        args.append(f"after => {_sql_string(node.after)}")
    text = features.of(node).describe(args)
    if node.filter is not None:
        text += f" FILTER (WHERE {_show(node.filter, top=True)})"
    return text


def _show_sequence(node: ir.Sequence) -> str:
    args = []
    for step in node.steps:
        text = _sql_string(step.event if step.event is not None else "*")
        if step.filter is not None:
            text += f" FILTER (WHERE {_show(step.filter, top=True)})"
        args.append(text)
    for name, secs, words in (
        ("within", node.window, node.window_text),
        ("since", node.since, node.since_text),
    ):
        if secs is not None:
            args.append(f"{name} => {_sql_string(words or _interval_text(secs))}")
    return f"sequence({', '.join(args)})"


def _show_session(node: ir.Session) -> str:
    window = f"within => {_sql_string(node.window_text or _interval_text(node.window))}"
    if node.kind == "avg":
        return f"avg_session_minutes({window})"
    event = f"{_sql_string(node.event)}, " if node.event is not None else ""
    return f"session_count({event}{window})"


def _show_const(node: ir.Const) -> str:
    if node.value is None:
        return "NULL"
    if node.type == "bool":
        return "true" if node.value else "false"
    if node.type == "num":
        return str(node.value)
    if node.type == "interval":
        assert isinstance(node.value, Decimal)
        return f"interval {_sql_string(node.text or _interval_text(node.value))}"
    if node.type == "ts":
        return f"timestamptz {_sql_string(str(node.value))}"
    return _sql_string(str(node.value))


def _interval_text(seconds: Decimal) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds.normalize():f} seconds"


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat()


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value
