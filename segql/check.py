"""Syntax trees to checked, typed definitions — or an error a person can act on.

Everything a definition may contain is listed here; anything else is rejected, because a
definition becomes SQL that runs inside the triggers of every writer.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Literal, NoReturn

from sqlglot import exp

from segql import features, ir
from segql.diagnostics import DefinitionError, SourceFile, Span
from segql.models.spec import Models, Trained
from segql.parse import (
    ZONE_SYNTAX,
    CreateSegment,
    CreateTiers,
    CreateZone,
    Statement,
    parse_text,
    span_of,
)

# Generated objects are named s_<name>_v<version>; Postgres truncates identifiers at 63 bytes.
MAX_NAME_BYTES = 63 - len("s_") - len("_v999999")
MAX_INTERVAL_SECONDS = 36500 * 86400
# Each step is one index probe per candidate start: a bound keeps a definition's cost in view.
MAX_SEQUENCE_STEPS = 8
NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")

SESSION_FUNCTIONS = ("session_count", "avg_session_minutes")
FUNCTIONS = sorted(
    [
        *features.AGGREGATES,
        *features.SCORES,
        *SESSION_FUNCTIONS,
        "in_segment",
        "now",
        "score",
        "sequence",
        "distance_km",
        "in_zone",
    ]
)

COMPARISONS: dict[type[exp.Expression], str] = {
    exp.EQ: "=",
    exp.NEQ: "<>",
    exp.LT: "<",
    exp.LTE: "<=",
    exp.GT: ">",
    exp.GTE: ">=",
}
ARITHMETIC: dict[type[exp.Expression], str] = {
    exp.Add: "+",
    exp.Sub: "-",
    exp.Mul: "*",
    exp.Div: "/",
    exp.Mod: "%",
}
CAST_TYPES: dict[str, ir.Type] = {
    "TIMESTAMPTZ": "ts",
    "TIMESTAMP": "ts",
    "DATE": "ts",
    "TIMESTAMPLTZ": "ts",
    "DECIMAL": "num",
    "INT": "num",
    "BIGINT": "num",
    "SMALLINT": "num",
    "DOUBLE": "num",
    "FLOAT": "num",
    "BIGDECIMAL": "num",
    "TEXT": "text",
    "VARCHAR": "text",
    "CHAR": "text",
    "BOOLEAN": "bool",
    "INTERVAL": "interval",
}
TYPE_NAMES: dict[ir.Type, str] = {
    "bool": "a boolean",
    "num": "a number",
    "text": "text",
    "ts": "a timestamp",
    "interval": "an interval",
}

_UNITS: dict[str, Decimal] = {}
for _names, _secs in (
    (("us", "usec", "usecs", "microsecond", "microseconds"), Decimal("0.000001")),
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), Decimal("0.001")),
    (("s", "sec", "secs", "second", "seconds"), Decimal(1)),
    (("m", "min", "mins", "minute", "minutes"), Decimal(60)),
    (("h", "hr", "hrs", "hour", "hours"), Decimal(3600)),
    (("d", "day", "days"), Decimal(86400)),
    (("w", "week", "weeks"), Decimal(604800)),
):
    for _n in _names:
        _UNITS[_n] = _secs
_CALENDAR_UNITS = {
    "mon",
    "mons",
    "month",
    "months",
    "y",
    "yr",
    "yrs",
    "year",
    "years",
    "decade",
    "decades",
    "century",
    "centuries",
    "millennium",
    "millennia",
}
_INTERVAL_PART = re.compile(r"\s*([-+]?\d+(?:\.\d+)?)\s*([a-z]+)\s*")


class Checker:
    """Checks the statements of one or more files against each other and the known segments."""

    def __init__(
        self,
        known_segments: Iterable[str] = (),
        models: Models | None = None,
        zones: Mapping[str, ir.Zone] | None = None,
    ) -> None:
        self.known = set(known_segments)
        self.models: Models = models or {}
        # Deployed zones; the files' own CREATE ZONE statements replace them by name.
        self.zones: dict[str, ir.Zone] = dict(zones or {})
        self.defined_zones: list[ir.Zone] = []
        self.source: SourceFile = SourceFile("<string>", "")
        self.files: dict[str, SourceFile] = {}
        self.condition_span: Span | None = None

    # -- statements ----------------------------------------------------------------------------

    def check(self, statements: list[Statement]) -> list[ir.Segment]:
        segments: list[ir.Segment] = []
        seen: dict[str, ir.Segment] = {}
        self.files = {s.source.path: s.source for s in statements}
        groups: dict[str, ir.Segment] = {}
        # Zones first: a segment may read a zone defined further down the file.
        for stmt in statements:
            if isinstance(stmt.tree, CreateZone):
                self.source = stmt.source
                self.zone_statement(stmt)
        for stmt in statements:
            if isinstance(stmt.tree, CreateZone):
                continue
            self.source = stmt.source
            is_tiers = isinstance(stmt.tree, CreateTiers)
            built = self.tiers(stmt) if is_tiers else [self.statement(stmt)]
            group = built[0].tiers
            if group is not None and group in groups:
                first = groups[group]
                line, _ = self.files[first.source].position(first.span.start)
                self.fail(
                    span_of(stmt.tree.this, self.source),
                    f"tiers '{group}' are defined twice (first at {first.source}:{line})",
                    "give each CREATE TIERS a unique name, or delete one of them",
                )
            if group is not None:
                groups[group] = built[0]
            for seg in built:
                self.add(seg, seen, segments)
        names = self.known | set(seen)
        for seg in segments:
            self.source = self.files[seg.source]
            for node in ir.walk(seg.condition):
                if isinstance(node, ir.InSegment) and node.name not in names:
                    self.fail(
                        node.span,
                        f"unknown segment '{node.name}' in in_segment()",
                        _suggest(
                            node.name, names, "define it in one of the files, or deploy it first"
                        ),
                    )
        self.reject_cycles(segments)
        return segments

    def add(self, seg: ir.Segment, seen: dict[str, ir.Segment], out: list[ir.Segment]) -> None:
        if seg.name in seen:
            first = seen[seg.name]
            line, _ = self.files[first.source].position(first.span.start)
            self.fail(
                seg.span,
                f"segment '{seg.name}' is defined twice (first at {first.source}:{line})",
                "give each segment a unique name, or delete one of the definitions",
            )
        seen[seg.name] = seg
        out.append(seg)

    def tiers(self, stmt: Statement) -> list[ir.Segment]:
        """CREATE TIERS: one segment per tier, each holding when its own condition does and
        no earlier tier's does, so a user is in at most one, the first that matches."""
        tree = stmt.tree
        group, _ = self.name_of(tree.this, "tiers")
        comment = self.comment_of(tree)
        self.condition_span = _after_as(stmt)
        out: list[ir.Segment] = []
        earlier: list[ir.Expr] = []
        for rank, tier in enumerate(tree.expressions, start=1):
            name, span = self.name_of(tier.this, "tier")
            if name == group:
                self.fail(
                    span,
                    f"tier '{name}' has the name of its tiers",
                    f"name the tiers after what they divide (e.g. {group}_tiers), "
                    "or rename the tier",
                )
            own = self.condition_of(tier.expression)
            condition = own
            if earlier:
                # NOT (c IS TRUE): an earlier tier whose condition is unknown does not hold.
                before = tuple(
                    ir.Not(ir.IsBool(c, True, span=c.span), span=c.span) for c in earlier
                )
                condition = ir.BoolOp("and", (own, *before), span=own.span)
            earlier.append(own)
            out.append(
                ir.Segment(name, comment, condition, stmt.text, stmt.source.path, span, group, rank)
            )
        return out

    def statement(self, stmt: Statement) -> ir.Segment:
        tree = stmt.tree
        if not isinstance(tree, CreateSegment):
            self.not_a_segment(stmt)
        name, name_span = self.name_of(tree.this, "segment")
        comment = self.comment_of(tree)
        self.condition_span = _after_as(stmt)
        condition = self.condition_of(tree.expression)
        return ir.Segment(name, comment, condition, stmt.text, stmt.source.path, name_span)

    def name_of(self, ident: exp.Expression, what: str) -> tuple[str, Span]:
        """A segment's (or tier's) name: unquoted, lower-case, and short enough for the names
        generated from it."""
        name_span = span_of(ident, self.source)
        if ident.args.get("quoted"):
            self.fail(
                name_span,
                f"{what} names cannot be quoted",
                "use lower-case letters, digits and underscores, unquoted",
            )
        name = str(ident.this).lower()
        if not NAME_RE.match(name):
            self.fail(
                name_span,
                f"'{name}' is not a valid {what} name",
                "use lower-case letters, digits and underscores, starting with a letter",
            )
        if len(name.encode()) > MAX_NAME_BYTES:
            self.fail(
                name_span,
                f"{what} name '{name}' is {len(name.encode())} bytes long",
                f"use at most {MAX_NAME_BYTES} bytes: generated names like s_<name>_v<version> "
                "must fit Postgres's 63-byte identifiers",
            )
        return name, name_span

    def comment_of(self, tree: exp.Expr) -> str | None:
        comment_node = tree.args.get("comment")
        comment = str(comment_node.this) if comment_node is not None else None
        if comment_node is not None and comment is not None and "\x00" in comment:
            self.fail(
                span_of(comment_node, self.source),
                "comments cannot contain NUL characters",
                "remove the NUL character from the COMMENT string",
            )
        return comment

    def condition_of(self, node: exp.Expression) -> ir.Expr:
        condition = self.build(node, "bool", scope="segment")
        if condition.type != "bool":
            self.fail(
                span_of(node, self.source),
                f"the condition is {TYPE_NAMES[condition.type]}, not true/false",
                "compare it with something, e.g. event_count('x') >= 3",
            )
        self.check_time(condition)
        return condition

    def zone_statement(self, stmt: Statement) -> ir.Zone:
        """CREATE ZONE: a polygon of at least 3 (lon lat) points, or a circle (lat, lon, km)."""
        tree = stmt.tree
        ident = tree.this
        name_span = span_of(ident, self.source)
        name = str(ident.this).lower()
        if ident.args.get("quoted") or not NAME_RE.match(name) or len(name.encode()) > 63:
            self.fail(
                name_span,
                f"'{ident.this}' is not a valid zone name",
                "use at most 63 lower-case letters, digits and underscores, starting with a letter",
            )
        if any(z.name == name for z in self.defined_zones):
            self.fail(name_span, f"zone '{name}' is defined twice", "give each zone a unique name")
        groups = [list(t.expressions) for t in tree.args["points"]]
        values = [[self.zone_number(n) for n in g] for g in groups]
        if tree.args["kind"].name == "circle":
            zone = self.circle(name, groups[0], values[0], stmt)
        else:
            zone = self.polygon(name, groups, values, stmt)
        self.defined_zones.append(zone)
        self.zones[name] = zone
        return zone

    def number_span(self, node: exp.Expression) -> Span:
        """A number as written: sqlglot keeps no position for a minus sign, so a negative
        number starts at its '-'."""
        leaf = node.this if isinstance(node, exp.Neg) else node
        if "start" not in leaf.meta:
            return span_of(node, self.source)
        start, end = int(leaf.meta["start"]), int(leaf.meta["end"])
        text = self.source.text
        if isinstance(node, exp.Neg):
            before = start - 1
            while before > 0 and text[before] in " \t":
                before -= 1
            if text[before] == "-":
                start = before
        return Span(start, end)

    def zone_number(self, node: exp.Expression) -> Decimal:
        span = self.number_span(node)
        negative = isinstance(node, exp.Neg)
        inner = node.this if negative else node
        if not isinstance(inner, exp.Literal) or inner.is_string:
            self.fail(span, "a zone's coordinates are plain numbers", f"write {ZONE_SYNTAX}")
        const = self.literal(inner, "num", span)
        assert isinstance(const, ir.Const) and isinstance(const.value, Decimal)
        value = const.value
        return -value if negative else value

    def coordinate(self, node: exp.Expression, value: Decimal, limit: int, what: str) -> None:
        if abs(value) > limit:
            self.fail(
                self.number_span(node),
                f"{what} {value} is out of range",
                f"a {what} is between -{limit} and {limit} (polygons list lon lat, "
                "circles lat, lon)",
            )

    def circle(
        self, name: str, nodes: list[exp.Expression], values: list[Decimal], stmt: Statement
    ) -> ir.Zone:
        if len(values) != 3:
            self.fail(
                stmt.span,
                f"a circle takes 3 numbers (lat, lon, radius_km), got {len(values)}",
                "write CREATE ZONE store_12 AS CIRCLE (40.7580, -73.9855, 2);",
            )
        lat, lon, radius = values
        self.coordinate(nodes[0], lat, 90, "latitude")
        self.coordinate(nodes[1], lon, 180, "longitude")
        if radius < 0:
            self.fail(
                self.number_span(nodes[2]),
                f"the radius {radius} is negative",
                "give the radius in km, zero or more",
            )
        return ir.Zone(name, "circle", (lat,), (lon,), radius, stmt.text, stmt.source.path)

    def polygon(
        self,
        name: str,
        groups: list[list[exp.Expression]],
        values: list[list[Decimal]],
        stmt: Statement,
    ) -> ir.Zone:
        for group, pair in zip(groups, values, strict=True):
            self.coordinate(group[0], pair[0], 180, "longitude")
            self.coordinate(group[1], pair[1], 90, "latitude")
        points = [(p[0], p[1]) for p in values]
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()  # a closed ring (WKT style) repeats its first point
        if len(set(points)) < 3:
            first, last = self.number_span(groups[0][0]), self.number_span(groups[-1][-1])
            self.fail(
                Span(first.start, last.end),
                f"a polygon needs at least 3 distinct points, got {len(set(points))}",
                "list the corners as lon lat pairs: POLYGON ((2.29 48.85, 2.30 48.86, 2.31 48.85))",
            )
        return ir.Zone(
            name,
            "polygon",
            tuple(p[1] for p in points),
            tuple(p[0] for p in points),
            None,
            stmt.text,
            stmt.source.path,
        )

    def check_time(self, condition: ir.Expr) -> None:
        """now() may only be shifted by intervals inside a comparison, so that the exact moment
        the comparison changes can be computed for the timer."""
        inside: set[int] = set()
        for node in ir.walk(condition):
            if isinstance(node, ir.Compare):
                left, right = ir.now_slope(node.left), ir.now_slope(node.right)
                slope = None if left is None or right is None else left - right
                if slope is None or abs(slope) > 1:
                    self.fail(
                        node.span,
                        "now() can only be moved by adding or subtracting intervals",
                        "write e.g. signed_up_at < now() - interval '30 days'",
                    )
                inside.update(id(n) for n in ir.walk(node))
        for node in ir.walk(condition):
            if isinstance(node, ir.Now) and id(node) not in inside:
                self.fail(
                    node.span,
                    "now() can only be used in a comparison",
                    "write e.g. trial_ends_at < now() + interval '3 days'",
                )

    def reject_cycles(self, segments: list[ir.Segment]) -> None:
        deps = {s.name: s for s in segments}
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2 or name not in deps:
                return
            if state.get(name) == 1:
                seg = deps[path[-1]]
                node = next(
                    n
                    for n in ir.walk(seg.condition)
                    if isinstance(n, ir.InSegment) and n.name == name
                )
                cycle = " -> ".join([*path[path.index(name) :], name])
                self.source = self.files[seg.source]
                self.fail(
                    node.span,
                    f"segments depend on each other in a cycle: {cycle}",
                    "a segment cannot (even indirectly) contain itself; remove one in_segment()",
                )
            state[name] = 1
            for dep in deps[name].depends_on:
                visit(dep, [*path, name])
            state[name] = 2

        for seg in segments:
            visit(seg.name, [])

    # -- expressions ---------------------------------------------------------------------------

    def build(self, node: exp.Expression, want: ir.Type | None, scope: str) -> ir.Expr:
        """Convert a subtree, using `want` to type traits, props and quoted literals."""
        span = span_of(node, self.source, self.condition_span)
        if not isinstance(node, exp.In) and (
            isinstance(node, (exp.Exists, exp.Subquery, exp.Select)) or node.find(exp.Select)
        ):
            # Underline the subquery itself, wherever it sits in the condition.
            culprit = node.find(exp.Exists, exp.Subquery, exp.Select, bfs=False)
            where = span if culprit is None else span_of(culprit, self.source, span)
            self.not_allowed(node, where)
        if isinstance(node, exp.Paren):
            return self.build(node.this, want, scope)
        if isinstance(node, (exp.And, exp.Or)):
            items = tuple(self.boolean(n, scope) for n in (node.this, node.expression))
            return ir.BoolOp("and" if isinstance(node, exp.And) else "or", items, span=span)
        if isinstance(node, exp.Not):
            return ir.Not(self.boolean(node.this, scope), span=span)
        if type(node) in COMPARISONS:
            return self.comparison(COMPARISONS[type(node)], node.this, node.expression, scope, span)
        if isinstance(node, exp.Between):
            low = self.comparison(">=", node.this, node.args["low"], scope, span)
            high = self.comparison("<=", node.this, node.args["high"], scope, span)
            return ir.BoolOp("and", (low, high), span=span)
        if isinstance(node, exp.In):
            return self.in_list(node, scope, span)
        if isinstance(node, (exp.Like, exp.ILike)):
            return self.like(node, scope, span)
        if isinstance(node, exp.Is):
            return self.is_(node, scope, span)
        if type(node) in ARITHMETIC:
            return self.arithmetic(node, want, scope, span)
        if isinstance(node, exp.Neg):
            inner = self.build(node.this, want or "num", scope)
            if inner.type not in ("num", "interval"):
                self.fail(
                    span,
                    f"cannot negate {TYPE_NAMES[inner.type]}",
                    "only numbers and intervals can be negated",
                )
            return ir.Neg(inner, inner.type, span=span)
        if isinstance(node, exp.Literal):
            return self.literal(node, want, span)
        if isinstance(node, exp.Boolean):
            return ir.Const(bool(node.this), "bool", span=span)
        if isinstance(node, exp.Null):
            return ir.Const(None, want or "text", span=span)
        if isinstance(node, exp.Interval):
            return ir.Const(
                self.interval_of(node, span), "interval", span=span, text=_interval_words(node)
            )
        if isinstance(node, exp.CurrentTimestamp):
            if scope == "filter":
                self.fail(
                    span,
                    "now() cannot be used inside FILTER (WHERE ...)",
                    "use within => '<interval>' to restrict events by time",
                )
            return ir.Now(span=span)
        if isinstance(node, exp.Column):
            return self.name_ref(node, want, scope, span)
        if isinstance(node, exp.Cast):
            return self.cast(node, scope, span)
        if isinstance(node, exp.Filter):
            return self.function(node.this, node.expression, scope, span)
        if isinstance(node, exp.Anonymous):
            return self.function(node, None, scope, span)
        if isinstance(node, exp.Func):
            name = node.sql_name().lower() if hasattr(node, "sql_name") else type(node).__name__
            self.fail(
                span,
                f"function '{name}' is not allowed in a segment definition",
                _suggest(name, FUNCTIONS, "the functions are: " + ", ".join(FUNCTIONS)),
            )
        self.not_allowed(node, span)

    def boolean(self, node: exp.Expression, scope: str) -> ir.Expr:
        out = self.build(node, "bool", scope)
        if out.type != "bool":
            self.fail(
                span_of(node, self.source),
                f"expected a condition (true/false), found {TYPE_NAMES[out.type]}",
                "compare it with something, e.g. event_count('x') >= 3",
            )
        return out

    def comparison(
        self, op: str, left: exp.Expression, right: exp.Expression, scope: str, span: Span
    ) -> ir.Expr:
        t = self.natural(left) or self.natural(right) or "text"
        lhs = self.build(left, t, scope)
        rhs = self.build(right, t, scope)
        if lhs.type != rhs.type:
            self.fail(
                span,
                f"cannot compare {TYPE_NAMES[lhs.type]} with {TYPE_NAMES[rhs.type]}",
                "compare values of the same kind (cast a trait with ::numeric, "
                "::timestamptz, ::boolean if needed)",
            )
        if lhs.type == "bool" and op not in ("=", "<>"):
            self.fail(
                span,
                "booleans can only be compared with = or <>",
                "write did('x') or NOT did('x') instead of ordering booleans",
            )
        return ir.Compare(op, lhs, rhs, span=span)  # type: ignore[arg-type]

    def in_list(self, node: exp.In, scope: str, span: Span) -> ir.Expr:
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            self.fail(
                span,
                "subqueries are not allowed in a segment definition",
                "list the values: x IN ('a', 'b')",
            )
        items = node.expressions
        t = self.natural(node.this) or next(
            (self.natural(i) for i in items if self.natural(i)), None
        )
        t = t or "text"
        operand = self.build(node.this, t, scope)
        built = tuple(self.build(i, t, scope) for i in items)
        for item, raw in zip(built, items, strict=True):
            if item.type != operand.type:
                self.fail(
                    span_of(raw, self.source),
                    f"IN list item is {TYPE_NAMES[item.type]}, expected {TYPE_NAMES[operand.type]}",
                )
        return ir.InList(operand, built, span=span)

    def like(self, node: exp.Expression, scope: str, span: Span) -> ir.Expr:
        operand = self.build(node.this, "text", scope)
        pattern = node.expression
        if not (isinstance(pattern, exp.Literal) and pattern.is_string):
            self.fail(
                span_of(pattern, self.source),
                "a LIKE pattern must be a quoted string",
                "write e.g. url LIKE '%/pricing%'",
            )
        if operand.type != "text":
            self.fail(
                span,
                f"LIKE needs text, found {TYPE_NAMES[operand.type]}",
                "LIKE compares text, e.g. city LIKE 'New%'; compare numbers with < > =",
            )
        const = ir.Const(str(pattern.this), "text", span=span_of(pattern, self.source))
        out: ir.Expr = ir.Like(operand, const, isinstance(node, exp.ILike), span=span)
        return ir.Not(out, span=span) if node.args.get("negate") else out

    def is_(self, node: exp.Is, scope: str, span: Span) -> ir.Expr:
        target = node.expression
        out: ir.Expr
        if isinstance(target, exp.Null):
            out = ir.IsNull(self.build(node.this, None, scope), span=span)
        elif isinstance(target, exp.Boolean):
            operand = self.boolean(node.this, scope)
            out = ir.IsBool(operand, bool(target.this), span=span)
        else:
            self.fail(span, "IS must be followed by NULL, TRUE or FALSE", "use = to compare values")
        return ir.Not(out, span=span) if node.args.get("negate") else out

    def arithmetic(
        self, node: exp.Expression, want: ir.Type | None, scope: str, span: Span
    ) -> ir.Expr:
        op = ARITHMETIC[type(node)]
        left, right = node.this, node.expression
        lt, rt = self.natural(left), self.natural(right)
        lt, rt = _fill_arith_types(op, lt, rt, want)
        lhs = self.build(left, lt, scope)
        rhs = self.build(right, rt, scope)
        result = _arith_result(op, lhs.type, rhs.type)
        if result is None:
            self.fail(
                span,
                f"cannot apply {op} to {TYPE_NAMES[lhs.type]} and {TYPE_NAMES[rhs.type]}",
                "timestamps take + or - an interval; intervals take * or / a number",
            )
        return ir.Arith(op, lhs, rhs, result, span=span)  # type: ignore[arg-type]

    def natural(self, node: exp.Expression) -> ir.Type | None:
        """The type a subtree has on its own; None where context decides (traits, quoted text)."""
        if isinstance(node, exp.Paren):
            return self.natural(node.this)
        if isinstance(node, exp.Literal):
            return None if node.is_string else "num"
        if isinstance(node, exp.Boolean):
            return "bool"
        if isinstance(node, (exp.Interval,)):
            return "interval"
        if isinstance(node, exp.CurrentTimestamp):
            return "ts"
        if isinstance(node, exp.Cast):
            return CAST_TYPES.get(_type_name(node))
        if isinstance(node, exp.Neg):
            return self.natural(node.this)
        if isinstance(node, (exp.Filter, exp.Anonymous)):
            fn = node.this if isinstance(node, exp.Filter) else node
            name = str(fn.this).lower() if isinstance(fn, exp.Anonymous) else ""
            if name in features.AGGREGATES:
                return features.AGGREGATES[name].type
            if name in features.SCORES:
                return "num"
            if name in ("in_segment", "sequence", "in_zone"):
                return "bool"
            if name in SESSION_FUNCTIONS:
                return "num"
            if name == "distance_km":
                return "num"
            return None
        if type(node) in ARITHMETIC:
            op = ARITHMETIC[type(node)]
            left, right = self.natural(node.this), self.natural(node.expression)
            if op in "+-" and "interval" in (left, right) and None in (left, right):
                # trait ± interval is a timestamp or an interval: the other side decides.
                return None
            lt, rt = _fill_arith_types(op, left, right, None)
            if lt is None or rt is None:
                return lt if op not in "+-" or lt != "ts" else None
            return _arith_result(op, lt, rt)
        if type(node) in COMPARISONS or isinstance(
            node, (exp.And, exp.Or, exp.Not, exp.In, exp.Like, exp.ILike, exp.Is, exp.Between)
        ):
            return "bool"
        return None

    def literal(self, node: exp.Literal, want: ir.Type | None, span: Span) -> ir.Expr:
        text = str(node.this)
        if not node.is_string:
            try:
                value = Decimal(text)
            except InvalidOperation:
                self.fail(span, f"'{text}' is not a number", "write a plain number, e.g. 100")
            if value and not -1000 < value.adjusted() < 1000:
                self.fail(
                    span,
                    f"{text} is outside the range segql accepts",
                    "use a number between 1e-999 and 1e999",
                )
            return ir.Const(value, "num", span=span)
        if "\x00" in text:
            self.fail(span, "strings cannot contain NUL characters", "remove the NUL character")
        if want == "ts":
            return ir.Const(self.timestamp_of(text, span), "ts", span=span)
        if want == "interval":
            return ir.Const(self.parse_interval(text, span), "interval", span=span, text=text)
        if want == "num":
            self.fail(
                span,
                f"expected a number, found the string '{text}'",
                "write numbers without quotes",
            )
        if want == "bool":
            if text.lower() in ("true", "false", "t", "f", "yes", "no"):
                return ir.Const(text.lower() in ("true", "t", "yes"), "bool", span=span)
            self.fail(span, f"expected true or false, found the string '{text}'")
        return ir.Const(text, "text", span=span)

    def name_ref(self, node: exp.Column, want: ir.Type | None, scope: str, span: Span) -> ir.Expr:
        if node.table or node.args.get("db") or node.args.get("catalog"):
            self.fail(
                span,
                f"qualified name '{node.sql()}' is not allowed",
                "traits are bare names (plan, city); inside FILTER (WHERE ...) bare names "
                "are the event's props",
            )
        if isinstance(node.this, exp.Star):
            self.fail(span, "'*' is not allowed here")
        key = str(node.this.this) if isinstance(node.this, exp.Identifier) else node.name
        if not key or "\x00" in key:
            self.fail(span, "empty or invalid name")
        if scope == "filter":
            return ir.Prop(key, want or "text", span=span)
        return ir.Trait(key, want or "text", span=span)

    def cast(self, node: exp.Cast, scope: str, span: Span) -> ir.Expr:
        target = CAST_TYPES.get(_type_name(node))
        if target is None:
            self.fail(
                span,
                f"cannot cast to {node.to.sql()}",
                "cast to numeric, text, boolean, timestamptz, date or interval",
            )
        inner = node.this
        if isinstance(inner, (exp.Literal, exp.Column, exp.Null, exp.Paren)):
            built = self.build(inner, target, scope)
            if built.type != target:
                self.fail(span, f"cannot cast {TYPE_NAMES[built.type]} to {TYPE_NAMES[target]}")
            return built
        built = self.build(inner, target, scope)
        if built.type != target:
            self.fail(
                span,
                "only traits, props and literals can be cast",
                "cast the trait itself, e.g. lifetime_value::numeric",
            )
        return built

    def function(
        self, fn: exp.Expression, where: exp.Expression | None, scope: str, span: Span
    ) -> ir.Expr:
        if not isinstance(fn, exp.Anonymous):
            self.not_allowed(fn, span)
        name = str(fn.this).lower()
        if name == "in_segment":
            return self.in_segment(list(fn.expressions), where, scope, span)
        if name in ("distance_km", "in_zone"):
            if where is not None:
                self.fail(
                    span,
                    f"FILTER applies to event aggregates, not {name}()",
                    f"put {name}() inside an aggregate's filter: "
                    "did('*') FILTER (WHERE in_zone('downtown'))",
                )
            args = list(fn.expressions)
            if name == "in_zone":
                return self.in_zone(args, span)
            return self.distance(args, scope, span)
        if name == "score":
            return self.score(list(fn.expressions), where, scope, span)
        if name in features.SCORES and scope != "filter":
            return self.rfm_score(features.SCORES[name], list(fn.expressions), where, span)
        if name == "sequence" and scope != "filter":
            return self.sequence(list(fn.expressions), where, span)
        if name in SESSION_FUNCTIONS and scope != "filter":
            return self.session(name, list(fn.expressions), where, span)
        if name not in features.AGGREGATES and name not in (
            "sequence",
            *SESSION_FUNCTIONS,
            *features.SCORES,
        ):
            self.fail(
                span_of(fn, self.source),
                f"unknown function '{name}'",
                _suggest(name, FUNCTIONS, "the functions are: " + ", ".join(FUNCTIONS)),
            )
        if scope == "filter":
            self.fail(
                span,
                f"{name}() cannot be used inside FILTER (WHERE ...)",
                "a filter looks at one event's props, e.g. FILTER (WHERE amount > 10)",
            )
        return self.aggregate(features.AGGREGATES[name], list(fn.expressions), where, span)

    def rfm_score(
        self,
        kind: features.RfmScore,
        args: list[exp.Expression],
        where: exp.Expression | None,
        span: Span,
    ) -> ir.Expr:
        """An RFM score: its arguments are those of the aggregate it scores."""
        if where is not None:
            self.fail(
                span,
                f"{kind.function}() takes no FILTER: its cutpoints are over every such event",
                f"write {kind.usage}",
            )
        agg = self.aggregate(kind.signature, args, None, span, kind.usage)
        assert isinstance(agg, ir.Agg)
        if agg.after is not None:
            self.fail(
                span,
                f"{kind.function}() takes no after =>: its population is every such event",
                f"write {kind.usage}",
            )
        if agg.window is not None and not kind.windowed:
            self.fail(
                span,
                f"{kind.function}() takes no window: it scores the time since the last event",
                f"write {kind.usage}",
            )
        return kind.score(agg)

    def sequence(
        self, args: list[exp.Expression], where: exp.Expression | None, span: Span
    ) -> ir.Expr:
        """sequence('a' [FILTER (WHERE ...)], 'b', ... [, within => W] [, since => L])."""
        usage = "write sequence('view', 'add_to_cart', within => '10 minutes')"
        if where is not None:
            self.fail(
                span,
                "FILTER after sequence(...) is ambiguous: each step filters its own events",
                "put the filter on its step: sequence('cart' FILTER (WHERE price > 50), 'buy')",
            )
        positional = [a for a in args if not isinstance(a, exp.Kwarg)]
        named = [a for a in args if isinstance(a, exp.Kwarg)]
        first_named = next((i for i, a in enumerate(args) if isinstance(a, exp.Kwarg)), len(args))
        late = next((a for a in args[first_named:] if not isinstance(a, exp.Kwarg)), None)
        if late is not None:
            self.fail(
                span_of(late, self.source),
                "the steps of a sequence come before within => and since =>",
                usage,
            )
        if len(positional) < 2:
            self.fail(
                span,
                f"sequence takes at least two steps, got {len(positional)}",
                f"{usage}; for one event use did('view')",
            )
        if len(positional) > MAX_SEQUENCE_STEPS:
            self.fail(
                span,
                f"sequence takes at most {MAX_SEQUENCE_STEPS} steps, got {len(positional)}",
                "split it: sequence('a', 'b') AND sequence('b', 'c') is a weaker but cheap form",
            )
        steps = tuple(self.step(arg, usage) for arg in positional)
        given: dict[str, exp.Kwarg] = {}
        for kw in named:
            key = str(kw.this.this).lower() if kw.this is not None else ""
            if key not in ("within", "since"):
                self.fail(
                    span_of(kw, self.source),
                    f"unknown named argument '{key}' of sequence",
                    "sequence takes within => '<interval>' (the whole chain's span) and "
                    "since => '<interval>' (how recent its first step must be)",
                )
            if key in given:
                self.fail(span_of(kw, self.source), f"{key} is given twice", f"give {key} => once")
            given[key] = kw
        window = self.window_of(given["within"].expression) if "within" in given else None
        since = self.window_of(given["since"].expression) if "since" in given else None
        return ir.Sequence(
            steps,
            window,
            since,
            span=span,
            window_text=_interval_words(given["within"].expression) if "within" in given else None,
            since_text=_interval_words(given["since"].expression) if "since" in given else None,
        )

    def session(
        self, name: str, args: list[exp.Expression], where: exp.Expression | None, span: Span
    ) -> ir.Expr:
        """session_count(['<event>',] within => W), avg_session_minutes(within => W)."""
        usage = (
            "write session_count(within => '7 days') or session_count('purchase', within => "
            "'30 days')"
            if name == "session_count"
            else "write avg_session_minutes(within => '30 days')"
        )
        if where is not None:
            self.fail(
                span,
                f"{name}() takes no FILTER: sessions are made of all the user's events",
                "count sessions with an event of one name: session_count('purchase', "
                "within => '30 days')",
            )
        positional = [a for a in args if not isinstance(a, exp.Kwarg)]
        named = [a for a in args if isinstance(a, exp.Kwarg)]
        most = 1 if name == "session_count" else 0
        if len(positional) > most:
            self.fail(
                span_of(positional[most], self.source), f"too many arguments to {name}", usage
            )
        event: str | None = None
        if positional:
            arg = positional[0]
            if not _is_string(arg) or not str(arg.this) or "\x00" in str(arg.this):
                self.fail(span_of(arg, self.source), f"{name} expects a quoted event name", usage)
            event = None if str(arg.this) == "*" else str(arg.this)
        for kw in named:
            if _kw_name(kw) != "within":
                self.fail(
                    span_of(kw, self.source),
                    f"unknown named argument '{_kw_name(kw)}' of {name}",
                    f"{name} takes only within => '<interval>'",
                )
        window, _ = self.named_window(named)
        if window is None:
            self.fail(span, f"{name} needs a window", usage)
        within = named[0].expression
        kind: Literal["count", "avg"] = "count" if name == "session_count" else "avg"
        return ir.Session(kind, event, window, span=span, window_text=_interval_words(within))

    def step(self, arg: exp.Expression, usage: str) -> ir.Step:
        where = None
        if isinstance(arg, exp.Filter):
            arg, where = arg.this, arg.expression
        if isinstance(arg, exp.EQ) and isinstance(arg.this, exp.Column):
            self.fail(
                span_of(arg, self.source),
                f"named arguments use =>, not = ({arg.this.name} = ...)",
                f"write {arg.this.name} => {arg.expression.sql(dialect='postgres')}",
            )
        if not _is_string(arg):
            self.fail(
                span_of(arg, self.source),
                "each step of a sequence is a quoted event name",
                f"{usage}; '*' means any event",
            )
        event = str(arg.this)
        if not event or "\x00" in event:
            self.fail(
                span_of(arg, self.source),
                "the event name cannot be empty",
                "use '*' for any event",
            )
        cond = self.boolean(where.this, "filter") if where is not None else None
        return ir.Step(None if event == "*" else event, cond, span=span_of(arg, self.source))

    def in_segment(
        self, args: list[exp.Expression], where: exp.Expression | None, scope: str, span: Span
    ) -> ir.Expr:
        if where is not None:
            self.fail(
                span,
                "FILTER applies to event aggregates, not in_segment()",
                "remove the FILTER clause",
            )
        if scope == "filter":
            self.fail(
                span,
                "in_segment() cannot be used inside FILTER (WHERE ...)",
                "move in_segment() outside: did('x') AND in_segment('vip')",
            )
        if len(args) != 1 or not _is_string(args[0]):
            self.fail(span, "in_segment takes one quoted segment name", "write in_segment('vip')")
        return ir.InSegment(str(args[0].this).lower(), span=span)

    def distance(self, args: list[exp.Expression], scope: str, span: Span) -> ir.Expr:
        usage = "write distance_km(40.7580, -73.9855) < 2 (lat, lon of the other point)"
        if len(args) != 2 or any(isinstance(a, exp.Kwarg) for a in args):
            self.fail(span, "distance_km takes two numbers: a latitude and a longitude", usage)
        built = []
        for arg, limit, what in zip(args, (90, 180), ("latitude", "longitude"), strict=True):
            value = self.build(arg, "num", scope)
            if value.type != "num":
                self.fail(span_of(arg, self.source), f"the {what} must be a number", usage)
            constant = _constant_number(value)
            if constant is not None:
                self.coordinate(arg, constant, limit, what)
            built.append(value)
        return ir.Distance(built[0], built[1], span=span)

    def in_zone(self, args: list[exp.Expression], span: Span) -> ir.Expr:
        if len(args) != 1 or not _is_string(args[0]):
            self.fail(span, "in_zone takes one quoted zone name", "write in_zone('downtown')")
        name = str(args[0].this).lower()
        zone = self.zones.get(name)
        if zone is None:
            self.fail(
                span_of(args[0], self.source),
                f"unknown zone '{name}' in in_zone()",
                _suggest(
                    name,
                    self.zones,
                    "define it with CREATE ZONE in one of the files, or deploy it first",
                ),
            )
        return ir.InZone(zone, span=span)

    def score(
        self, args: list[exp.Expression], where: exp.Expression | None, scope: str, span: Span
    ) -> ir.Expr:
        """score('<model>'): the model's live version, its terms checked like any condition."""
        if where is not None:
            self.fail(span, "FILTER applies to event aggregates, not score()", "remove the FILTER")
        if scope == "filter":
            self.fail(
                span,
                "score() cannot be used inside FILTER (WHERE ...)",
                "move score() outside: did('x') AND score('buy_90d') >= 0.5",
            )
        if len(args) != 1 or not _is_string(args[0]):
            self.fail(span, "score takes one quoted model name", "write score('buy_90d')")
        name = str(args[0].this).lower()
        if name not in self.models:
            self.fail(
                span_of(args[0], self.source),
                f"unknown model '{name}'",
                _suggest(
                    name,
                    self.models,
                    "define it with CREATE MODEL <name> PREDICT <condition> WITHIN '<interval>' "
                    "and deploy it",
                ),
            )
        trained = self.models[name]
        if trained is None:
            return ir.Score(name, 0, None, (), span=span)
        terms = tuple(
            ir.Term(weight, _term(name, trained, text), text) for weight, text in trained.terms
        )
        return ir.Score(name, trained.version, trained.intercept, terms, span=span)

    def aggregate(
        self,
        kind: features.EventAggregate,
        args: list[exp.Expression],
        where: exp.Expression | None,
        span: Span,
        usage: str | None = None,
    ) -> ir.Expr:
        """An event aggregate, checked against the signature its kind module declares (`usage`:
        the call to suggest instead of the aggregate's own, for a score that reads it)."""
        name = kind.function
        usage = usage or kind.usage
        positional = [a for a in args if not isinstance(a, exp.Kwarg)]
        named = [a for a in args if isinstance(a, exp.Kwarg)]
        if kind.default_event is not None and not positional:
            positional = [exp.Literal.string(kind.default_event)]
        expected = 2 if kind.takes_prop else 1
        for arg in positional:
            if isinstance(arg, exp.EQ) and isinstance(arg.this, exp.Column):
                self.fail(
                    span_of(arg, self.source),
                    f"named arguments use =>, not = ({arg.this.name} = ...)",
                    f"write {arg.this.name} => {arg.expression.sql(dialect='postgres')}",
                )
        if len(positional) != expected:
            self.fail(
                span,
                f"{name} takes {expected} quoted argument{'s' if expected > 1 else ''}, "
                f"got {len(positional)}",
                f"write {usage}; '*' means any event",
            )
        for arg in positional:
            if isinstance(arg, exp.Filter):
                self.fail(
                    span_of(arg, self.source),
                    f"FILTER goes after {name}(...), not inside it",
                    f"write {name}('<event>') FILTER (WHERE ...)",
                )
            if not _is_string(arg):
                self.fail(
                    span_of(arg, self.source),
                    f"{name} expects a quoted name here",
                    f"write {usage}",
                )
        event = str(positional[0].this)
        if not event or "\x00" in event:
            self.fail(
                span_of(positional[0], self.source),
                "the event name cannot be empty",
                "use '*' for any event",
            )
        prop = str(positional[1].this) if kind.takes_prop else None
        if prop is not None and (not prop or "\x00" in prop):
            self.fail(span_of(positional[1], self.source), "the prop name cannot be empty")
        window, after = self.named_window(named)
        if kind.needs_window and window is None and after is None:
            self.fail(
                span,
                f"{name} needs a window",
                f"write {name}(within => '30 days') or {name}('app_open', within => '7 days')",
            )
        cond = self.boolean(where.this, "filter") if where is not None else None
        within = [kw.expression for kw in named if _kw_name(kw) == "within"]
        return ir.Agg(
            kind.kind,
            None if event == "*" else event,
            prop,
            window,
            cond,
            span=span,
            window_text=_interval_words(within[0]) if within else None,
            after=after,
        )

    def named_window(self, named: list[exp.Kwarg]) -> tuple[Decimal | None, str | None]:
        """The within => and after => arguments: a window's width and the bounding event."""
        window: Decimal | None = None
        after: str | None = None
        seen: set[str] = set()
        for kw in named:
            key = _kw_name(kw)
            if key not in ("within", "after"):
                self.fail(
                    span_of(kw, self.source),
                    f"unknown named argument '{key}'",
                    _suggest(
                        key,
                        ["within", "after"],
                        "the named arguments are within => '<interval>' and after => '<event>'",
                    ),
                )
            if key in seen:
                self.fail(span_of(kw, self.source), f"{key} is given twice", f"give {key} => once")
            seen.add(key)
            if key == "within":
                window = self.window_of(kw.expression)
            else:
                after = self.after_of(kw.expression)
        return window, after

    def after_of(self, node: exp.Expression) -> str:
        span = span_of(node, self.source)
        fix = "write after => 'purchase': only events after the user's latest purchase count"
        if not _is_string(node):
            self.fail(span, "after expects a quoted event name", fix)
        name = str(node.this)
        if not name or "\x00" in name:
            self.fail(span, "the event name after => cannot be empty", fix)
        if name == "*":
            self.fail(span, "after needs one event name, not '*'", fix)
        return name

    def window_of(self, node: exp.Expression) -> Decimal:
        span = span_of(node, self.source)
        if isinstance(node, exp.Interval):
            secs = self.interval_of(node, span)
        elif _is_string(node):
            secs = self.parse_interval(str(node.this), span)
        else:
            self.fail(span, "within expects a quoted interval", "write within => '48 hours'")
        if secs <= 0:
            self.fail(span, "within must be a positive interval", "write within => '48 hours'")
        return secs

    def interval_of(self, node: exp.Interval, span: Span) -> Decimal:
        text = str(node.this.this) if node.this is not None else ""
        unit = node.args.get("unit")
        if unit is not None:
            text = f"{text} {unit.name}"
        return self.parse_interval(text, span)

    def parse_interval(self, text: str, span: Span) -> Decimal:
        """Seconds in an interval; calendar units are refused because they have no fixed length."""
        s = text.strip().lower()
        hms = re.fullmatch(r"(-)?(\d+):(\d{2})(?::(\d{2}(?:\.\d+)?))?", s)
        if hms:
            total = Decimal(hms.group(2)) * 3600 + Decimal(hms.group(3)) * 60
            total += Decimal(hms.group(4) or 0)
            return -total if hms.group(1) else total
        pos, total, matched = 0, Decimal(0), False
        while pos < len(s):
            m = _INTERVAL_PART.match(s, pos)
            if not m:
                break
            unit = m.group(2)
            if unit in _CALENDAR_UNITS:
                self.fail(
                    span,
                    f"'{text}' uses {unit}, which have no fixed length",
                    "write the interval in days, e.g. '30 days' or '365 days'",
                )
            if unit not in _UNITS:
                break
            total += Decimal(m.group(1)) * _UNITS[unit]
            pos, matched = m.end(), True
        if not matched or pos != len(s):
            self.fail(
                span,
                f"'{text}' is not an interval",
                "write e.g. '48 hours', '30 days', '90 minutes' or '1 day 12 hours'",
            )
        if abs(total) > MAX_INTERVAL_SECONDS:
            self.fail(
                span,
                f"'{text}' is longer than 100 years",
                "write an interval of at most '36500 days'",
            )
        return total

    def timestamp_of(self, text: str, span: Span) -> str:
        try:
            value = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
        except ValueError:
            if _INTERVAL_PART.match(text.strip().lower()):
                self.fail(
                    span,
                    f"'{text}' is not a timestamp; it reads as an interval",
                    f"an interval needs the word: interval '{text}', "
                    f"e.g. now() - interval '{text}'",
                )
            self.fail(
                span,
                f"'{text}' is not a timestamp",
                "write an ISO 8601 timestamp, e.g. '2026-01-31' or '2026-01-31T12:00:00Z'",
            )
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()

    def not_allowed(self, node: exp.Expression, span: Span) -> NoReturn:
        if isinstance(node, (exp.Subquery, exp.Select, exp.Query)) or node.find(exp.Select):
            self.fail(
                span,
                "subqueries are not allowed in a segment definition",
                "use event aggregates such as event_count('x') or in_segment('other')",
            )
        what = node.sql(dialect="postgres")
        if len(what) > 40:
            what = what[:37] + "..."
        self.fail(
            span,
            f"'{what}' is not allowed in a segment definition",
            "allowed: AND/OR/NOT, comparisons, IN, BETWEEN, LIKE, IS NULL, + - * / %, "
            "now(), intervals, traits, event aggregates and in_segment()",
        )

    def not_a_segment(self, stmt: Statement) -> NoReturn:
        """Refuse a statement that is not CREATE SEGMENT, naming the keyword it misspells."""
        usage = "write: CREATE SEGMENT name [COMMENT '...'] AS <condition>;"
        text = self.source.text
        words = list(re.finditer(r"[A-Za-z_]+", text[stmt.span.start : stmt.span.end + 1]))
        for word, keyword in zip(words[:2], ("CREATE", "SEGMENT"), strict=False):
            spelled = word.group().upper()
            if spelled != keyword and difflib.get_close_matches(spelled, [keyword], cutoff=0.6):
                start = stmt.span.start + word.start()
                self.fail(
                    Span(start, start + len(spelled) - 1),
                    f"unknown statement '{' '.join(w.group() for w in words[:2])}'",
                    f"did you mean '{keyword}'? {usage}",
                )
            if spelled != keyword:
                break
        self.fail(
            stmt.span, "only CREATE SEGMENT statements are allowed in a definition file", usage
        )

    def fail(self, span: Span, problem: str, fix: str = "") -> NoReturn:
        raise DefinitionError(self.source, span, problem, fix)


