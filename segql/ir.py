"""The checked form of a segment definition: a small typed tree that knows nothing of SQL text.

`check` builds it from sqlglot's tree; `plan` and `generate` render it. Spans are kept for error
messages but excluded from equality, so moving a definition within its file is not a change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from segql.diagnostics import Span

Type = Literal["bool", "num", "text", "ts", "interval"]
AggKind = Literal[
    "count", "did", "sum", "avg", "min", "max", "first", "last", "days", "weeks", "distinct"
]

NO_SPAN = Span(0, 0)


def _span() -> Span:
    return field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True)
class Const:
    """A literal. Timestamps are ISO strings in UTC; intervals are whole seconds."""

    value: str | Decimal | bool | None
    type: Type
    span: Span = _span()
    # How the user wrote an interval ('24 hours'), for `why`; not part of the meaning.
    text: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Now:
    type: Type = "ts"
    span: Span = _span()


@dataclass(frozen=True)
class Trait:
    """A profile trait, read from profiles.traits and cast to `type`."""

    key: str
    type: Type
    span: Span = _span()


@dataclass(frozen=True)
class Prop:
    """An event property, only inside an aggregate's FILTER."""

    key: str
    type: Type
    span: Span = _span()


@dataclass(frozen=True)
class Agg:
    """An aggregate over the user's own events; `event` None means any event."""

    kind: AggKind
    event: str | None
    prop: str | None
    window: Decimal | None
    filter: Expr | None
    span: Span = _span()
    # How the user wrote the window ('24 hours'), for `why`; not part of the meaning.
    window_text: str | None = field(default=None, compare=False, repr=False)
    # after => '<event>': only events after the user's latest such event count.
    after: str | None = None

    def __repr__(self) -> str:
        # The repr is the segment's fingerprint: written as before `after` existed when it is
        # not given, so definitions deployed earlier keep their versions.
        text = (
            f"Agg(kind={self.kind!r}, event={self.event!r}, prop={self.prop!r}, "
            f"window={self.window!r}, filter={self.filter!r}"
        )
        return text + (f", after={self.after!r})" if self.after is not None else ")")

    @property
    def windowed(self) -> bool:
        """Does the set of events it reads move with the clock (a window, or an after bound)?"""
        return self.window is not None or self.after is not None

    @property
    def type(self) -> Type:
        from segql import features  # the kind modules build on this module

        return features.of(self).type


@dataclass(frozen=True)
class Cut:
    """The `index`-th (1..4) cutpoint of an RFM score, read from segql.rfm_cutpoints when the
    condition is evaluated: a duration for recency, a number otherwise."""

    score: str  # the score's key in segql.rfm_cutpoints
    index: int
    type: Type
    span: Span = _span()


@dataclass(frozen=True)
class Step:
    """One step of a sequence: events of a name (None: any event) passing an optional filter."""

    event: str | None
    filter: Expr | None
    span: Span = _span()


@dataclass(frozen=True)
class Rfm:
    """An RFM score: 1 + how many of `beats` (the user's value against each cutpoint) hold, or
    NULL when `exists` (the user has at least one such event) does not. `key` is the score as
    written, normalized; `value` is what is scored."""

    function: str
    key: str
    value: Expr
    beats: tuple[Compare, ...]
    exists: Expr
    type: Type = "num"
    span: Span = _span()


@dataclass(frozen=True)
class Sequence:
    """`sequence(step, step, ...)`: the steps happened in order, strictly increasing in ts.

    `window`: the whole chain spans at most this many seconds (last.ts - first.ts <= window);
    `since`: the first step lies after now() - since. Both None when not given.
    """

    steps: tuple[Step, ...]
    window: Decimal | None
    since: Decimal | None
    type: Type = "bool"
    span: Span = _span()
    # How the user wrote the intervals, for `why`; not part of the meaning.
    window_text: str | None = field(default=None, compare=False, repr=False)
    since_text: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Session:
    """session_count(['<event>',] within => W) or avg_session_minutes(within => W).

    `count`: the user's sessions with an event (of `event`, None: any) in the window; `avg`:
    the mean length in minutes of the sessions with any event in the window.
    """

    kind: Literal["count", "avg"]
    event: str | None
    window: Decimal
    span: Span = _span()
    window_text: str | None = field(default=None, compare=False, repr=False)

    @property
    def type(self) -> Type:
        return "num"


# Features read from the user's events whenever the user is evaluated (no shared state).
Scan = Sequence | Session


@dataclass(frozen=True)
class InSegment:
    name: str
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class Zone:
    """A checked CREATE ZONE: a polygon's vertices (lon, lat) or a circle's centre and radius.

    Coordinates are the decimals as written; a segment that reads the zone compiles them into
    its SQL, so a changed zone is a changed segment (see zones.py).
    """

    name: str
    kind: Literal["polygon", "circle"]
    lats: tuple[Decimal, ...]  # a circle has one: its centre
    lons: tuple[Decimal, ...]
    radius_km: Decimal | None = None
    text: str = field(default="", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)
    span: Span = _span()


@dataclass(frozen=True)
class Distance:
    """distance_km(lat, lon): from the user's last known location, or inside a FILTER from the
    event's own lat/lon."""

    lat: Expr
    lon: Expr
    type: Type = "num"
    span: Span = _span()


@dataclass(frozen=True)
class InZone:
    """in_zone('name'): whether the location (as for Distance) is in the zone."""

    zone: Zone
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class Arith:
    op: Literal["+", "-", "*", "/", "%"]
    left: Expr
    right: Expr
    type: Type
    span: Span = _span()


