"""CREATE MODEL and score(): what is accepted, and every refusal at its line and column."""

from __future__ import annotations

from decimal import Decimal

import pytest

from segql import generate, ir, plan
from segql.check import check
from segql.diagnostics import DefinitionError
from segql.models.check import check as check_models
from segql.models.parse import ModelDialect
from segql.models.spec import Trained
from segql.parse import parse_text

TRAINED = Trained(
    3,
    Decimal("-1.5"),
    (
        (Decimal("1.25"), "did('purchase', within => '30 days')"),
        (Decimal("-0.5"), "now() - last_event_at('*') > interval '14 days'"),
        (Decimal("0.75"), "plan = 'premium'"),
    ),
)


def models(text: str) -> list[object]:
    return list(check_models(parse_text(text, "m.sql", ModelDialect)))


def test_create_model_reads_its_target_and_horizon() -> None:
    [m] = check_models(
        parse_text(
            "CREATE MODEL buy_90d COMMENT 'Buys' PREDICT did('purchase') WITHIN '90 days';",
            "m.sql",
            ModelDialect,
        )
    )
    assert (m.name, m.comment, m.horizon) == ("buy_90d", "Buys", Decimal(90 * 86400))
    assert isinstance(m.target, ir.Agg) and m.target.event == "purchase"
    [churn] = check_models(
        parse_text("CREATE MODEL churn PREDICT NOT did('*') WITHIN '30 days';", "m", ModelDialect)
    )
    assert isinstance(churn.target, ir.Not)


@pytest.mark.parametrize(
    ("text", "problem", "at"),
    [
        ("CREATE MODEL m PREDICT did('a') '30 days';", "expected within", (1, 24)),
        ("CREATE MODEL m PREDICT WITHIN '30 days';", "expected a condition", (1, 16)),
        ("CREATE MODEL m did('a') WITHIN '30 days';", "expected predict", (1, 16)),
        ("CREATE MODEL m PREDICT did('a') WITHIN 30;", "quoted interval", (1, 40)),
        ("CREATE MODEL m PREDICT did('a') WITHIN '3 months';", "no fixed length", (1, 40)),
        ("CREATE MODEL m PREDICT did('a') WITHIN '10 minutes';", "at least an hour", (1, 40)),
        ("CREATE MODEL m PREDICT did('a') WITHIN 'soon';", "not an interval", (1, 40)),
        ("CREATE MODEL m PREDICT event_cnt('a') > 1 WITHIN '1 day';", "unknown function", (1, 24)),
        ("CREATE MODEL m PREDICT in_segment('vip') WITHIN '1 day';", "in_segment", (1, 24)),
        ("CREATE MODEL m PREDICT event_count('a') WITHIN '1 day';", "(true/false)", (1, 24)),
        ("CREATE MODEL \"M\" PREDICT did('a') WITHIN '1 day';", "not a valid model name", (1, 14)),
        (
            "CREATE MODEL m PREDICT did('a') WITHIN '1 day';\n"
            "CREATE MODEL m PREDICT did('b') WITHIN '1 day';",
            "defined twice",
            (2, 14),
        ),
    ],
)
def test_bad_models_are_refused_where_they_go_wrong(
    text: str, problem: str, at: tuple[int, int]
) -> None:
    with pytest.raises(DefinitionError) as info:
        models(text)
    err = info.value
    assert problem in err.message.lower(), err.message
    assert err.source.position(err.span.start) == at, err.message


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("score('buy_7d') > 0.5", "unknown model 'buy_7d'"),
        ("score('buy') > 0.5", "did you mean 'buy_90d'"),
        ("score(buy_90d) > 0.5", "one quoted model name"),
        ("score('buy_90d')", "not true/false"),
        ("score('buy_90d') = 'high'", "cannot compare"),
        ("event_count('x') FILTER (WHERE score('buy_90d') > 1) > 1", "inside filter"),
    ],
)
def test_bad_scores_are_refused(condition: str, problem: str) -> None:
    with pytest.raises(DefinitionError) as info:
        check(parse_text(f"CREATE SEGMENT a AS {condition};", "s.sql"), models={"buy_90d": None})
    assert problem in str(info.value).lower()


def test_untrained_score_is_null_and_trained_score_is_its_terms() -> None:
    text = "CREATE SEGMENT a AS score('buy_90d') >= 0.75;"
    [untrained] = check(parse_text(text, "s.sql"), models={"buy_90d": None})
    [trained] = check(parse_text(text, "s.sql"), models={"buy_90d": TRAINED})
    assert untrained.fingerprint != trained.fingerprint
    score = trained.condition.left  # type: ignore[union-attr]
    assert isinstance(score, ir.Score) and score.version == 3
    assert [t.text for t in score.terms] == [c for _, c in TRAINED.terms]
    # Every term is planned like any condition: its features are shared state or windows, its
    # comparison with now() is a timed atom, its trait makes the segment read profiles.
    p = plan.plan([trained], {"a": 1}).segments[0]
    assert p.reads_traits and p.timed and len(p.atoms) == 1
    assert {k.event for k in p.keys} == {"purchase", None}
    full = generate.full_query(p)
    assert "round(1 / (1 + exp(- least(greatest(((-1.5) + CASE WHEN" in full


def test_a_score_can_be_used_in_arithmetic() -> None:
    [seg] = check(
        parse_text("CREATE SEGMENT a AS score('buy_90d') * 100 BETWEEN 20 AND 60;", "s.sql"),
        models={"buy_90d": TRAINED},
    )
    assert seg.condition.type == "bool"


def test_training_without_the_ml_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    from segql.models import train

    monkeypatch.setitem(sys.modules, "sklearn.linear_model", None)
    with pytest.raises(train.MissingDependency) as info:
        train._ml()
    assert "pip install 'segql[ml]'" in str(info.value)
    assert "Scoring needs nothing but Postgres" in str(info.value)