def _after_as(stmt: Statement) -> Span:
    """From the first token after AS to the end of the statement: where the condition is."""
    tokens = [t for t in stmt.source.tokens if stmt.span.start <= t.start <= stmt.span.end]
    for token, following in itertools.pairwise(tokens):
        if token.kind == "ALIAS":
            return Span(following.start, stmt.span.end)
    return stmt.span


def check(
    statements: list[Statement],
    known_segments: Iterable[str] = (),
    models: Models | None = None,
    zones: Mapping[str, ir.Zone] | None = None,
) -> list[ir.Segment]:
    """Check the statements of one or more files; `known_segments` are already deployed,
    `models` are the deployed models that score() may read, and `zones` the deployed zones
    (the files' CREATE ZONE statements add to and replace them)."""
    return Checker(known_segments, models, zones).check(statements)


def check_all(
    statements: list[Statement],
    known_segments: Iterable[str] = (),
    models: Models | None = None,
    zones: Mapping[str, ir.Zone] | None = None,
) -> tuple[list[ir.Segment], list[ir.Zone]]:
    """The segments, and the zones the statements define."""
    checker = Checker(known_segments, models, zones)
    segments = checker.check(statements)
    return segments, checker.defined_zones


def _term(model: str, trained: Trained, text: str) -> ir.Expr:
    """One term of a trained model, checked as the condition of a segment of its own: a term
    reads events, traits and the clock, never another segment or model."""
    return condition_of(text, f"<model {model} v{trained.version}>")


