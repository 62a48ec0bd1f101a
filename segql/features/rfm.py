"""RFM scores: a user's recency, frequency or monetary value placed among the population's.

A score reads an ordinary event aggregate (`now() - last_event_at`, `event_count`, `event_sum`)
and four cutpoints kept in segql.rfm_cutpoints, which only `segql refresh` (and a deploy, for a
score that has none yet) recomputes. It is `1 +` the number of cutpoints the value beats, so it
is built from comparisons the rest of the compiler already knows: an event moves it through the
aggregate's state in the writer's transaction, and a recency comparison against a cutpoint is a
comparison with now() whose crossing the timers hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from segql import ir
from segql.features.base import EventAggregate

CUTPOINTS = 4  # percentile_disc(0.2, 0.4, 0.6, 0.8)
FRACTIONS = "ARRAY[0.2, 0.4, 0.6, 0.8]"


@dataclass(frozen=True)
class RfmScore:
    """A score kind as the language names it.

    - `signature`: its arguments, checked as those of the aggregate it scores (the function
      name is the score's, for messages);
    - `windowed`: whether it takes `within => W`;
    - `value`: the value scored, from the checked arguments;
    - `beats`: how a value beats a cutpoint (`>` for larger is better, `<` for shorter).
    """

    function: str
    signature: EventAggregate
    windowed: bool
    value: Callable[[ir.Agg], ir.Expr]
    beats: Literal[">", "<"]
    cut_type: ir.Type
    meaning: str

    @property
    def usage(self) -> str:
        prop = ", '<prop>'" if self.signature.takes_prop else ""
        window = " [, within => '<interval>']" if self.windowed else ""
        return f"{self.function}('<event>'{prop}{window})"

    def key(self, agg: ir.Agg) -> str:
        """The score's identity: one row of cutpoints for every condition that reads it."""
        args = [_quoted(agg.event if agg.event is not None else "*")]
        if agg.prop is not None:
            args.append(_quoted(agg.prop))
        if agg.window is not None:
            args.append(f"within => {_quoted(interval_text(agg.window))}")
        return f"{self.function}({', '.join(args)})"

    def score(self, agg: ir.Agg) -> ir.Rfm:
        key, span = self.key(agg), agg.span
        value = self.value(agg)
        beats = tuple(
            ir.Compare(self.beats, value, ir.Cut(key, i, self.cut_type, span=span), span=span)
            for i in range(1, CUTPOINTS + 1)
        )
        exists = ir.Agg("did", agg.event, None, None, None, span=span)
        return ir.Rfm(self.function, key, value, beats, exists, span=span)


def since_last(agg: ir.Agg) -> ir.Expr:
    """now() - last_event_at(event): the duration recency scores."""
    last = ir.Agg("last", agg.event, None, None, None, span=agg.span)
    return ir.Arith("-", ir.Now(span=agg.span), last, "interval", span=agg.span)


def count_of(agg: ir.Agg) -> ir.Expr:
    return ir.Agg("count", agg.event, None, agg.window, None, agg.span, agg.window_text)


def sum_of(agg: ir.Agg) -> ir.Expr:
    return ir.Agg("sum", agg.event, agg.prop, agg.window, None, agg.span, agg.window_text)


def scores(condition: ir.Expr) -> dict[str, ir.Rfm]:
    """The scores a condition reads, by key."""
    return {n.key: n for n in ir.walk(condition) if isinstance(n, ir.Rfm)}


def interval_text(seconds: Decimal) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    return f"{seconds.normalize():f} seconds"


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
