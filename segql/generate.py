"""A plan to SQL: the incremental program and, from the same plan, each segment's full query.

DDL shapes live in Jinja templates under sql/templates; expressions come from `render`. Names
are versioned (s_<segment>_v<version>, p<deploy>_...) so a new deploy can be created beside the
old one and swapped in within one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2

from segql import features, ir
from segql.features import STATE_COLUMNS, next_change
from segql.plan import FeatureKey, Plan, SegmentPlan
from segql.render import (
    Renderer,
    event_match,
    prop_value,
    quote_ident,
    quote_literal,
    seconds,
)


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
    value = prop_value(key.prop)
    cond = [user_cond] if user_cond else []
    live = ""
    if key.event is not None:
        cond.append(f"e.name = {quote_literal(key.event)}")
    if key.window is not None:
        cond.append(f"e.ts > clk.now - {seconds(_decimal(key.window))}")
        live = " FILTER (WHERE e.ts <= clk.now)"
    if key.filter is not None:
        cond.append(event_match(None, key.filter))
    columns = ", ".join(
        f"{column.aggregate.format(v=value)}{live} AS {name}"
        for name, column in STATE_COLUMNS.items()
        if name != "days" or key.days
    )
    return " AND ".join(cond), columns


def grouped(alias: str, key: FeatureKey) -> str:
    """Per-user aggregates over every user's events in one grouped scan (the full query)."""
    cond, columns = _source(key, "")
    where = f" WHERE {cond}" if cond else ""
    return (
        f"LEFT JOIN (SELECT e.user_id, {columns} "
        f"FROM segql.events e CROSS JOIN clk{where} GROUP BY e.user_id) {alias} "
        f"ON {alias}.user_id = u.user_id"
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
    refs, joins = _feature_joins(plan, seg.keys, _columns([seg]), per_user=True)

    def member(node: ir.InSegment) -> str:
        return (
            "EXISTS (SELECT 1 FROM segql.members m "
            f"WHERE m.segment = {quote_literal(node.name)} AND m.user_id = u.user_id)"
        )

    render = Renderer(lambda a: features.value(a, *refs[FeatureKey.of(a)]), member)
    fn = function_name(seg.name, seg.version)
    create = template(
        "segment.sql.j2",
        name=seg.name,
        version=seg.version,
        fn=fn,
        channel=channel(seg.name),
        timed=seg.timed,
        predicate=render(seg.segment.condition),
        due=_timer_due(seg, refs, render),
        joins=joins,
    )
    return SegmentSQL(fn, create, full_query(seg))


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
    per_user: bool = False,
) -> tuple[dict[FeatureKey, tuple[str, str]], list[str]]:
    """Joins that read each feature once for the users in p_users.

    Windowed features over the same events (same name and filter) share one scan of the widest
    window, each keeping its own columns: `refs[key]` is (alias, column prefix). For `per_user`,
    see windowed_scan.
    """
    refs: dict[FeatureKey, tuple[str, str]] = {}
    joins: list[str] = []
    scans: dict[tuple[str | None, str], list[FeatureKey]] = {}
    states: set[int] = set()

    def state(key: FeatureKey) -> str:
        fid = plan.feature_ids[key]
        if fid not in states:
            states.add(fid)
            joins.append(state_join(f"f{fid}", fid))
        return f"f{fid}"

    for number, key in enumerate(dict.fromkeys(keys), start=1):
        if key.window is None:
            refs[key] = (state(key), "")
        elif key in plan.recent:
            alias = f"r{number}"
            joins.append(recent_read(alias, key, state(plan.recent[key])))
            refs[key] = (alias, "")
        else:
            scans.setdefault((key.event, repr(key.filter)), []).append(key)
    for number, shared in enumerate(scans.values(), start=1):
        alias = f"w{number}"
        joins.append(windowed_scan(alias, shared, "p_users", columns, per_user))
        for index, key in enumerate(shared, start=1):
            refs[key] = (alias, f"k{index}_")
    return refs, joins


def _due(ref: tuple[str, str]) -> str:
    return f"{ref[0]}.{ref[1]}due"


