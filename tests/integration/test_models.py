"""Models: CREATE MODEL deploys, score() compiles to the model's terms, a new version re-scores
the segments that read it in one transaction (cause 'model'), and train learns from history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, run
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
    run.clock_set(conn, T0 + timedelta(days=2))
    conn.commit()
    run.tick(conn)
    assert deploy.members(conn, "likely") == []
    assert deploy.full_members(conn, "likely") == set()
