"""Models as a user runs them: deploy, models, train, scores (--csv, --json), why, retrain, and
the errors a person can act on."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from subprocess import CompletedProcess

import psycopg
import pytest

from segql import run, synth

Cli = Callable[..., CompletedProcess[str]]
END = datetime(2026, 1, 1, tzinfo=UTC)
DEFINITIONS = """
CREATE MODEL buy_90d COMMENT 'Will purchase in the next 90 days'
  PREDICT did('purchase') WITHIN '90 days';
CREATE SEGMENT likely_buyers AS score('buy_90d') >= 0.4;
"""


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_train_scores_why_and_retrain(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    with psycopg.connect(database_url) as conn:
        synth.copy_profiles(conn, synth.generate_profiles(400, 7, END))
        rows = synth.event_rows(8_000, 400, 7, END - timedelta(days=365), END, True)
        synth.copy_event_rows(conn, rows)
        run.clock_set(conn, END)
        conn.commit()
    path = tmp_path / "models.sql"
    path.write_text(DEFINITIONS)
    ok(segql_cli("deploy", str(path)))
    assert "not trained" in ok(segql_cli("models"))
    assert "not trained yet" in ok(segql_cli("why", "buy_90d", "u000001"))

    out = ok(segql_cli("train", "buy_90d"))
    assert "Trained buy_90d v1" in out and "AUC" in out and "Calibration" in out
    assert "Top terms" in out and "Re-scored likely_buyers" in out

    table = list(csv.reader(io.StringIO(ok(segql_cli("scores", "buy_90d", "--csv")))))
    assert table[0] == ["user_id", "score"]
    scores = {user: float(score) for user, score in table[1:]}
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(DISTINCT user_id) FROM segql.events").fetchone()
        members = {r[0] for r in conn.execute("SELECT user_id FROM segments.likely_buyers")}
    assert row is not None and len(scores) == row[0]
    assert members == {u for u, s in scores.items() if s >= 0.4}
    lines = ok(segql_cli("scores", "buy_90d", "--json")).splitlines()
    assert json.loads(lines[0]).keys() == {"user_id", "score"}

    user = max(scores, key=lambda u: scores[u])
    why = json.loads(ok(segql_cli("why", "buy_90d", user, "--json")))
    assert why["score"] == scores[user] and why["version"] == 1
    assert any(t["holds"] for t in why["terms"])
    assert f"score('buy_90d') for {user}" in ok(segql_cli("why", "buy_90d", user))

    report = json.loads(ok(segql_cli("train", "buy_90d", "--json")))
    assert report["version"] == 2 and report["rescored"] == ["likely_buyers"]
    assert "v2" in ok(segql_cli("models"))


def test_errors(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE MODEL m PREDICT did('buy') WITHIN '2 months';\n")
    result = segql_cli("deploy", str(bad))
    assert result.returncode == 1
    assert "bad.sql:1:42" in result.stderr and "no fixed length" in result.stderr
    result = segql_cli("train", "nope")
    assert result.returncode == 1 and "model 'nope' is not deployed" in result.stderr
    good = tmp_path / "m.sql"
    good.write_text("CREATE MODEL m PREDICT did('buy') WITHIN '30 days';\n")
    ok(segql_cli("deploy", str(good)))
    result = segql_cli("train", "m")
    assert result.returncode == 1 and "no events to learn from" in result.stderr
