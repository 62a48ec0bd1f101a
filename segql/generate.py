"""A plan to SQL: the incremental program and, from the same plan, each segment's full query.

DDL shapes live in Jinja templates under sql/templates; expressions come from `render`. Names
are versioned (s_<segment>_v<version>, p<deploy>_...) so a new deploy can be created beside the
old one and swapped in within one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2

from segql import features, ir
from segql.features import STATE_COLUMNS, StateColumn, next_change, scan_kind
from segql.features import location as location_kind
from segql.plan import LOCATION, EventSet, FeatureKey, Group, Plan, SegmentPlan
from segql.plan import scans as plan_scans
from segql.render import (
    Renderer,
    event_match,
    prop_text,
    prop_value,
    quote_ident,
    quote_literal,
    seconds,
)

# Every generated function runs as segql's owner, so a writer needs no rights on the internal
# tables, and resolves names only in pg_catalog and segql (pg_temp last), so nothing a user
# creates elsewhere is ever called with the owner's rights.
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, segql, pg_temp"


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ident"] = quote_ident
    env.globals["definer"] = DEFINER
    env.filters["lit"] = quote_literal
    env.filters["lit_array"] = lambda items: (
        "ARRAY[" + ", ".join(quote_literal(i) for i in items) + "]::text[]"
    )
    return env


def _load_template(name: str) -> str:
    return files("segql.sql").joinpath("templates", name).read_text(encoding="utf-8")


def template(template_name: str, **context: Any) -> str:
    return _env().get_template(template_name).render(**context)


# The argument types of a segment function (segment.sql.j2): users, cause, and the instants
# at which to evaluate some of them.
SEGMENT_ARGS = "(text[], text, text[], timestamptz[])"


def function_name(name: str, version: int) -> str:
    return f"s_{name}_v{version}"


def channel(name: str) -> str:
    return f"segql.{name}"


# -- features ----------------------------------------------------------------------------------


def _source(key: FeatureKey, user_cond: str) -> tuple[str, str]:
    """The conditions that pick a feature's events, and its aggregate columns."""
    cond = [user_cond] if user_cond else []
    live = ""
    if key.event is not None:
        cond.append(f"e.name = {quote_literal(key.event)}")
    if key.window is not None:
        cond.append(f"e.ts > clk.now - {seconds(_decimal(key.window))}")
    if key.after is not None:
        cond.append(f"e.ts > {after_bound(key.after, 'e.user_id')}")
    if key.windowed:
        live = " FILTER (WHERE e.ts <= clk.now)"
    if key.filter is not None:
        cond.append(event_match(None, key.filter))
    columns = ", ".join(
        f"{_aggregate(column, key)}{live} AS {name}"
        for name, column in STATE_COLUMNS.items()
        if _computed(name, key)
    )
    return " AND ".join(cond), columns


def _aggregate(column: StateColumn, key: FeatureKey) -> str:
    return column.aggregate.format(v=prop_value(key.prop), t=prop_text(key.prop))


def _computed(name: str, key: FeatureKey) -> bool:
    """Columns only some kinds read are computed only for their keys."""
    return {"days": key.days, "weeks": key.weeks, "dist": key.distinct}.get(name, True)


def after_bound(event: str, user: str) -> str:
    """The ts of the user's latest `event` at or before the clock; -infinity when none.

    Events count when strictly after it: one at the very same instant is before the bound,
    as if the bounding event were the last thing that happened at that instant.
    """
    return (
        f"coalesce((SELECT max(b.ts) FROM segql.events b WHERE b.user_id = {user} "
        f"AND b.name = {quote_literal(event)} AND b.ts <= clk.now), '-infinity'::timestamptz)"
    )


def after_next(event: str, user: str) -> str:
    """When the bound next moves with no new event: the user's first `event` after the clock."""
    return (
        f"(SELECT min(b.ts) FROM segql.events b WHERE b.user_id = {user} "
        f"AND b.name = {quote_literal(event)} AND b.ts > clk.now)"
    )


def grouped(alias: str, key: FeatureKey, events: str = "segql.events") -> str:
    """Per-user aggregates over every user's events in one grouped scan (the full query).
    `events` is the table (or a CTE over it) the events are read from."""
    cond, columns = _source(key, "")
    where = f" WHERE {cond}" if cond else ""
    return (
        f"LEFT JOIN (SELECT e.user_id, {columns} "
        f"FROM {events} e CROSS JOIN clk{where} GROUP BY e.user_id) {alias} "
        f"ON {alias}.user_id = u.user_id"
    )