def _timer_due(seg: SegmentPlan, refs: dict[FeatureKey, tuple[str, str]], render: Renderer) -> str:
    """When the user must be evaluated again with no new data: the earliest instant a window
    or a comparison with now() changes, unless the outcome is settled whatever the clock does
    (see `_Fate`); then no timer is kept at all."""
    dues = [_due(refs[k]) for k in seg.window_keys]
    dues += [render.crossing(atom, slope) for atom, slope in seg.atoms]
    if not dues:
        return "NULL::timestamptz"
    settled = _Fates(seg, refs, render)(seg.segment.condition).settled
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
        self, seg: SegmentPlan, refs: dict[FeatureKey, tuple[str, str]], render: Renderer
    ) -> None:
        self.atoms = seg.atoms
        self.refs = refs
        self.render = render

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
        if isinstance(node, ir.Compare):
            return self.compare(node)
        return _UNKNOWN

    def pending(self, agg: ir.Agg) -> str:
        return f"coalesce({self.refs[FeatureKey.of(agg)][0]}.pending, false)"

    def falling_bool(self, agg: ir.Agg) -> _Fate:
        """did(..., within): true can become false, false stays false unless events are due."""
        if agg.type != "bool" or agg.window is None or not features.of(agg).falls_with_clock:
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
    return (
        isinstance(node, ir.Agg) and node.window is not None and features.of(node).falls_with_clock
    )


def _windowed(node: ir.Expr) -> bool:
    return isinstance(node, ir.Agg) and node.window is not None


def _moves(node: ir.Expr) -> bool:
    """Can the expression's value change with the clock alone?"""
    return any(isinstance(n, ir.Now) or _windowed(n) for n in ir.walk(node))


def windowed_scan(
    alias: str,
    keys: list[FeatureKey],
    users: str,
    columns: dict[FeatureKey, set[str]],
    per_user: bool = False,
) -> str:
    """Windowed features of one event source for the users, from one scan of the widest window.

    An event counts from its ts until ts + window; the earliest of those instants still ahead
    is when a feature next changes (its `due`). By default one grouped scan reads every user in
    `users` at one clock. `per_user` reads the outer user's events at that user's own instant
    (`clk.now` per row), one index range per user: a join of the events with a table of clocks
    would be planned from estimates, and a nested loop over ten thousand users is quadratic.
    """
    first = keys[0]
    widths = [_decimal(k.window) for k in keys if k.window is not None]
    widest = seconds(max(widths))
    cond = ["e.user_id = u.user_id" if per_user else f"e.user_id = ANY({users})"]
    if first.event is not None:
        cond.append(f"e.name = {quote_literal(first.event)}")
    cond.append(f"e.ts > clk.now - {widest}")
    if first.filter is not None:
        cond.append(event_match(None, first.filter))
    cols = []
    for index, key in enumerate(keys, start=1):
        p = f"k{index}_"
        width = seconds(_decimal(key.window or "0"))
        inside = f"e.ts > clk.now - {width}"
        live = f" FILTER (WHERE {inside} AND e.ts <= clk.now)"
        value = prop_value(key.prop)
        wanted = columns.get(key, set(STATE_COLUMNS))
        cols += [
            f"{column.aggregate.format(v=value)}{live} AS {p}{name}"
            for name, column in STATE_COLUMNS.items()
            if name in wanted
        ]
        cols.append(
            f"min({next_change('e.ts', width, 'clk.now')}) FILTER (WHERE {inside}) AS {p}due"
        )
    # Events stamped after the clock will still enter a window: until then, counts can rise.
    cols.append("bool_or(e.ts > clk.now) AS pending")
    if per_user:
        return (
            f"LEFT JOIN LATERAL (SELECT {', '.join(cols)} FROM segql.events e "
            f"WHERE {' AND '.join(cond)}) {alias} ON true"
        )
    return (
        f"LEFT JOIN (SELECT e.user_id, {', '.join(cols)} "
        f"FROM segql.events e CROSS JOIN clk WHERE {' AND '.join(cond)} GROUP BY e.user_id) "
        f"{alias} ON {alias}.user_id = u.user_id"
    )


def recent_read(alias: str, key: FeatureKey, state: str) -> str:
    """A windowed count of the outer user from its source's newest timestamps, in O(1).

    Exact while no event of the source is stamped after the clock (the state's last_ts is
    then in the past, so the newest timestamps are the newest up to now); otherwise, and only
    then, the window's events are read, as windowed_scan would.
    """
    width = seconds(_decimal(key.window or "0"))
    pending = f"coalesce({state}.last_ts > clk.now, false)"
    cond = ["e.user_id = u.user_id", f"e.ts > clk.now - {width}"]
    if key.event is not None:
        cond.append(f"e.name = {quote_literal(key.event)}")
    if key.filter is not None:
        cond.append(event_match(None, key.filter))
    where = " AND ".join(cond)
    count = (
        f"CASE WHEN NOT {pending} "
        f"THEN segql.recent_count({state}.recent, clk.now - {width}, clk.now) "
        f"ELSE (SELECT count(*) FROM segql.events e WHERE {where} AND e.ts <= clk.now) END"
    )
    due = (
        f"CASE WHEN NOT {pending} THEN segql.recent_due({state}.recent, clk.now, {width}) "
        f"ELSE (SELECT min({next_change('e.ts', width, 'clk.now')}) "
        f"FROM segql.events e WHERE {where}) END"
    )
    return (
        f"LEFT JOIN LATERAL (SELECT {count} AS cnt, {due} AS due, {pending} AS pending) "
        f"{alias} ON true"
    )


