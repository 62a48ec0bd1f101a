"""Checked segments to a plan: the shared per-user features and what each segment reads.

A feature is a per-user value the plan can share and the timer can schedule. Unwindowed event
aggregates become *state* features: one row per (feature, user) updated in O(1) per event and
shared by every segment that reads them. Windowed aggregates are read from the user's events in
the window through the (user_id, name, ts) index, and report the exact next moment an event
enters or leaves the window.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal

from segql import features, ir
from segql.features import scan_kind


@dataclass(frozen=True)
class FeatureKey:
    """Identity of a feature: equal keys are one feature, whichever segments read it."""

    event: str | None
    filter: ir.Expr | None
    prop: str | None
    window: str | None  # seconds as text, None for state features
    days: bool = False  # also count distinct UTC days (active_days)
    recent: int = 0  # state features: also keep this many newest timestamps (see Plan.recent)
    location: bool = False  # the user's last known location (features/location.py)
    weeks: bool = False  # also count distinct ISO weeks (active_weeks)
    distinct: bool = False  # also count distinct values of the prop (distinct_count)
    after: str | None = None  # only events after the user's latest event of this name

    @staticmethod
    def of(agg: ir.Agg) -> FeatureKey:
        window = None if agg.window is None else str(agg.window)
        columns = features.of(agg).columns
        return FeatureKey(
            agg.event,
            agg.filter,
            agg.prop,
            window,
            days="days" in columns,
            weeks="weeks" in columns,
            distinct="dist" in columns,
            after=agg.after,
        )

    @property
    def windowed(self) -> bool:
        """Do its events move with the clock: a window, or an after => bound?"""
        return self.window is not None or self.after is not None

    @property
    def scanned(self) -> bool:
        """Read from the user's events at each evaluation rather than kept as state."""
        return self.windowed or self.days or self.weeks or self.distinct

    @property
    def text(self) -> str:
        """The catalog key: stable across processes (repr of the frozen filter tree)."""
        if self.location:
            return json.dumps(["location"])
        parts: list[object] = [self.event, repr(self.filter), self.prop, self.window, self.days]
        if self.weeks or self.distinct or self.after is not None:
            parts += [self.weeks, self.distinct, self.after]
        return json.dumps([*parts, self.recent] if self.recent else parts)

    @property
    def spec(self) -> dict[str, str | None]:
        if self.location:
            return {"location": "latest event with lat/lon"}
        return {
            "event": self.event,
            "filter": repr(self.filter) if self.filter else None,
            "prop": self.prop,
            "window_seconds": self.window,
            **({"recent": str(self.recent)} if self.recent else {}),
            **({"after": self.after} if self.after is not None else {}),
        }

    @property
    def source(self) -> FeatureKey:
        """The unwindowed state feature over the same events."""
        return FeatureKey(self.event, self.filter, None, None)


# One per user whatever reads it: the latest located event of any name.
LOCATION = FeatureKey(None, None, None, None, location=True)


@dataclass(frozen=True)
class EventSet:
    """The events a segment reads: by name (None: any event), and with `located` also every
    event that carries a location (the segment reads the user's last known location)."""

    names: tuple[str, ...] | None
    located: bool = False

    @property
    def key(self) -> str:
        """A group's timer key. Segment names cannot start with '~', so it never equals one."""
        names = "*" if self.names is None else ",".join(self.names)
        return "~" + names + ("+location" if self.located else "")


@dataclass
class SegmentPlan:
    segment: ir.Segment
    version: int
    keys: list[FeatureKey]
    events: frozenset[str | None]  # event names read; None = any event
    reads_traits: bool
    atoms: list[tuple[ir.Compare, int]]
    inlined: list[ir.Segment] = field(default_factory=list)  # dependencies, for the full query
    scans: list[ir.Scan] = field(default_factory=list)  # sequences, sessions
    located: bool = False  # reads the user's last known location

    @property
    def event_set(self) -> EventSet | None:
        """None when the segment reads no events at all."""
        if not self.events and not self.located:
            return None
        names = None if None in self.events else tuple(sorted(e for e in self.events if e))
        return EventSet(names, self.located and names is not None)

    @property
    def name(self) -> str:
        return self.segment.name

    @property
    def state_keys(self) -> list[FeatureKey]:
        return [k for k in self.keys if not k.scanned]

    @property
    def window_keys(self) -> list[FeatureKey]:
        """Keys whose value can change with the clock alone, each with its own next instant."""
        return [k for k in self.keys if k.windowed]

    @property
    def timed(self) -> bool:
        """Can membership change with no new event?"""
        return bool(self.window_keys or self.atoms or self.scans)