def values_sql(exprs: Sequence[ir.Expr], events: str, users: str) -> str:
    """Each expression for every user of `users`, the way the full query evaluates a definition:
    grouped scans of `events` at the instant `clk.now`. The caller defines `clk` (and `events`,
    if a CTE) in a WITH clause; the text is a template for the driver: a % of the rendered
    expressions is written %%, while `users` may hold the caller's own placeholders."""
    aliases: dict[FeatureKey, str] = {}
    joins: list[str] = []
    for expr in exprs:
        for agg in _aggs(expr):
            key = FeatureKey.of(agg)
            if key not in aliases:
                aliases[key] = f"a{len(aliases) + 1}"
                joins.append(grouped(aliases[key], key, events))

    def no_segment(node: ir.InSegment) -> str:
        raise TypeError("values_sql reads no segment")

    render = Renderer(lambda a: features.value(a, aliases[FeatureKey.of(a)]), no_segment)
    columns = ", ".join(f"{render(e)} AS v{i}" for i, e in enumerate(exprs)).replace("%", "%%")
    return (
        f"SELECT u.user_id, {columns}\nFROM {users} u\nCROSS JOIN clk\n"
        "LEFT JOIN segql.profiles p ON p.user_id = u.user_id\n"
        + "\n".join(joins).replace("%", "%%")
    )


def lateral(alias: str, key: FeatureKey) -> str:
    """The same aggregates for the one user of the outer row (for single-user reads)."""
    cond, columns = _source(key, "e.user_id = u.user_id")
    return f"LEFT JOIN LATERAL (SELECT {columns} FROM segql.events e WHERE {cond}) {alias} ON true"


def _decimal(text: str) -> Any:
    from decimal import Decimal

    return Decimal(text)


@dataclass
class SegmentSQL:
    function: str
    create: str
    full_query: str


def segment_sql(plan: Plan, seg: SegmentPlan) -> SegmentSQL:
    """The incremental function and the full query of one segment."""
    refs, joins = _feature_joins(plan, seg.keys, _columns([seg]))
    seqs = scan_joins(seg.scans, joins)

    def member(node: ir.InSegment) -> str:
        return (
            "EXISTS (SELECT 1 FROM segql.members m "
            f"WHERE m.segment = {quote_literal(node.name)} AND m.user_id = u.user_id)"
        )

    render = Renderer(
        lambda a: features.value(a, *refs[FeatureKey.of(a)]),
        member,
        location=_located(refs),
        scan=_scan_value(seqs),
    )
    fn = function_name(seg.name, seg.version)
    create = template(
        "segment.sql.j2",
        name=seg.name,
        version=seg.version,
        fn=fn,
        timed=seg.timed,
        predicate=render(seg.segment.condition),
        due=_timer_due(seg, refs, render, seqs),
        joins=joins,
    )
    return SegmentSQL(fn, create, full_query(seg))


def _located(refs: dict[FeatureKey, tuple[str, str]]) -> tuple[str, str]:
    """The user's last known location from its state row, when the plan reads it."""
    if LOCATION not in refs:
        return location_kind.EVENT_LOCATION  # never rendered: nothing reads a location
    return location_kind.columns(refs[LOCATION][0])


def _columns(segments: list[SegmentPlan]) -> dict[FeatureKey, set[str]]:
    """Which aggregate columns the segments read of each feature: a scan computes only those."""
    out: dict[FeatureKey, set[str]] = {}
    for seg in segments:
        for node in ir.walk(seg.segment.condition):
            if isinstance(node, ir.Agg):
                out.setdefault(FeatureKey.of(node), set()).update(features.of(node).columns)
    return out


def _feature_joins(
    plan: Plan,
    keys: list[FeatureKey],
    columns: dict[FeatureKey, set[str]],
    fallback: bool = True,
) -> tuple[dict[FeatureKey, tuple[str, str]], list[str]]:
    """Joins that read each feature once for the outer user.

    Windowed features over the same events (same name and filter) share one scan of the widest
    window, each keeping its own columns: `refs[key]` is (alias, column prefix).
    """
    refs: dict[FeatureKey, tuple[str, str]] = {}
    joins: list[str] = []
    scans: dict[tuple[str | None, str, str | None, bool], list[FeatureKey]] = {}
    states: set[int] = set()
    recent: list[str] = []

    def state(key: FeatureKey) -> str:
        fid = plan.feature_ids[key]
        if fid not in states:
            states.add(fid)
            joins.append(state_join(f"f{fid}", fid))
        return f"f{fid}"

    for number, key in enumerate(dict.fromkeys(keys), start=1):
        if key.location:
            joins.append(location_kind.resolved("gl", state(key)))
            refs[key] = ("gl", "")
        elif not key.scanned:
            refs[key] = (state(key), "")
        elif key in plan.recent:
            source, needed = plan.recent[key]
            recent += recent_columns(f"r{number}_", key, state(source), needed, fallback)
            refs[key] = ("rr", f"r{number}_")
        else:
            scans.setdefault((key.event, repr(key.filter), key.after, key.windowed), []).append(key)
    if recent:
        # One lateral for all of them: a join per count made the plan, which is set up on every
        # call, grow by a nested loop and a subquery scan each. OFFSET 0 keeps the planner from
        # pulling the subquery up into every expression that reads its columns, which would
        # evaluate it once per reference instead of once per user.
        joins.append(f"LEFT JOIN LATERAL (SELECT {', '.join(recent)} OFFSET 0) rr ON true")
    for number, shared in enumerate(scans.values(), start=1):
        alias = f"w{number}"
        if shared[0].after is not None:
            joins.append(bound_read(f"{alias}b", shared[0].after))
        joins.append(windowed_scan(alias, shared, columns))
        for index, key in enumerate(shared, start=1):
            refs[key] = (alias, f"k{index}_")
    return refs, joins