@dataclass(frozen=True)
class Neg:
    operand: Expr
    type: Type
    span: Span = _span()


@dataclass(frozen=True)
class Compare:
    op: Literal["=", "<>", "<", "<=", ">", ">="]
    left: Expr
    right: Expr
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Expr, ...]
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class Not:
    operand: Expr
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class InList:
    operand: Expr
    items: tuple[Expr, ...]
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class Like:
    operand: Expr
    pattern: Const
    case_insensitive: bool
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class IsNull:
    operand: Expr
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class IsBool:
    operand: Expr
    value: bool
    type: Type = "bool"
    span: Span = _span()


@dataclass(frozen=True)
class Term:
    """One feature of a model: `weight` is added to the score's logit when `condition` holds."""

    weight: Decimal
    condition: Expr
    text: str = field(compare=False)  # the condition as definition text, for `why`


@dataclass(frozen=True)
class Score:
    """A trained model's probability: the logistic function of `intercept` plus the weights of
    the terms that hold. Every term is an ordinary condition, so the planner shares its features
    and the timer schedules the instants it changes. `intercept` None: not trained yet (NULL)."""

    model: str
    version: int
    intercept: Decimal | None
    terms: tuple[Term, ...]
    type: Type = "num"
    span: Span = _span()


Expr = (
    Const
    | Now
    | Trait
    | Prop
    | Agg
    | Cut
    | Rfm
    | Sequence
    | Session
    | InSegment
    | Arith
    | Neg
    | Compare
    | BoolOp
    | Not
    | InList
    | Like
    | IsNull
    | IsBool
    | Distance
    | InZone
    | Score
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct subexpressions, for walks that do not care about node kinds."""
    if isinstance(node, (Arith, Compare)):
        return (node.left, node.right)
    if isinstance(node, (Neg, Not, IsNull, IsBool)):
        return (node.operand,)
    if isinstance(node, BoolOp):
        return node.items
    if isinstance(node, InList):
        return (node.operand, *node.items)
    if isinstance(node, Like):
        return (node.operand, node.pattern)
    if isinstance(node, Rfm):
        return (*node.beats, node.exists)
    if isinstance(node, Distance):
        return (node.lat, node.lon)
    if isinstance(node, Score):
        return tuple(t.condition for t in node.terms)
    return ()


def walk(node: Expr) -> list[Expr]:
    """Every node of a tree, parents first; does not descend into aggregate filters."""
    out = [node]
    for child in children(node):
        out.extend(walk(child))
    return out


def reads_location(condition: Expr) -> bool:
    """Does the condition read the user's last known location (not an event's, in a FILTER)?"""
    return any(isinstance(n, (Distance, InZone)) for n in walk(condition))


def now_slope(node: Expr) -> int | None:
    """How an expression moves with now(): +1, -1, 0, or None when not a plain shift of it."""
    if isinstance(node, Now):
        return 1
    if isinstance(node, Rfm):
        return 0  # its comparisons with now() are atoms of their own (see time_atoms)
    if isinstance(node, Arith):
        left, right = now_slope(node.left), now_slope(node.right)
        if left is None or right is None:
            return None
        if node.op == "+":
            return left + right
        if node.op == "-":
            return left - right
        return 0 if left == 0 and right == 0 else None
    if isinstance(node, Neg):
        inner = now_slope(node.operand)
        return None if inner is None else -inner
    if isinstance(node, Score):
        # A score is not a shift of now(): the comparisons with now() inside its terms are
        # atoms of their own (walk visits them), each with its own crossing.
        return 0
    if any(isinstance(n, Now) for n in walk(node)):
        return None
    return 0


def time_atoms(node: Expr) -> list[tuple[Compare, int]]:
    """Comparisons whose truth moves with the clock, each with the slope of (left - right)."""
    atoms: list[tuple[Compare, int]] = []
    for n in walk(node):
        if isinstance(n, Compare):
            left, right = now_slope(n.left), now_slope(n.right)
            if left is not None and right is not None and left - right != 0:
                atoms.append((n, left - right))
    return atoms


@dataclass(frozen=True)
class Segment:
    """A checked definition."""

    name: str
    comment: str | None
    condition: Expr
    text: str
    source: str
    span: Span = _span()
    tiers: str | None = None  # CREATE TIERS: the group's name
    tier_rank: int = 0  # and this tier's place in it, from 1

    @property
    def depends_on(self) -> tuple[str, ...]:
        return tuple(sorted({n.name for n in walk(self.condition) if isinstance(n, InSegment)}))

    @property
    def zones(self) -> tuple[str, ...]:
        """The zones the definition reads, in its condition or in its aggregates' filters."""
        return tuple(sorted({z.name for z in zones_in(self.condition)}))

    @property
    def models(self) -> tuple[str, ...]:
        """The models the definition reads with score()."""
        return tuple(sorted({n.model for n in walk(self.condition) if isinstance(n, Score)}))

    @property
    def fingerprint(self) -> str:
        """Equal for definitions that mean the same thing, whatever their layout."""
        return repr((self.condition, self.comment))


def zones_in(node: Expr) -> list[Zone]:
    """Every zone read by an expression, filters of aggregates included."""
    out: list[Zone] = []
    for n in walk(node):
        if isinstance(n, InZone):
            out.append(n.zone)
        elif isinstance(n, Agg) and n.filter is not None:
            out.extend(zones_in(n.filter))
    return out
