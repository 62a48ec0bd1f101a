"""Models: CREATE MODEL deploys, score() compiles to the model's terms, a new version re-scores
the segments that read it in one transaction (cause 'model'), and train learns from history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from segql import deploy, history, rebuild, run, verify
from segql.diagnostics import DefinitionError
from segql.models import store
from segql.models.parse import ModelDialect
from segql.models.publish import publish
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DEFS = """
CREATE MODEL buy_30d COMMENT 'Buys within 30 days' PREDICT did('buy') WITHIN '30 days';
CREATE SEGMENT likely AS score('buy_30d') >= 0.5;
"""
SPEC = {
    "intercept": "-1",
    "terms": [
        {"weight": "1.5", "condition": "did('buy', within => '2 days')"},
        {"weight": "0.75", "condition": "event_count('view') >= 2"},
    ],
}


def _deploy(conn: psycopg.Connection, text: str) -> deploy.DeployResult:
    return deploy.deploy(conn, parse_text(text, "m.sql", ModelDialect))


def test_untrained_model_scores_null(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    result = _deploy(conn, DEFS)
    assert result.models.created == ["buy_30d"]
    assert result.created == ["likely"]
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES ('a', 'buy', %s)", [T0])
    assert deploy.members(conn, "likely") == []


def test_publish_rescores_with_cause_model(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    _deploy(conn, DEFS)
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts) VALUES ('a', 'buy', %s), ('b', 'view', %s)",
        [T0 - timedelta(hours=1), T0 - timedelta(hours=1)],
    )
    conn.commit()
    model = store.get(conn, "buy_30d").model
    version, result = publish(conn, model, SPEC, {"auc": 0.7})
    assert version == 1 and result.changed == ["likely"]
    assert [u for u, _ in deploy.members(conn, "likely")] == ["a"]
    causes = conn.execute(
        "SELECT user_id, kind, cause FROM segql.changes WHERE segment = 'likely'"
    ).fetchall()
    assert causes == [("a", "enter", "model")]
    # The second view lifts b to 1/(1+e^-(-1+0.75)) < 0.5: still out; the buy leaves a's
    # window two days later, at its exact instant.
    # A segment's why shows the score as one value; the model's why shows its terms.
    explained = history.why(conn, "likely", "a")
    assert explained.holds and explained.conditions[0].text == "score('buy_30d') >= 0.5"
    run.clock_set(conn, T0 + timedelta(days=2))
    conn.commit()
    run.tick(conn)
    assert deploy.members(conn, "likely") == []
    assert deploy.full_members(conn, "likely") == set()
    assert verify.verify(conn).clean
    assert rebuild.rebuild(conn).enters == 0


def test_a_model_with_whole_number_weights_scores(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    _deploy(conn, DEFS)
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES ('a', 'buy', %s)", [T0])
    conn.commit()
    spec = {"intercept": "0", "terms": [{"weight": "1", "condition": "did('buy')"}]}
    publish(conn, store.get(conn, "buy_30d").model, spec, {"auc": 0.7})
    assert [u for u, _ in deploy.members(conn, "likely")] == ["a"]
    assert deploy.full_members(conn, "likely") == {"a"}


def test_drop_a_model_refuses_while_read_then_cascades(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    _deploy(conn, DEFS)
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES ('a', 'buy', %s)", [T0])
    publish(conn, store.get(conn, "buy_30d").model, SPEC, {"auc": 0.7})
    assert [u for u, _ in deploy.members(conn, "likely")] == ["a"]
    with pytest.raises(deploy.DeployError, match=r"likely reads it with score\(\)"):
        deploy.deploy(conn, [], drop=["buy_30d"])
    assert store.names(conn) == {"buy_30d"}
    result = deploy.deploy(conn, [], drop=["buy_30d"], cascade=True)
    assert result.models.dropped == ["buy_30d"] and result.dropped == ["likely"]
    assert store.names(conn) == set()
    versions = conn.execute("SELECT count(*) FROM segql.model_versions").fetchone()
    assert versions == (0,)
    exits = conn.execute(
        "SELECT user_id, kind, cause FROM segql.changes WHERE segment = 'likely' AND kind = 'exit'"
    ).fetchall()
    assert exits == [("a", "exit", "drop")]
    assert verify.verify(conn).clean


def test_a_deploy_cannot_read_the_model_it_drops(conn: psycopg.Connection) -> None:
    _deploy(conn, "CREATE MODEL m PREDICT did('buy') WITHIN '30 days';")
    statements = parse_text("CREATE SEGMENT x AS score('m') > 0.5;", "x.sql", ModelDialect)
    with pytest.raises(DefinitionError, match="score"):
        deploy.deploy(conn, statements, drop=["m"])


END = datetime(2026, 1, 1, tzinfo=UTC)
SHOP = """
CREATE MODEL buy_90d COMMENT 'Will purchase in the next 90 days'
  PREDICT did('purchase') WITHIN '90 days';