def scan_joins(nodes: list[ir.Scan], joins: list[str]) -> dict[ir.Scan, str]:
    """One read per distinct sequence or session feature for the outer user, appended to
    `joins`."""
    aliases: dict[ir.Scan, str] = {}
    for node in nodes:
        if node not in aliases:
            aliases[node] = f"q{len(aliases) + 1}"
            joins.append(scan_kind(node).read(aliases[node], node))
    return aliases


def _scan_value(aliases: dict[ir.Scan, str]) -> Callable[[ir.Scan], str]:
    return lambda node: scan_kind(node).value(aliases[node], node)


def _due(ref: tuple[str, str]) -> str:
    return f"{ref[0]}.{ref[1]}due"


def _timer_due(
    seg: SegmentPlan,
    refs: dict[FeatureKey, tuple[str, str]],
    render: Renderer,
    seqs: dict[ir.Scan, str],
) -> str:
    """When the user must be evaluated again with no new data: the earliest instant a window,
    a sequence or a comparison with now() changes, unless the outcome is settled whatever the
    clock does (see `_Fate`); then no timer is kept at all."""
    dues = [_due(refs[k]) for k in seg.window_keys]
    dues += [f"{seqs[q]}.due" for q in seg.scans]
    dues += [render.crossing(atom, slope) for atom, slope in seg.atoms]
    if not dues:
        return "NULL::timestamptz"
    settled = _Fates(seg, refs, render, seqs)(seg.segment.condition).settled
    least = f"LEAST({', '.join(dues)})"
    if settled == "false":
        return least
    return f"CASE WHEN {settled} THEN NULL::timestamptz ELSE {least} END"


@dataclass(frozen=True)
class _Fate:
    """What the clock alone can still do to a boolean expression of one user, as SQL.

    `true`/`false`: it is that now and stays that until new data arrives. `settled`: its
    value cannot change with time (true, false or unknown for good). Windowed counts only fall
    as events leave their windows (unless events stamped in the future are still to enter),
    and a comparison with now() changes at most once, at its crossing; everything else either
    does not move with the clock or is assumed to.
    """

    settled: str
    true: str
    false: str


def _any(parts: list[str]) -> str:
    parts = [p for p in parts if p != "false"]
    if "true" in parts:
        return "true"
    return "(" + " OR ".join(parts) + ")" if parts else "false"


def _all(parts: list[str]) -> str:
    parts = [p for p in parts if p != "true"]
    if "false" in parts:
        return "false"
    return "(" + " AND ".join(parts) + ")" if parts else "true"


_UNKNOWN = _Fate("false", "false", "false")


class _Fates:
    def __init__(
        self,
        seg: SegmentPlan,
        refs: dict[FeatureKey, tuple[str, str]],
        render: Renderer,
        seqs: dict[ir.Scan, str],
    ) -> None:
        self.atoms = seg.atoms
        self.refs = refs
        self.render = render
        self.seqs = seqs

    def __call__(self, node: ir.Expr) -> _Fate:
        if not _moves(node):
            value = self.render(node)
            return _Fate("true", f"({value} IS TRUE)", f"({value} IS FALSE)")
        if isinstance(node, ir.BoolOp):
            kids = [self(item) for item in node.items]
            true, false = _all([k.true for k in kids]), _any([k.false for k in kids])
            if node.op == "or":
                true, false = _any([k.true for k in kids]), _all([k.false for k in kids])
            decided = true if node.op == "or" else false
            settled = _any([_all([k.settled for k in kids]), decided])
            return _Fate(settled, true, false)
        if isinstance(node, ir.Not):
            kid = self(node.operand)
            return _Fate(kid.settled, kid.false, kid.true)
        if isinstance(node, ir.Agg):
            return self.falling_bool(node)
        if isinstance(node, ir.Sequence):
            # It changes only at its own due instant: with none ahead, it holds its value.
            still = f"({self.seqs[node]}.due IS NULL)"
            value = self.render(node)
            return _Fate(still, f"({still} AND {value})", f"({still} AND NOT {value})")
        if isinstance(node, ir.Compare):
            return self.compare(node)
        return _UNKNOWN

    def pending(self, agg: ir.Agg) -> str:
        alias, prefix = self.refs[FeatureKey.of(agg)]
        return f"coalesce({alias}.{prefix}pending, false)"

    def falling_bool(self, agg: ir.Agg) -> _Fate:
        """did(..., within): true can become false, false stays false unless events are due."""
        if agg.type != "bool" or not agg.windowed or not features.of(agg).falls_with_clock:
            return _UNKNOWN
        stays_false = f"(NOT {self.pending(agg)} AND NOT {self.render(agg)})"
        return _Fate(stays_false, "false", stays_false)

    def compare(self, node: ir.Compare) -> _Fate:
        value = self.render(node)
        slope = next((k for atom, k in self.atoms if atom == node), None)
        if slope is not None and not any(_windowed(n) for n in ir.walk(node)):
            crossed = f"({self.render.crossing(node, slope)} IS NULL)"
            return _Fate(
                crossed, f"({crossed} AND {value} IS TRUE)", f"({crossed} AND {value} IS FALSE)"
            )
        flip = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
        left, right = node.left, node.right
        if _falling(left) and not _moves(right):
            assert isinstance(left, ir.Agg)
            agg, op = left, str(node.op)
        elif _falling(right) and not _moves(left):
            assert isinstance(right, ir.Agg)
            agg, op = right, flip.get(node.op, node.op)
        else:
            return _UNKNOWN
        steady = f"NOT {self.pending(agg)}"
        if op in (">", ">="):  # can only become false (or stay unknown)
            return _Fate(
                f"({steady} AND {value} IS NOT TRUE)", "false", f"({steady} AND {value} IS FALSE)"
            )
        if op in ("<", "<="):  # can only become true (or stay unknown)
            return _Fate(
                f"({steady} AND {value} IS NOT FALSE)", f"({steady} AND {value} IS TRUE)", "false"
            )
        return _UNKNOWN


