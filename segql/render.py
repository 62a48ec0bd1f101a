"""Checked expressions to SQL text.

Every value from a definition is written here as an escaped literal and every name as a quoted
identifier, so nothing a user typed reaches SQL unparsed. Literals are E'' strings with `$`
escaped as well, because they end up inside dollar-quoted function bodies.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from segql import ir
from segql.features import location as location_kind

CASTS: dict[ir.Type, str] = {
    "num": "segql.num",
    "ts": "segql.ts",
    "bool": "segql.bool",
    "text": "segql.txt",
}


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "''")
        .replace("$", "\\044")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"E'{escaped}'"


def number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    text = format(value, "f")
    return f"({text})" if text.startswith("-") else text


def seconds(value: Decimal) -> str:
    return f"make_interval(secs => {number(value)})"


def json_field(column: str, key: str, typ: ir.Type) -> str:
    if typ == "text":
        return f"({column} ->> {quote_literal(key)})"
    if typ == "interval":
        return f"segql.seconds(segql.num({column} -> {quote_literal(key)}))"
    return f"{CASTS[typ]}({column} -> {quote_literal(key)})"


class Renderer:
    """Renders one expression tree; `agg` and `segment` say how features and segments read."""

    def __init__(
        self,
        agg: Callable[[ir.Agg], str],
        segment: Callable[[ir.InSegment], str],
        row: str = "p.traits",
        clock: str = "clk.now",
        location: tuple[str, str] = location_kind.EVENT_LOCATION,
        scan: Callable[[ir.Scan], str] | None = None,
    ) -> None:
        self.agg = agg
        self.segment = segment
        self.row = row
        self.clock = clock
        # (lat, lon): the user's last known location, or in a FILTER the event's own.
        self.location = location
        self.scan = scan or _no_scan

    def __call__(self, node: ir.Expr) -> str:
        if isinstance(node, ir.Const):
            return self.const(node)
        if isinstance(node, ir.Now):
            return self.clock
        if isinstance(node, ir.Trait):
            return json_field(self.row, node.key, node.type)
        if isinstance(node, ir.Prop):
            return json_field("e.props", node.key, node.type)
        if isinstance(node, ir.Agg):
            return self.agg(node)
        if isinstance(node, (ir.Sequence, ir.Session)):
            return self.scan(node)
        if isinstance(node, ir.InSegment):
            return self.segment(node)
        if isinstance(node, ir.Cut):
            return cutpoint(node)
        if isinstance(node, ir.Rfm):
            return self.rfm(node)
        if isinstance(node, ir.Arith):
            return self.arith(node)
        if isinstance(node, ir.Neg):
            return f"(- {self(node.operand)})"
        if isinstance(node, ir.Compare):
            return f"({self(node.left)} {node.op} {self(node.right)})"
        if isinstance(node, ir.BoolOp):
            joiner = " AND " if node.op == "and" else " OR "
            return "(" + joiner.join(self(i) for i in node.items) + ")"
        if isinstance(node, ir.Not):
            return f"(NOT {self(node.operand)})"
        if isinstance(node, ir.InList):
            return f"({self(node.operand)} IN ({', '.join(self(i) for i in node.items)}))"
        if isinstance(node, ir.Like):
            op = "ILIKE" if node.case_insensitive else "LIKE"
            return f"({self(node.operand)} {op} {self(node.pattern)})"
        if isinstance(node, ir.IsNull):
            return f"({self(node.operand)} IS NULL)"
        if isinstance(node, ir.IsBool):
            return f"({self(node.operand)} IS {'TRUE' if node.value else 'FALSE'})"
        if isinstance(node, ir.Distance):
            out = location_kind.distance(self.location, self(node.lat), self(node.lon))
            return self.guarded(out)
        if isinstance(node, ir.InZone):
            return self.guarded(location_kind.in_zone(self.location, node.zone))
        if isinstance(node, ir.Score):
            return self.score(node)
        raise TypeError(f"cannot render {node!r}")

    def guarded(self, geo: str) -> str:
        """Inside a FILTER, most events carry no location: a key probe skips the geometry."""
        if self.location != location_kind.EVENT_LOCATION:
            return geo
        return f"(CASE WHEN {location_kind.HAS_KEYS} THEN {geo} END)"

    def const(self, node: ir.Const) -> str:
        if node.value is None:
            return {
                "num": "NULL::numeric",
                "ts": "NULL::timestamptz",
                "bool": "NULL::boolean",
                "interval": "NULL::interval",
                "text": "NULL::text",
            }[node.type]
        if node.type == "bool":
            return "true" if node.value else "false"
        if node.type == "num":
            assert isinstance(node.value, Decimal)
            return number(node.value)
        if node.type == "interval":
            assert isinstance(node.value, Decimal)
            return seconds(node.value)
        if node.type == "ts":
            return f"{quote_literal(str(node.value))}::timestamptz"
        return quote_literal(str(node.value))

    def rfm(self, node: ir.Rfm) -> str:
        beaten = " + ".join(f"(CASE WHEN {self(b)} THEN 1 ELSE 0 END)" for b in node.beats)
        return f"(CASE WHEN {self(node.exists)} THEN 1 + {beaten} END)"

    def arith(self, node: ir.Arith) -> str:
        left, right = self(node.left), self(node.right)
        if node.op == "-" and node.left.type == "ts" and node.right.type == "ts":
            return f"segql.span({left}, {right})"
        if node.op == "*" and "interval" in (node.left.type, node.right.type):
            if node.left.type == "interval":
                return f"segql.imul({left}, {right})"
            return f"segql.imul({right}, {left})"
        if node.op == "/" and node.left.type == "interval":
            return f"segql.idiv({left}, {right})"
        if node.op in ("/", "%"):
            zero = "make_interval()" if node.right.type == "interval" else "0"
            return f"({left} {node.op} NULLIF({right}, {zero}))"
        return f"({left} {node.op} {right})"

    def score(self, node: ir.Score) -> str:
        """A model's probability, in numeric arithmetic and rounded, so that every evaluation
        (trigger, timer, full query) computes the same digits from the same terms."""
        if node.intercept is None:
            return "NULL::numeric"
        parts = [number(node.intercept)]
        parts += [
            f"CASE WHEN {self(t.condition)} IS TRUE THEN {number(t.weight)} ELSE 0 END"
            for t in node.terms
        ]
        # Cast: with every weight a whole number the sum is an integer, exp() of which is a
        # double, and round(double, 6) does not exist.
        logit = f"least(greatest(({' + '.join(parts)})::numeric, -30), 30)"
        return f"round(1 / (1 + exp(- {logit})), 6)"

    def crossing(self, atom: ir.Compare, slope: int) -> str:
        """The next instant this comparison can change truth with no new event."""
        return f"segql.crossing({self.clock}, {slope}, ({self(atom.left)}) - ({self(atom.right)}))"


def cutpoint(node: ir.Cut) -> str:
    """A cutpoint as the statement evaluating it reads it: an uncorrelated subquery, which
    Postgres evaluates once per statement, however many users the statement evaluates."""
    column = "durations" if node.type == "interval" else "cuts"
    return (
        f"(SELECT r.{column}[{int(node.index)}] FROM segql.rfm_cutpoints r "
        f"WHERE r.score = {quote_literal(node.score)})"
    )


def event_match(event: str | None, filter_: ir.Expr | None) -> str:
    """Does event row `e` feed a feature?"""
    parts = []
    if event is not None:
        parts.append(f"e.name = {quote_literal(event)}")
    if filter_ is not None:
        plain = Renderer(_no_agg, _no_segment)
        parts.append(f"coalesce({plain(filter_)}, false)")
    return "(" + " AND ".join(parts) + ")" if parts else "true"


def prop_value(prop: str | None) -> str:
    return "NULL::numeric" if prop is None else f"segql.num(e.props -> {quote_literal(prop)})"


def prop_text(prop: str | None) -> str:
    """A prop as text, for distinct values: NULL when missing or JSON null."""
    return "NULL::text" if prop is None else f"(e.props ->> {quote_literal(prop)})"


def _no_agg(node: ir.Agg) -> str:
    raise TypeError("aggregates cannot appear inside a filter")


def _no_segment(node: ir.InSegment) -> str:
    raise TypeError("in_segment cannot appear inside a filter")


def _no_scan(node: ir.Scan) -> str:
    raise TypeError(f"{node!r} cannot appear here")
