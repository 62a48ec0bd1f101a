"""RFM scores and CREATE TIERS in the checker: what they compile to, and bad uses refused at
their place."""

from __future__ import annotations

import pytest

from segql import generate, ir, plan
from segql.check import check
from segql.diagnostics import DefinitionError
from segql.features import rfm
from segql.parse import parse_text

S = "CREATE SEGMENT a AS "  # conditions below start at column 21


def checked(text: str) -> list[ir.Segment]:
    return check(parse_text(text, "rfm.sql"))


@pytest.mark.parametrize(
    ("condition", "col", "problem"),
    [
        ("rfm_recency('buy', within => '30 days') >= 4", 21, "takes no window"),
        ("rfm_frequency('buy') FILTER (WHERE amount > 3) >= 4", 21, "takes no filter"),
        ("rfm_monetary('buy') >= 4", 21, "takes 2 quoted arguments"),
        ("rfm_recency(buy) >= 4", 33, "expects a quoted name"),
        ("rfm_recency('buy')", 21, "is a number, not true/false"),
        ("did('x') FILTER (WHERE rfm_recency('x') > 3)", 44, "cannot be used inside filter"),
        ("rfm_recency('buy') > now()", 21, "cannot compare a number with a timestamp"),
        ("rfm_recncy('buy') > 3", 21, "unknown function 'rfm_recncy'"),
        ("rfm_frequency('buy', after => 'view') > 3", 21, "takes no after =>"),
    ],
)
def test_bad_scores_are_refused_at_their_place(condition: str, col: int, problem: str) -> None:
    with pytest.raises(DefinitionError) as info:
        checked(S + condition)
    err = info.value
    assert problem in str(err).lower(), str(err)
    assert str(err).startswith(f"rfm.sql:1:{col}:"), str(err)


@pytest.mark.parametrize(
    ("condition", "fix"),
    [
        ("rfm_recency('buy', 'amount') >= 4", "rfm_recency('<event>');"),
        (
            "rfm_monetary('buy') >= 4",
            "rfm_monetary('<event>', '<prop>' [, within => '<interval>'])",
        ),
        ("rfm_frequency() >= 4", "rfm_frequency('<event>' [, within => '<interval>'])"),
    ],
)
def test_a_wrong_arity_suggests_the_scores_own_call(condition: str, fix: str) -> None:
    with pytest.raises(DefinitionError) as info:
        checked(S + condition)
    assert f"write {fix}" in str(info.value), str(info.value)


def test_a_score_is_one_plus_the_cutpoints_it_beats() -> None:
    [seg] = checked(S + "rfm_monetary('buy', 'amount', within => '2 days') >= 3")
    [score] = rfm.scores(seg.condition).values()
    assert score.key == "rfm_monetary('buy', 'amount', within => '2 days')"
    assert [b.op for b in score.beats] == [">"] * 4
    assert [b.right for b in score.beats] == [ir.Cut(score.key, i, "num") for i in range(1, 5)]
    sql = generate.full_query(plan.plan([seg], {"a": 1}).segments[0])
    assert "segql.rfm_cutpoints" in sql and "cuts[4]" in sql


def test_recency_cutpoints_are_comparisons_with_now_the_timers_hold() -> None:
    [seg] = checked(S + "rfm_recency('buy') = 5")
    atoms = ir.time_atoms(seg.condition)
    assert len(atoms) == 4 and all(slope == 1 for _, slope in atoms)
    [planned] = plan.plan([seg], {"a": 1}).segments
    assert planned.timed


def test_equal_scores_share_one_row_of_cutpoints() -> None:
    segs = checked(
        "CREATE SEGMENT a AS rfm_frequency('buy', within => '48 hours') > 2;\n"
        "CREATE SEGMENT b AS rfm_frequency('buy', within => '2 days') < 2;"
    )
    keys = {k for s in segs for k in rfm.scores(s.condition)}
    assert keys == {"rfm_frequency('buy', within => '2 days')"}


def test_tiers_are_segments_each_excluding_the_earlier_ones() -> None:
    first, second, third = checked(
        "CREATE TIERS t COMMENT 'c' AS a WHEN did('x'), b WHEN did('y'), c WHEN true;"
    )
    assert [(s.name, s.tiers, s.tier_rank, s.comment) for s in (first, second, third)] == [
        ("a", "t", 1, "c"),
        ("b", "t", 2, "c"),
        ("c", "t", 3, "c"),
    ]
    assert isinstance(first.condition, ir.Agg)
    assert isinstance(third.condition, ir.BoolOp) and len(third.condition.items) == 3
    assert first.text == second.text  # one statement


def test_a_tier_name_clashing_with_a_segment_is_refused() -> None:
    with pytest.raises(DefinitionError, match="defined twice"):
        checked("CREATE SEGMENT a AS did('x');\nCREATE TIERS t AS a WHEN did('y');")