def _falling(node: ir.Expr) -> bool:
    return isinstance(node, ir.Agg) and node.windowed and features.of(node).falls_with_clock


def _windowed(node: ir.Expr) -> bool:
    if isinstance(node, (ir.Sequence, ir.Session)):
        return True
    return isinstance(node, ir.Agg) and node.windowed


def _moves(node: ir.Expr) -> bool:
    """Can the expression's value change with the clock alone?"""
    return any(isinstance(n, ir.Now) or _windowed(n) for n in ir.walk(node))


def windowed_scan(alias: str, keys: list[FeatureKey], columns: dict[FeatureKey, set[str]]) -> str:
    """Scanned features of one event source for the outer user, from one scan of the widest
    window.

    An event counts from its ts until ts + window; the earliest of those instants still ahead
    is when a feature next changes (its `due`). The scan reads the outer user's events at that
    user's own instant (`clk.now` per row), one index range per user: a join of the events with
    a table of clocks would be planned from estimates, and a nested loop over ten thousand
    users is quadratic. Keys with an after => bound share it (read by `bound_read` as
    `<alias>b`): the scan starts after it, and the bound's next event is a change too. Keys
    with neither window nor bound (distinct_count over all time) read every event of the
    source and do not move with the clock.
    """
    first = keys[0]
    cond = ["e.user_id = u.user_id"]
    if first.event is not None:
        cond.append(f"e.name = {quote_literal(first.event)}")
    widths = [_decimal(k.window) for k in keys if k.window is not None]
    if len(widths) == len(keys):
        cond.append(f"e.ts > clk.now - {seconds(max(widths))}")
    if first.after is not None:
        cond.append(f"e.ts > {alias}b.bound")
    if first.filter is not None:
        cond.append(event_match(None, first.filter))
    cols = []
    for index, key in enumerate(keys, start=1):
        p = f"k{index}_"
        width = seconds(_decimal(key.window)) if key.window is not None else None
        inside = f"e.ts > clk.now - {width}" if width is not None else ""
        live = f" FILTER (WHERE {inside + ' AND ' if inside else ''}e.ts <= clk.now)"
        live = live if key.windowed else ""
        wanted = columns.get(key, set(STATE_COLUMNS))
        cols += [
            f"{_aggregate(column, key)}{live} AS {p}{name}"
            for name, column in STATE_COLUMNS.items()
            if name in wanted and _computed(name, key)
        ]
        if not key.windowed:
            continue  # counts every event whatever its ts: nothing changes with the clock
        due = f"min({next_change('e.ts', width, 'clk.now')})"
        if width is not None:
            due += f" FILTER (WHERE {inside})"
        if key.after is not None:
            due = f"LEAST({due}, {alias}b.next)"
        cols.append(f"{due} AS {p}due")
        # Events stamped after the clock will still enter a window: until then, counts can rise.
        cols.append(f"bool_or(e.ts > clk.now) AS {p}pending")
    return (
        f"LEFT JOIN LATERAL (SELECT {', '.join(cols)} FROM segql.events e "
        f"WHERE {' AND '.join(cond)}) {alias} ON true"
    )


def bound_read(alias: str, event: str) -> str:
    """The outer user's after => bound and its next move, two index probes."""
    return (
        f"LEFT JOIN LATERAL (SELECT {after_bound(event, 'u.user_id')} AS bound, "
        f"{after_next(event, 'u.user_id')} AS next OFFSET 0) {alias} ON true"
    )