def state_join(alias: str, fid: int) -> str:
    """A state feature for the outer user: one primary-key probe, whatever the estimates."""
    return (
        f"LEFT JOIN LATERAL (SELECT s.* FROM segql.feature_state s WHERE s.feature_id = {fid} "
        f"AND s.user_id = u.user_id LIMIT 1) {alias} ON true"
    )


def group_function_name(deploy: int, index: int) -> str:
    return f"p{deploy}_g{index}"


def group_sql(plan: Plan, segments: list[SegmentPlan], fn: str) -> str:
    """One function that evaluates several dependency-free segments in one statement."""
    refs, joins = _feature_joins(plan, [k for s in segments for k in s.keys], _columns(segments))

    def no_segment(node: ir.InSegment) -> str:
        raise TypeError("grouped segments read no other segment")

    render = Renderer(lambda a: features.value(a, *refs[FeatureKey.of(a)]), no_segment)
    members = []
    for s in segments:
        members.append(
            {
                "name": s.name,
                "version": s.version,
                "timed": s.timed,
                "predicate": render(s.segment.condition),
                "due": _timer_due(s, refs, render),
            }
        )
    return template("group.sql.j2", fn=fn, members=members, joins=joins)


def full_query(seg: SegmentPlan) -> str:
    """The definition evaluated from scratch over all events: the oracle, and reach estimates."""
    by_name = {s.name: s for s in seg.inlined}
    aliases: dict[FeatureKey, str] = {}
    joins: list[str] = []
    for s in [seg.segment, *seg.inlined]:
        for agg in _aggs(s.condition):
            key = FeatureKey.of(agg)
            if key not in aliases:
                aliases[key] = f"a{len(aliases) + 1}"
                joins.append(grouped(aliases[key], key))

    def inline(node: ir.InSegment) -> str:
        # Membership is never unknown: a NULL condition means "not a member".
        return f"coalesce({render(by_name[node.name].condition)}, false)"

    render = Renderer(lambda a: features.value(a, aliases[FeatureKey.of(a)]), inline)
    return template("full.sql.j2", joins=joins, predicate=render(seg.segment.condition))


def _aggs(condition: ir.Expr) -> list[ir.Agg]:
    return [n for n in ir.walk(condition) if isinstance(n, ir.Agg)]


# -- the program -------------------------------------------------------------------------------


@dataclass
class _ChainSegment:
    name: str
    index: int
    fn: str
    deps: list[int]


