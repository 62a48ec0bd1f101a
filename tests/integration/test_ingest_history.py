"""History loads into deployed segments: evaluated once at the end, as one evaluation would."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from segql import deploy, parse, run
from segql.ingest import ingest_events

T0 = datetime(2026, 6, 1, tzinfo=UTC)
SEGMENTS = """
CREATE SEGMENT lapsed AS did('purchase') AND NOT did('purchase', within => '30 days');
CREATE SEGMENT buyers AS event_count('purchase') >= 2;
"""


def history_file(tmp_path: Path) -> Path:
    """Old purchases first, recent ones after: a batch of the first half alone looks lapsed."""
    lines = []
    for i in range(40):
        lines.append({"user_id": f"u{i}", "name": "purchase", "ts": (T0 - timedelta(days=90))})
    for i in range(0, 40, 2):
        lines.append({"user_id": f"u{i}", "name": "purchase", "ts": (T0 - timedelta(days=3))})
    path = tmp_path / "history.jsonl"
    path.write_text("".join(json.dumps(r, default=str) + "\n" for r in lines))
    return path


def changes(conn: psycopg.Connection) -> list[tuple[str, str, str, str]]:
    rows = conn.execute(
        "SELECT segment, user_id, kind, cause FROM segql.changes ORDER BY segment, user_id"
    ).fetchall()
    conn.commit()
    return rows


def prepare(conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse.parse_text(SEGMENTS, "s.sql"))
    conn.commit()


@pytest.mark.parametrize("history", [True, None])
def test_history_load_logs_one_evaluation(
    conn: psycopg.Connection, tmp_path: Path, history: bool | None
) -> None:
    prepare(conn)
    result = ingest_events(conn, history_file(tmp_path), batch_size=10, history=history)
    assert result.history and result.evaluated == 40
    expected = {name: deploy.full_members(conn, name) for name in ("lapsed", "buyers")}
    assert expected["lapsed"] == {f"u{i}" for i in range(1, 40, 2)}
    logged = changes(conn)
    # Only enters, each once, with the history cause: exactly what one evaluation would log.
    assert {(s, u) for s, u, _, _ in logged} == {
        (name, u) for name, users in expected.items() for u in users
    }
    assert len(logged) == sum(len(u) for u in expected.values())
    assert {(k, c) for _, _, k, c in logged} == {("enter", "history")}
    for name, users in expected.items():
        assert {u for u, _ in deploy.members(conn, name)} == users
    assert conn.execute("SELECT count(*) FROM segql.deferred").fetchone() == (0,)


def test_live_load_judges_each_batch(conn: psycopg.Connection, tmp_path: Path) -> None:
    """What the history mode avoids: the first batches make users enter lapsed, later exit."""
    prepare(conn)
    ingest_events(conn, history_file(tmp_path), batch_size=10, history=False)
    kinds = {k for s, _, k, _ in changes(conn) if s == "lapsed"}
    assert kinds == {"enter", "exit"}
    assert {u for u, _ in deploy.members(conn, "lapsed")} == deploy.full_members(conn, "lapsed")


def test_an_interrupted_history_load_is_finished_by_the_next(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    prepare(conn)
    conn.execute("SELECT set_config('segql.defer', 'on', true)")
    conn.execute("SELECT segql.track('u9', 'purchase', '{}', %s)", [T0 - timedelta(days=90)])
    conn.commit()
    assert deploy.members(conn, "lapsed") == []
    conn.commit()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert ingest_events(conn, empty).evaluated == 1
    assert [u for u, _ in deploy.members(conn, "lapsed")] == ["u9"]