def condition_of(text: str, where: str) -> ir.Expr:
    """A condition written as text, checked as the definition of a segment of its own."""
    statements = parse_text(f"CREATE SEGMENT term AS {text};", where)
    return Checker().check(statements)[0].condition


def _type_name(node: exp.Cast) -> str:
    """sqlglot keeps known types as enum members and the rest (regclass, oid) as plain text."""
    this = node.to.this
    return str(getattr(this, "name", this)).upper()


def _kw_name(kw: exp.Kwarg) -> str:
    return str(kw.this.this).lower() if kw.this is not None else ""


def _constant_number(node: ir.Expr) -> Decimal | None:
    """A number written as a literal, negated or not."""
    if isinstance(node, ir.Neg):
        inner = _constant_number(node.operand)
        return None if inner is None else -inner
    if isinstance(node, ir.Const) and isinstance(node.value, Decimal):
        return node.value
    return None


def _is_string(node: exp.Expression) -> bool:
    return isinstance(node, exp.Literal) and node.is_string


def _interval_words(node: exp.Expression) -> str | None:
    """An interval as the user wrote it: the quoted text, with a unit written after it."""
    if isinstance(node, exp.Interval):
        text = str(node.this.this) if node.this is not None else ""
        unit = node.args.get("unit")
        return f"{text} {unit.name.lower()}" if unit is not None else text
    return str(node.this) if _is_string(node) else None