def recent_columns(
    prefix: str, key: FeatureKey, state: str, needed: int, fallback: bool = True
) -> list[str]:
    """A windowed count of the outer user from its source's newest timestamps, in O(1): the
    columns `<prefix>cnt`, `<prefix>due` and `<prefix>pending` of one lateral for all of them.

    Exact while no event of the source is stamped after the clock (the state's last_ts is
    then in the past, so the newest timestamps are the newest up to now); otherwise, and only
    then, the window's events are read, as windowed_scan would. A key that needs one newest
    timestamp (did, or a count against 0) reads last_ts; others count in the `recent` array.

    The array is newest first, so the timestamps inside the window are a prefix of it: the
    count of the first `needed` inside is the count capped at `needed` (which decides every
    comparison with the key's constants), and the due is the last of them leaving. Written
    as `needed` terms over `recent[i]`, with no subquery: a subplan is initialised on every
    call of the statement, whether it runs or not, and that set-up was most of what a
    single-row INSERT paid here. With `fallback` off the events are never read: the caller
    has checked that no user it evaluates has an event stamped after its clock.
    """
    width = seconds(_decimal(key.window or "0"))
    pending = f"coalesce({state}.last_ts > clk.now, false)"
    cond = ["e.user_id = u.user_id", f"e.ts > clk.now - {width}"]
    if key.event is not None:
        cond.append(f"e.name = {quote_literal(key.event)}")
    if key.filter is not None:
        cond.append(event_match(None, key.filter))
    where = " AND ".join(cond)
    if needed == 1:
        inside = f"{state}.last_ts > clk.now - {width}"
        count = f"CASE WHEN {inside} THEN 1 ELSE 0 END"
        due = f"CASE WHEN {inside} THEN {state}.last_ts + {width} END"
    else:
        terms = [f"{state}.recent[{i}]" for i in range(1, needed + 1)]
        count = (
            "("
            + " + ".join(f"CASE WHEN {t} > clk.now - {width} THEN 1 ELSE 0 END" for t in terms)
            + ")"
        )
        due = (
            "LEAST("
            + ", ".join(f"CASE WHEN {t} > clk.now - {width} THEN {t} + {width} END" for t in terms)
            + ")"
        )
    if fallback:
        count = (
            f"CASE WHEN NOT {pending} THEN {count} "
            f"ELSE (SELECT count(*) FROM segql.events e WHERE {where} AND e.ts <= clk.now) END"
        )
        due = (
            f"CASE WHEN NOT {pending} THEN {due} "
            f"ELSE (SELECT min({next_change('e.ts', width, 'clk.now')}) "
            f"FROM segql.events e WHERE {where}) END"
        )
    return [f"{count} AS {prefix}cnt", f"{due} AS {prefix}due", f"{pending} AS {prefix}pending"]


def state_join(alias: str, fid: int) -> str:
    """A state feature for the outer user: one primary-key probe, whatever the estimates."""
    return (
        f"LEFT JOIN LATERAL (SELECT s.* FROM segql.feature_state s WHERE s.feature_id = {fid} "
        f"AND s.user_id = u.user_id LIMIT 1) {alias} ON true"
    )


def group_function_name(deploy: int, index: int) -> str:
    return f"p{deploy}_g{index}"


def group_sql(plan: Plan, group: Group, fn: str) -> str:
    """One function that evaluates several dependency-free segments in one statement."""
    segments = group.members
    keys = [k for s in segments for k in s.keys]
    refs, joins = _feature_joins(plan, keys, _columns(segments))
    seqs = scan_joins([q for s in segments for q in s.scans], joins)
    # The same reads without the future-event fallback, for a call in which no user has an
    # event stamped after its clock (the usual case): a smaller plan, set up on every call.
    sources = sorted(
        {plan.feature_ids[plan.recent[k][0]] for k in keys if k in plan.recent and not k.location}
    )
    steady: list[str] = []
    if sources:
        _, steady = _feature_joins(plan, keys, _columns(segments), fallback=False)
        scan_joins([q for s in segments for q in s.scans], steady)

    def no_segment(node: ir.InSegment) -> str:
        raise TypeError("grouped segments read no other segment")

    render = Renderer(
        lambda a: features.value(a, *refs[FeatureKey.of(a)]),
        no_segment,
        location=_located(refs),
        scan=_scan_value(seqs),
    )
    members = []
    for s in segments:
        members.append(
            {
                "name": s.name,
                "version": s.version,
                "timed": s.timed,
                "predicate": render(s.segment.condition),
                "due": _timer_due(s, refs, render, seqs),
            }
        )
    return template(
        "group.sql.j2",
        fn=fn,
        members=members,
        joins=joins,
        steady_joins=steady,
        recent_sources=sources,
        timed=group.timed,
        timer_key=group.key,
        reads_traits=any(s.reads_traits for s in segments),
    )


def group_sync_sql(group: Group) -> str:
    """Re-derive a group's rows of segql.user_groups from segql.members (deploy, rebuild)."""
    key = quote_literal(group.key)
    names = _lit_array([s.name for s in group.members])
    return (
        f"DELETE FROM segql.user_groups WHERE grp = {key};\n"
        "INSERT INTO segql.user_groups (user_id, grp, segments)\n"
        f'SELECT m.user_id, {key}, array_agg(m.segment ORDER BY m.segment COLLATE "C")\n'
        f"FROM segql.members m WHERE m.segment = ANY({names}) GROUP BY m.user_id;\n"
    )