@dataclass
class Group:
    """Dependency-free segments that read the same events, evaluated together in one statement.

    Its members share one timer per user, keyed by `key` (the event set, so it stays the same
    across deploys while the set does): the earliest instant any member can change.
    """

    key: str
    events: EventSet
    members: list[SegmentPlan]

    @property
    def timed(self) -> bool:
        return any(s.timed for s in self.members)


@dataclass
class Plan:
    segments: list[SegmentPlan]  # dependencies first
    feature_ids: dict[FeatureKey, int]
    # Whether a user with no events and no traits is a member. When not, a user's first
    # appearance need not be evaluated against segments that read none of its events.
    empty_member: dict[str, bool] = field(default_factory=dict)
    # Whether the clock alone can change an empty user's membership (now() against constants).
    empty_timed: dict[str, bool] = field(default_factory=dict)
    # Windowed counts read from the newest timestamps of their source instead of a window scan:
    # each such windowed key maps to the state feature that keeps enough of them.
    # The value is (that state feature, how many newest timestamps this key needs): one is the
    # state's last_ts, more are kept in its `recent` array.
    recent: dict[FeatureKey, tuple[FeatureKey, int]] = field(default_factory=dict)
    groups: list[Group] = field(default_factory=list)

    def group_of(self, name: str) -> Group | None:
        return next((g for g in self.groups if any(s.name == name for s in g.members)), None)

    def timer_key(self, name: str) -> str:
        """What the timers of a segment are keyed by: its group's key, or its own name."""
        group = self.group_of(name)
        return group.key if group else name

    def must_see_new_users(self, seg: SegmentPlan) -> bool:
        # A segment that reads another one sees whatever that one reads, so a new user is not
        # an empty user for it even when none of its own events arrived.
        return (
            self.empty_member.get(seg.name, True)
            or self.empty_timed.get(seg.name, bool(seg.atoms))
            or bool(seg.segment.depends_on)
        )

    @property
    def state_keys(self) -> list[FeatureKey]:
        seen: dict[FeatureKey, None] = {}
        for seg in self.segments:
            for key in seg.state_keys:
                seen.setdefault(key, None)
            for key in seg.window_keys:
                if key in self.recent:
                    seen.setdefault(self.recent[key][0], None)
        return list(seen)

    def by_name(self, name: str) -> SegmentPlan:
        return next(s for s in self.segments if s.name == name)

    def dependents(self, names: set[str]) -> set[str]:
        """Every segment that reads any of `names`, directly or through others."""
        out = set(names)
        for seg in self.segments:  # dependencies come first, so one pass suffices
            if out & set(seg.segment.depends_on):
                out.add(seg.name)
        return out


def aggregates(condition: ir.Expr) -> list[ir.Agg]:
    return [n for n in ir.walk(condition) if isinstance(n, ir.Agg)]


def scans(condition: ir.Expr) -> list[ir.Scan]:
    """The distinct sequences and session features a condition reads, in order."""
    found = (n for n in ir.walk(condition) if isinstance(n, (ir.Sequence, ir.Session)))
    return list(dict.fromkeys(found))


def topological(segments: list[ir.Segment]) -> list[ir.Segment]:
    by_name = {s.name: s for s in segments}
    out: list[ir.Segment] = []
    done: set[str] = set()

    def visit(seg: ir.Segment) -> None:
        if seg.name in done:
            return
        done.add(seg.name)
        for dep in seg.depends_on:
            if dep in by_name:
                visit(by_name[dep])
        out.append(seg)

    for seg in sorted(segments, key=lambda s: s.name):
        visit(seg)
    return out