def _suggest(word: str, options: Iterable[str], fallback: str) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"did you mean '{close[0]}'?" if close else fallback


def _fill_arith_types(
    op: str, lt: ir.Type | None, rt: ir.Type | None, want: ir.Type | None
) -> tuple[ir.Type | None, ir.Type | None]:
    """Guess untyped operands (traits, quoted literals) from the other side."""
    if lt is None and rt is None:
        return ("interval" if want == "interval" else "num"), "num"
    if lt is None:
        if rt == "ts":
            lt = "ts" if op == "-" else "interval"
        elif rt == "interval":
            lt = ("ts" if want == "ts" else "interval") if op in "+-" else "num"
        else:
            lt = rt
    if rt is None:
        if lt == "ts":
            rt = "interval" if op == "+" or want == "ts" else "ts"
        elif lt == "interval":
            rt = "interval" if op in "+-" else "num"
        else:
            rt = lt
    return lt, rt


def _arith_result(op: str, lt: ir.Type | None, rt: ir.Type | None) -> ir.Type | None:
    table: dict[tuple[str, str | None, str | None], ir.Type] = {
        ("+", "num", "num"): "num",
        ("-", "num", "num"): "num",
        ("*", "num", "num"): "num",
        ("/", "num", "num"): "num",
        ("%", "num", "num"): "num",
        ("+", "ts", "interval"): "ts",
        ("+", "interval", "ts"): "ts",
        ("-", "ts", "interval"): "ts",
        ("-", "ts", "ts"): "interval",
        ("+", "interval", "interval"): "interval",
        ("-", "interval", "interval"): "interval",
        ("*", "interval", "num"): "interval",
        ("*", "num", "interval"): "interval",
        ("/", "interval", "num"): "interval",
    }
    return table.get((op, lt, rt))