def groups_cleanup_sql(plan: Plan) -> str:
    """Forget rows of groups that no longer exist."""
    keys = _lit_array([g.key for g in plan.groups])
    return f"DELETE FROM segql.user_groups WHERE grp <> ALL({keys});\n"


def full_query(seg: SegmentPlan) -> str:
    """The definition evaluated from scratch over all events: the oracle, and reach estimates."""
    by_name = {s.name: s for s in seg.inlined}
    aliases: dict[FeatureKey, str] = {}
    joins: list[str] = []
    seqs: dict[ir.Scan, str] = {}
    for s in [seg.segment, *seg.inlined]:
        for agg in _aggs(s.condition):
            key = FeatureKey.of(agg)
            if key not in aliases:
                aliases[key] = f"a{len(aliases) + 1}"
                joins.append(grouped(aliases[key], key))
        for q in plan_scans(s.condition):
            if q not in seqs:
                seqs[q] = f"q{len(seqs) + 1}"
                joins.append(scan_kind(q).grouped(seqs[q], q))
    location = location_kind.EVENT_LOCATION
    if any(ir.reads_location(s.condition) for s in [seg.segment, *seg.inlined]):
        joins.append(location_kind.grouped("loc"))
        joins.append(location_kind.resolved("gl", "loc"))
        location = location_kind.columns("gl")

    def inline(node: ir.InSegment) -> str:
        # Membership is never unknown: a NULL condition means "not a member".
        return f"coalesce({render(by_name[node.name].condition)}, false)"

    render = Renderer(
        lambda a: features.value(a, aliases[FeatureKey.of(a)]),
        inline,
        location=location,
        scan=_scan_value(seqs),
    )
    return template("full.sql.j2", joins=joins, predicate=render(seg.segment.condition))


def _aggs(condition: ir.Expr) -> list[ir.Agg]:
    return [n for n in ir.walk(condition) if isinstance(n, ir.Agg)]


# -- the program -------------------------------------------------------------------------------


def state_agg(plan: Plan, keys: list[FeatureKey], source: str, where: str) -> str:
    """The aggregate columns of event-aggregate state features (not the location)."""
    keys = [k for k in keys if not k.location]
    rows = [
        {
            "id": plan.feature_ids[k],
            "name": k.event,
            "filter": event_match(None, k.filter),
            "value": prop_value(k.prop),
            "recent": k.recent,
        }
        for k in keys
    ]
    return template("state_agg.sql.j2", source=source, where=where, features=rows).strip()


def _recent_merge(plan: Plan, keys: list[FeatureKey]) -> str:
    """Stored newest timestamps merged with a batch's, each feature keeping its own number."""
    sizes = [f"WHEN {plan.feature_ids[k]} THEN {k.recent}" for k in keys if k.recent]
    if not sizes:
        return "NULL"
    return (
        "CASE WHEN excluded.recent IS NULL THEN fs.recent "
        "WHEN fs.recent IS NULL THEN excluded.recent "
        "ELSE ARRAY(SELECT r.ts FROM unnest(fs.recent || excluded.recent) AS r(ts) "
        f"ORDER BY r.ts DESC LIMIT CASE fs.feature_id {' '.join(sizes)} END) END"
    )


def feature_backfill_sql(plan: Plan, keys: list[FeatureKey]) -> str:
    """Shared state features computed from every event (deploy of new features, rebuild)."""
    merged = [c.name for c in STATE_COLUMNS.values() if c.merge]
    columns = ", ".join(["feature_id", "user_id", *merged, "recent"])
    out = []
    if any(not k.location for k in keys):
        out.append(
            f"INSERT INTO segql.feature_state ({columns})\n"
            + state_agg(plan, keys, "segql.events", "")
            + ";"
        )
    if LOCATION in keys:
        out.append(location_kind.insert_sql(plan.feature_ids[LOCATION], "segql.events"))
    return "\n".join(out)