def state_agg(plan: Plan, keys: list[FeatureKey], source: str, where: str) -> str:
    rows = [
        {
            "id": plan.feature_ids[k],
            "match": event_match(k.event, k.filter),
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
        "ELSE segql.newest(fs.recent || excluded.recent, "
        f"CASE fs.feature_id {' '.join(sizes)} END) END"
    )


def feature_backfill_sql(plan: Plan, keys: list[FeatureKey]) -> str:
    """Shared state features computed from every event (deploy of new features, rebuild)."""
    merged = [c.name for c in STATE_COLUMNS.values() if c.merge]
    columns = ", ".join(["feature_id", "user_id", *merged, "recent"])
    return (
        f"INSERT INTO segql.feature_state ({columns})\n"
        + state_agg(plan, keys, "segql.events", "")
        + ";"
    )


def program_sql(plan: Plan, deploy: int) -> str:
    """Trigger functions, triggers and the timer tick for every deployed segment together."""
    index = {s.name: i + 1 for i, s in enumerate(plan.segments)}
    chain_segments = [
        _ChainSegment(
            s.name,
            index[s.name],
            function_name(s.name, s.version),
            [index[d] for d in s.segment.depends_on],
        )
        for s in plan.segments
    ]
    event_sets: list[dict[str, Any]] = []
    set_of: dict[str, int] = {}
    for s in plan.segments:
        if not s.events:
            continue
        names = None if None in s.events else sorted(e for e in s.events if e is not None)
        entry = {"names": names}
        if entry not in event_sets:
            event_sets.append(entry)
        set_of[s.name] = event_sets.index(entry) + 1

    def seeds(fn: Any) -> dict[str, str]:
        return {s.name: fn(s) for s in plan.segments}

    def new(s: SegmentPlan) -> str:
        return "v_new" if plan.must_see_new_users(s) else "NULL::text[]"

    def new_or_gone(s: SegmentPlan) -> str:
        return "v_new || v_gone" if plan.must_see_new_users(s) else "NULL::text[]"

    insert_seeds = seeds(
        lambda s: f"v_set_{set_of[s.name]} || {new(s)}" if s.name in set_of else new(s)
    )
    profile_seeds = seeds(
        lambda s: "v_affected || v_new || v_gone" if s.reads_traits else new_or_gone(s)
    )
    tick_seeds = seeds(
        lambda s: (
            (
                "array(SELECT x.u FROM unnest(v_segs, v_affected) AS x(s, u) "
                f"WHERE x.s = {quote_literal(s.name)})"
            )
            if s.timed
            else "NULL::text[]"
        )
    )
    all_seeds = seeds(lambda s: "v_affected")
    keys = plan.state_keys

    def chain(
        segments: list[_ChainSegment], seed: dict[str, str], cause: str, clocks: str = ""
    ) -> str:
        return template(
            "chain.sql.j2", segments=segments, seeds=seed, cause=cause, clocks=clocks
        ).rstrip()

    # On insert, segments that read the same events and no other segment are evaluated
    # together, so each feature is read once per batch for all of them.
    groups: dict[int, list[SegmentPlan]] = {}
    for s in plan.segments:
        if s.name in set_of and not s.segment.depends_on:
            groups.setdefault(set_of[s.name], []).append(s)
    grouped_names = {s.name for g in groups.values() for s in g}
    read_by_others = {d for s in plan.segments for d in s.segment.depends_on}
    group_defs: list[str] = []
    insert_lines: list[str] = []
    for number, (set_index, members) in enumerate(groups.items(), start=1):
        fn = group_function_name(deploy, number)
        group_defs.append(group_sql(plan, members, fn))
        seed = f"v_set_{set_index}"
        if any(plan.must_see_new_users(s) for s in members):
            seed += " || v_new"
        insert_lines += [
            f"    v_users := {seed};",
            "    IF cardinality(v_users) > 0 THEN",
            "        SELECT array_agg(x.segment), array_agg(x.user_id) INTO v_gs, v_gu",
            f"        FROM segql.{quote_ident(fn)}(v_users, 'event') AS x;",
        ]
        for s in members:
            if s.name in read_by_others:
                insert_lines.append(
                    f"        v_changed_{index[s.name]} := array(SELECT y.u FROM "
                    f"unnest(v_gs, v_gu) AS y(s, u) WHERE y.s = {quote_literal(s.name)});"
                )
        insert_lines.append("    END IF;")
    rest = [c for c in chain_segments if c.name not in grouped_names]
    insert_body = "\n".join(insert_lines) + "\n" + chain(rest, insert_seeds, "'event'")

    return template(
        "program.sql.j2",
        deploy=deploy,
        group_functions=group_defs,
        insert_body=insert_body,
        segments=chain_segments,
        features=keys,
        state_columns=[c for c in STATE_COLUMNS.values() if c.merge is not None],
        recent_merge=_recent_merge(plan, keys),
        event_sets=event_sets,
        insert_seeds=insert_seeds,
        affected_seeds=all_seeds,
        profile_seeds=profile_seeds,
        refresh_seeds=all_seeds,
        tick_seeds=tick_seeds,
        chain=chain,
        state_agg=lambda source, where: state_agg(plan, keys, source, where),
    )


def empty_member_sql(seg: SegmentPlan, deps: dict[str, bool]) -> str:
    """Is a user with no events and no profile a member, and can time change that?

    Evaluated once at deploy: when neither, a user's first appearance need not be evaluated
    against this segment unless it brings events the segment reads.
    """
    render = Renderer(
        lambda a: features.value(a, "z"),
        lambda node: "true" if deps.get(node.name, True) else "false",
    )
    dues = [render.crossing(atom, slope) for atom, slope in seg.atoms]
    due = f"LEAST({', '.join(dues)})" if dues else "NULL::timestamptz"
    return (
        f"SELECT coalesce({render(seg.segment.condition)}, false), {due} IS NOT NULL "
        "FROM (SELECT segql.now() AS now) clk, (SELECT NULL::jsonb AS traits) p, "
        "(SELECT 0::bigint AS cnt, 0::bigint AS vcnt, NULL::numeric AS sum, NULL::numeric AS min, "
        "NULL::numeric AS max, NULL::timestamptz AS first_ts, NULL::timestamptz AS last_ts, "
        "0::bigint AS days) z"
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