CREATE SEGMENT likely_buyers AS score('buy_90d') >= 0.5;
"""


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    from segql import synth

    start = END - timedelta(days=365)
    synth.copy_profiles(conn, synth.generate_profiles(600, 3, END))
    synth.copy_event_rows(conn, synth.event_rows(12_000, 600, 3, start, END, with_lifecycle=True))
    run.clock_set(conn, END)
    conn.commit()
    _deploy(conn, SHOP)
    conn.commit()
    return conn


def test_train_scores_and_retrain(shop: psycopg.Connection) -> None:
    pytest.importorskip("sklearn")
    from segql.models import scores
    from segql.models.train import train

    first = train(shop, "buy_90d")
    assert first.version == 1 and first.rescored == ["likely_buyers"]
    assert 0.6 < first.holdout_auc <= 1
    assert sum(int(r["users"]) for r in first.calibration) == first.holdout_examples
    assert first.terms, "an L1 fit that keeps no term learned nothing"
    got = dict(scores.scores(shop, "buy_90d"))
    assert (
        len(got) == shop.execute("SELECT count(DISTINCT user_id) FROM segql.events").fetchone()[0]
    )
    assert all(v is not None and 0 < v < 1 for v in got.values())
    likely = {u for u, _ in deploy.members(shop, "likely_buyers")}
    assert likely == {u for u, v in got.items() if v >= Decimal("0.5")}
    assert likely == deploy.full_members(shop, "likely_buyers")
    entered = shop.execute(
        "SELECT count(*) FROM segql.changes WHERE segment = 'likely_buyers' AND cause = 'model'"
    ).fetchone()[0]
    assert entered == len(likely) == first.enters
    # A user's score, term by term, adds up to what scores() says.
    user = max(got, key=lambda u: got[u] or 0)
    e = scores.why(shop, "buy_90d", user)
    assert e.score == got[user]
    assert e.logit == e.intercept + sum(t.weight for t in e.terms if t.holds)
    # Retraining at a later clock is a new version; the readers are re-scored again.
    run.clock_set(shop, END + timedelta(days=30))
    shop.commit()
    run.tick(shop)
    second = train(shop, "buy_90d")
    assert second.version == 2 and second.rescored == ["likely_buyers"]
    assert deploy.full_members(shop, "likely_buyers") == {
        u for u, _ in deploy.members(shop, "likely_buyers")
    }


def test_a_churn_model_learns_who_goes_quiet(shop: psycopg.Connection) -> None:
    pytest.importorskip("sklearn")
    from segql.models.train import train

    _deploy(shop, "CREATE MODEL churn_30d PREDICT NOT did('*') WITHIN '30 days';")
    shop.commit()
    result = train(shop, "churn_30d")
    assert result.version == 1 and result.rescored == []
    assert result.holdout_auc > 0.6
    # Going quiet is the opposite of recent activity: a recent event lowers the score.
    recent = [w for w, c, _ in result.terms if c.startswith("did('*', within => '")]
    assert recent and min(recent) < 0
