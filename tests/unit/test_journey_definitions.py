"""sequence(), session_count() and avg_session_minutes(): refused at their line and column."""

from __future__ import annotations

import pytest

from segql import ir
from segql.check import check
from segql.diagnostics import DefinitionError
from segql.parse import parse_text

S = "CREATE SEGMENT a AS "  # conditions start at column 21

BAD = [
    (f"{S}sequence('a', 'b') FILTER (WHERE x > 1)", "ambiguous", (1, 21), "on its step"),
    (f"{S}sequence('a')", "at least two steps", (1, 21), "did('view')"),
    (f"{S}sequence('a', within => '1 hour', 'b')", "come before", (1, 55), "sequence("),
    (f"{S}sequence('a', 'b', before => '1 hour')", "unknown named argument", (1, 50), "since"),
    (f"{S}sequence('a', b)", "quoted event name", (1, 35), "'*'"),
    (f"{S}sequence('a', 'b', within => '1 month')", "no fixed length", (1, 50), "days"),
    (f"{S}sequence('a', 'b', within = '1 hour')", "use =>", (1, 40), "within =>"),
    (f"{S}sequence({', '.join(repr(str(i)) for i in range(9))})", "at most 8", (1, 21), "split"),
    (f"{S}did('a') FILTER (WHERE sequence('a', 'b'))", "inside filter", (1, 44), ""),
    (f"{S}event_count('a' FILTER (WHERE x > 1)) > 2", "after event_count", (1, 33), ""),
    (f"{S}session_count(within => '1 day') FILTER (WHERE x = 1) > 2", "no filter", (1, 21), ""),
    (f"{S}session_count('a') > 2", "needs a window", (1, 21), "within =>"),
    (f"{S}avg_session_minutes('a', within => '1 day') > 2", "too many", (1, 41), ""),
    (f"{S}session_count(a, within => '1 day') > 2", "quoted event name", (1, 35), ""),
    (f"{S}session_count(within => '1 day')", "a number, not true/false", (1, 21), ""),
]


@pytest.mark.parametrize(("text", "problem", "at", "fix"), BAD)
def test_refused_with_position_and_fix(
    text: str, problem: str, at: tuple[int, int], fix: str
) -> None:
    with pytest.raises(DefinitionError) as info:
        check(parse_text(text, "bad.sql"))
    err = info.value
    assert problem in err.problem.lower(), err.problem
    assert (err.line, err.col) == at, str(err)
    assert fix.lower() in err.fix.lower(), err.fix


def test_a_sequence_step_keeps_its_own_filter() -> None:
    (seg,) = check(
        parse_text(
            f"{S}sequence('cart' FILTER (WHERE price > 50), '*', within => '1 hour', "
            "since => '2 days');"
        )
    )
    seq = seg.condition
    assert isinstance(seq, ir.Sequence)
    assert [s.event for s in seq.steps] == ["cart", None]
    assert seq.steps[0].filter is not None and seq.steps[1].filter is None
    assert (seq.window, seq.since) == (3600, 2 * 86400)