def program_sql(plan: Plan, deploy: int) -> str:
    """Trigger functions, triggers and the timer tick for every deployed segment together."""
    index = {s.name: i + 1 for i, s in enumerate(plan.segments)}
    grouped = {s.name for g in plan.groups for s in g.members}
    read_by_others = {d for s in plan.segments for d in s.segment.depends_on}
    units: list[_Unit] = [
        _Unit(
            fn=group_function_name(deploy, number),
            group=group,
            # Which members' changes other segments read, by their chain variable.
            changed=[(index[s.name], s.name) for s in group.members if s.name in read_by_others],
        )
        for number, group in enumerate(plan.groups, start=1)
    ]
    # Groups read no other segment, so they come first; the rest follow in dependency order.
    units += [
        _Unit(
            fn=function_name(s.name, s.version),
            segment=s,
            index=index[s.name],
            deps=[index[d] for d in s.segment.depends_on],
        )
        for s in plan.segments
        if s.name not in grouped
    ]
    event_sets = [g.events for g in plan.groups]
    event_sets += [
        s.event_set
        for s in plan.segments
        if s.name not in grouped and s.event_set is not None and s.event_set not in event_sets
    ]
    event_sets = list(dict.fromkeys(event_sets))

    def set_of(s: SegmentPlan) -> int:
        assert s.event_set is not None
        return event_sets.index(s.event_set) + 1

    def must_see(segments: list[SegmentPlan]) -> bool:
        return any(plan.must_see_new_users(s) for s in segments)

    def insert_seed(unit: _Unit) -> str:
        segments = unit.segments
        seed = [f"v_set_{set_of(segments[0])}"] if segments[0].event_set is not None else []
        return " || ".join([*seed, "v_new"] if must_see(segments) else seed)

    def profile_seed(unit: _Unit) -> str:
        if any(s.reads_traits for s in unit.segments):
            return "v_affected || v_new || v_gone"
        return "v_new || v_gone" if must_see(unit.segments) else ""

    def tick_seed(unit: _Unit) -> str:
        if not any(s.timed for s in unit.segments):
            return ""
        keys = sorted({unit.timer_key, *(s.name for s in unit.segments)})
        return (
            "array(SELECT x.u FROM unnest(v_segs, v_affected) AS x(s, u) "
            f"WHERE x.s = ANY({_lit_array(keys)}))"
        )

    def chain(seed: Any, cause: str, clocks: str = "") -> str:
        return "\n".join(u.call(seed(u), cause, clocks) for u in units)

    keys = [k for k in plan.state_keys if not k.location]
    located = plan.feature_ids.get(LOCATION) if LOCATION in plan.state_keys else None
    return template(
        "program.sql.j2",
        location_upsert="" if located is None else location_kind.upsert_sql(located, "new_rows"),
        location_rebuild=""
        if located is None
        else location_kind.insert_sql(located, "segql.events", "e.user_id = ANY(v_affected)"),
        deploy=deploy,
        group_functions=[group_sql(plan, u.group, u.fn) for u in units if u.group],
        chain_vars=list(index.values()),
        features=keys,
        state_columns=[c for c in STATE_COLUMNS.values() if c.merge is not None],
        recent_merge=_recent_merge(plan, keys),
        event_sets=[_set_filter(e) for e in event_sets],
        insert_chain=chain(insert_seed, "'event'"),
        affected_chain=chain(lambda u: "v_affected", "'event'"),
        profile_chain=chain(profile_seed, "'profile'"),
        refresh_chain=chain(lambda u: "v_affected", "p_cause"),
        scores_chain=chain(lambda u: "v_affected" if _reads_scores(u) else "", "p_cause"),
        tick_chain=chain(tick_seed, "'time'", ", v_affected, v_ats"),
        state_agg=lambda source, where: state_agg(plan, keys, source, where),
    )


def _reads_scores(unit: _Unit) -> bool:
    return any(features.rfm.scores(s.segment.condition) for s in unit.segments)


def _set_filter(events: EventSet) -> str | None:
    """Which rows of a statement an event set reads (None: every row)."""
    if events.names is None:
        return None
    parts = [f"name = ANY({_lit_array(list(events.names))})"] if events.names else []
    if events.located:
        parts.append(location_kind.located("props"))
    return " OR ".join(parts)


def _lit_array(items: list[str]) -> str:
    return "ARRAY[" + ", ".join(quote_literal(i) for i in items) + "]::text[]"


@dataclass
class _Unit:
    """One call of the chain: a group's function, or a segment's own."""

    fn: str
    group: Group | None = None
    segment: SegmentPlan | None = None
    index: int = 0  # the segment's chain variable v_changed_<index>
    deps: list[int] = field(default_factory=list)
    changed: list[tuple[int, str]] = field(default_factory=list)

    @property
    def segments(self) -> list[SegmentPlan]:
        if self.group is not None:
            return self.group.members
        assert self.segment is not None
        return [self.segment]

    @property
    def timer_key(self) -> str:
        if self.group is not None:
            return self.group.key
        assert self.segment is not None
        return self.segment.name

    def call(self, seed: str, cause: str, clocks: str) -> str:
        """Evaluate the unit for the seed users (and, for a segment, users whose membership of
        a segment it reads changed); an empty seed and no dependency means no call at all."""
        parts = ([seed] if seed else []) + [f"v_changed_{d}" for d in self.deps]
        if not parts:
            return ""
        fn = f"segql.{quote_ident(self.fn)}"
        lines = [f"    v_users := {' || '.join(parts)};", "    IF cardinality(v_users) > 0 THEN"]
        if self.group is None:
            lines.append(f"        v_changed_{self.index} := {fn}(v_users, {cause}{clocks});")
        else:
            lines += [
                "        SELECT array_agg(x.segment), array_agg(x.user_id) INTO v_gs, v_gu",
                f"        FROM {fn}(v_users, {cause}{clocks}) AS x;",
            ]
            lines += [
                f"        v_changed_{i} := array(SELECT y.u FROM unnest(v_gs, v_gu) AS y(s, u) "
                f"WHERE y.s = {quote_literal(name)});"
                for i, name in self.changed
            ]
        lines.append("    END IF;")
        return "\n".join(lines)