def plan(segments: list[ir.Segment], versions: dict[str, int]) -> Plan:
    """Order segments, collect their features, and note what each reads."""
    ordered = topological(segments)
    by_name = {s.name: s for s in ordered}
    plans: list[SegmentPlan] = []
    for seg in ordered:
        aggs = aggregates(seg.condition)
        keys = list(dict.fromkeys(FeatureKey.of(a) for a in aggs))
        seqs = scans(seg.condition)
        steps = [e for q in seqs for e in scan_kind(q).events(q)]
        # An after => bound is read too: its events move the window's start.
        events = {a.event for a in aggs} | {a.after for a in aggs if a.after is not None}
        events |= set(steps)
        located = ir.reads_location(seg.condition)
        if located:
            # Events that carry a location move it, and the profile's is the fallback.
            keys.append(LOCATION)
        plans.append(
            SegmentPlan(
                segment=seg,
                version=versions[seg.name],
                keys=keys,
                events=frozenset(events),
                reads_traits=located
                or any(isinstance(n, ir.Trait) for n in ir.walk(seg.condition)),
                atoms=ir.time_atoms(seg.condition),
                inlined=_closure(seg, by_name),
                located=located,
                scans=seqs,
            )
        )
    return Plan(plans, {}, recent=recent_features(ordered), groups=groups(plans))


def groups(plans: list[SegmentPlan]) -> list[Group]:
    """Segments with events and no in_segment(), grouped by the set of events they read."""
    out: dict[EventSet, Group] = {}
    for seg in plans:
        events = seg.event_set
        if events is None or seg.segment.depends_on:
            continue
        if events not in out:
            out[events] = Group(events.key, events, [])
        out[events].members.append(seg)
    return list(out.values())


MAX_RECENT = 64


def recent_features(segments: list[ir.Segment]) -> dict[FeatureKey, tuple[FeatureKey, int]]:
    """Windowed counts that only meet constants (`event_count(e, within) >= 3`, and `did`).

    Such a count is exact up to k from the k newest timestamps of its source, which an arriving
    event updates in O(1), where any other use needs the window's events. k is one more than
    the largest constant, so `=`, `<` and `>` against every constant are decided. Keys used
    any other way (arithmetic, IN, against a trait) keep the window scan.
    """
    needs: dict[FeatureKey, int] = {}
    other: set[FeatureKey] = set()
    for seg in segments:
        simple: dict[int, int] = {}
        for node in ir.walk(seg.condition):
            if isinstance(node, ir.Compare):
                for side, const in ((node.left, node.right), (node.right, node.left)):
                    if _countable(side) and isinstance(const, ir.Const) and const.type == "num":
                        value = const.value
                        assert isinstance(value, Decimal)
                        simple[id(side)] = max(int(value.to_integral_value("ROUND_FLOOR")) + 1, 1)
        for node in ir.walk(seg.condition):
            if not isinstance(node, ir.Agg) or node.window is None or node.after is not None:
                continue
            key = FeatureKey.of(node)
            if _countable(node) and node.type == "bool":  # did(): at least one
                needs[key] = max(needs.get(key, 1), 1)
            elif id(node) in simple:
                needs[key] = max(needs.get(key, 1), simple[id(node)])
            else:
                other.add(key)
    eligible = {k: n for k, n in needs.items() if k not in other and n <= MAX_RECENT}
    # One newest timestamp is the source's last_ts: only keys that need more keep an array.
    widest: dict[FeatureKey, int] = {}
    for key, n in eligible.items():
        widest[key.source] = max(widest.get(key.source, 0), n if n > 1 else 0)
    return {
        key: (FeatureKey(key.event, key.filter, None, None, recent=widest[key.source]), n)
        for key, n in eligible.items()
    }


def _countable(node: ir.Expr) -> bool:
    return (
        isinstance(node, ir.Agg)
        and node.window is not None
        and node.after is None
        and node.prop is None
        and features.of(node).counts_events
    )


def _closure(seg: ir.Segment, by_name: dict[str, ir.Segment]) -> list[ir.Segment]:
    out: dict[str, ir.Segment] = {}
    stack = list(seg.depends_on)
    while stack:
        name = stack.pop()
        if name in out or name not in by_name:
            continue
        out[name] = by_name[name]
        stack.extend(by_name[name].depends_on)
    return list(out.values())
