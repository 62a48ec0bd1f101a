"""`segql ingest` as a user runs it: summary, rejects, exit codes."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_ingest_with_bad_rows_exits_2(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    lines = [
        json.dumps({"user_id": f"u{i}", "name": "view", "ts": "2024-01-01T00:00:00Z"})
        for i in range(10_000)
    ]
    lines[0] = "42"
    lines[41] = json.dumps({"user_id": "u", "name": "view", "ts": "soon"})
    lines[9998] = json.dumps({"user_id": None, "name": "view"})
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    result = segql_cli("ingest", str(path))

    assert result.returncode == 2, result.stderr
    assert result.stdout.startswith("Loaded 9,997 events, rejected 3 in ")
    assert "line 1: each line must be a JSON object" in result.stderr
    assert "line 42: ts 'soon'" in result.stderr
    assert "line 9999: missing user_id" in result.stderr
    rejects = (tmp_path / "events.jsonl.rejects.jsonl").read_text().splitlines()
    assert [json.loads(r)["line"] for r in rejects] == [1, 42, 9999]
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM segql.events").fetchone()
        assert row == (9_997,)


def test_ingest_clean_file_exits_0(segql_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("user_id,name\nu1,signup\nu2,signup\n", encoding="utf-8")
    result = segql_cli("ingest", str(path))
    assert result.returncode == 0, result.stderr
    assert "Loaded 2 events, rejected 0" in result.stdout
    assert result.stderr == ""


def test_ingest_profiles(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "people.jsonl"
    path.write_text(json.dumps({"user_id": "u1", "traits": {"plan": "pro"}}) + "\n")
    result = segql_cli("ingest", "--profiles", str(path))
    assert result.returncode == 0, result.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT traits FROM segql.profiles").fetchone() == ({"plan": "pro"},)


def test_ingest_missing_file_is_an_error(segql_cli: Cli, tmp_path: Path) -> None:
    result = segql_cli("ingest", str(tmp_path / "nope.jsonl"))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: cannot read")
