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

from segql import features, ir


@dataclass(frozen=True)
class FeatureKey:
    """Identity of a feature: equal keys are one feature, whichever segments read it."""

    event: str | None
    filter: ir.Expr | None
    prop: str | None
    window: str | None  # seconds as text, None for state features
    days: bool = False  # also count distinct UTC days (active_days)

    @staticmethod
    def of(agg: ir.Agg) -> FeatureKey:
        window = None if agg.window is None else str(agg.window)
        days = "days" in features.of(agg).columns
        return FeatureKey(agg.event, agg.filter, agg.prop, window, days)

    @property
    def text(self) -> str:
        """The catalog key: stable across processes (repr of the frozen filter tree)."""
        return json.dumps([self.event, repr(self.filter), self.prop, self.window, self.days])

    @property
    def spec(self) -> dict[str, str | None]:
        return {
            "event": self.event,
            "filter": repr(self.filter) if self.filter else None,
            "prop": self.prop,
            "window_seconds": self.window,
        }


@dataclass
class SegmentPlan:
    segment: ir.Segment
    version: int
    keys: list[FeatureKey]
    events: frozenset[str | None]  # event names read; None = any event
    reads_traits: bool
    atoms: list[tuple[ir.Compare, int]]
    inlined: list[ir.Segment] = field(default_factory=list)  # dependencies, for the full query

    @property
    def name(self) -> str:
        return self.segment.name

    @property
    def state_keys(self) -> list[FeatureKey]:
        return [k for k in self.keys if k.window is None]

    @property
    def window_keys(self) -> list[FeatureKey]:
        return [k for k in self.keys if k.window is not None]

    @property
    def timed(self) -> bool:
        """Can membership change with no new event?"""
        return bool(self.window_keys or self.atoms)


@dataclass
class Plan:
    segments: list[SegmentPlan]  # dependencies first
    feature_ids: dict[FeatureKey, int]
    # Whether a user with no events and no traits is a member. When not, a user's first
    # appearance need not be evaluated against segments that read none of its events.
    empty_member: dict[str, bool] = field(default_factory=dict)
    # Whether the clock alone can change an empty user's membership (now() against constants).
    empty_timed: dict[str, bool] = field(default_factory=dict)

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
        plans.append(
            SegmentPlan(
                segment=seg,
                version=versions[seg.name],
                keys=keys,
                events=frozenset(a.event for a in aggs),
                reads_traits=any(isinstance(n, ir.Trait) for n in ir.walk(seg.condition)),
                atoms=ir.time_atoms(seg.condition),
                inlined=_closure(seg, by_name),
            )
        )
    return Plan(plans, {})


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