def empty_member_sql(seg: SegmentPlan, deps: dict[str, bool]) -> str:
    """Is a user with no events and no profile a member, and can time change that?

    Evaluated once at deploy: when neither, a user's first appearance need not be evaluated
    against this segment unless it brings events the segment reads.
    """
    render = Renderer(
        lambda a: features.value(a, "z"),
        lambda node: "true" if deps.get(node.name, True) else "false",
        location=location_kind.value("z"),
        scan=lambda q: scan_kind(q).empty(q),
    )
    dues = [render.crossing(atom, slope) for atom, slope in seg.atoms]
    due = f"LEAST({', '.join(dues)})" if dues else "NULL::timestamptz"
    return (
        f"SELECT coalesce({render(seg.segment.condition)}, false), {due} IS NOT NULL "
        "FROM (SELECT segql.now() AS now) clk, (SELECT NULL::jsonb AS traits) p, "
        "(SELECT 0::bigint AS cnt, 0::bigint AS vcnt, NULL::numeric AS sum, NULL::numeric AS min, "
        "NULL::numeric AS max, NULL::timestamptz AS first_ts, NULL::timestamptz AS last_ts, "
        "0::bigint AS days, 0::bigint AS weeks, 0::bigint AS dist, NULL::bigint AS loc_id, "
        "NULL::numeric AS lat, NULL::numeric AS lon) z"
    )


def view_sql(seg: SegmentPlan) -> str:
    view = f"segments.{quote_ident(seg.name)}"
    sql = (
        f"CREATE OR REPLACE VIEW {view} AS SELECT user_id, since FROM segql.members "
        f"WHERE segment = {quote_literal(seg.name)};\n"
    )
    comment = seg.segment.comment
    sql += f"COMMENT ON VIEW {view} IS {quote_literal(comment) if comment else 'NULL'};\n"
    return sql


# -- RFM cutpoints -----------------------------------------------------------------------------


def cutpoints_sql(score: ir.Rfm) -> str:
    """Recompute one score's cutpoints at the current clock: percentile_disc(0.2, 0.4, 0.6,
    0.8) of the values of the users with at least one such event, read from the events the way
    the full query reads them."""
    aliases: dict[FeatureKey, str] = {}
    joins: list[str] = []
    for agg in _aggs(score.value) + _aggs(score.exists):
        key = FeatureKey.of(agg)
        if key not in aliases:
            aliases[key] = f"a{len(aliases) + 1}"
            joins.append(grouped(aliases[key], key))

    def no_segment(node: ir.InSegment) -> str:
        raise TypeError("a score reads no segment")

    render = Renderer(lambda a: features.value(a, aliases[FeatureKey.of(a)]), no_segment)
    exists = score.exists
    assert isinstance(exists, ir.Agg)
    named = "" if exists.event is None else f" WHERE e.name = {quote_literal(exists.event)}"
    column = "durations" if score.beats[0].right.type == "interval" else "cuts"
    population = "\n    ".join(
        [
            f"SELECT {render(score.value)} AS v",
            f"FROM (SELECT DISTINCT e.user_id FROM segql.events e{named}) u",
            "CROSS JOIN clk",
            *joins,
            f"WHERE {render(exists)}",
        ]
    )
    return (
        "WITH clk AS (SELECT segql.now() AS now),\n"
        f"pop AS MATERIALIZED (\n    {population}\n)\n"
        f"UPDATE segql.rfm_cutpoints SET {column} = (SELECT percentile_disc("
        f"{features.rfm.FRACTIONS}) WITHIN GROUP (ORDER BY pop.v) FROM pop),\n"
        "    population = (SELECT count(*) FROM pop), computed_at = (SELECT now FROM clk),\n"
        f"    refreshed_at = now()\nWHERE score = {quote_literal(score.key)};\n"
    )


def score_row_sql(score: ir.Rfm) -> str:
    """The catalog row of a score, its cutpoints left as they are when it exists."""
    value = next(n for n in ir.walk(score.value) if isinstance(n, ir.Agg))

    def lit(text: str | None) -> str:
        return "NULL" if text is None else quote_literal(text)

    window = "NULL" if value.window is None else f"{value.window}::numeric"
    return (
        "INSERT INTO segql.rfm_cutpoints (score, function, event, prop, within_seconds, "
        "compute_sql)\n"
        f"VALUES ({lit(score.key)}, {lit(score.function)}, {lit(value.event)}, "
        f"{lit(value.prop)}, {window}, {lit(cutpoints_sql(score))})\n"
        "ON CONFLICT (score) DO UPDATE SET compute_sql = excluded.compute_sql;\n"
    )
