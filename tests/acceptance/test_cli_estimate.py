"""`segql estimate` as a user runs it: text, --json, and --sql that any client can run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import psycopg

from segql import deploy, run
from segql.parse import parse_text

Cli = Callable[..., CompletedProcess[str]]

DRAFT = """
CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');
CREATE SEGMENT ny AS city LIKE 'New%';
"""


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_estimate_json_sql_and_errors(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        run.clock_set(conn, "2026-05-01T12:00:00Z")
        conn.execute("SELECT segql.track('ann', 'add_to_cart', '{}', '2026-05-01T11:30:00Z')")
        conn.execute("SELECT segql.track('bob', 'add_to_cart', '{}', '2026-05-01T10:30:00Z')")
        conn.execute("""SELECT segql.identify('ann', '{"city": "New York"}')""")
        conn.execute("""SELECT segql.identify('cat', '{"city": "Newark"}')""")
    with psycopg.connect(database_url) as conn:
        deploy.deploy(conn, parse_text("CREATE SEGMENT ny AS city LIKE 'New%';", "ny.sql"))
    path = tmp_path / "draft.sql"
    path.write_text(DRAFT)

    out = json.loads(ok(segql_cli("estimate", str(path), "--json")))
    assert out == [
        {"segment": "carted", "size": 1, "overlap": {"ny": 1}, "sample": ["ann"]},
        {"segment": "ny", "size": 2, "overlap": {"ny": 2}, "sample": ["ann", "cat"]},
    ]
    assert "carted: 1 users" in ok(segql_cli("estimate", str(path)))

    script = ok(segql_cli("estimate", str(path), "--sql"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        blocks = [b for b in script.split("-- estimate ") if b.strip()]
        rows = [conn.execute(b.split("\n", 1)[1].encode()).fetchone() for b in blocks]
    assert [(r[0], r[2]) for r in rows if r] == [(1, ["ann"]), (2, ["ann", "cat"])]

    path.write_text("CREATE SEGMENT bad AS did('x', within => 'soon');")
    failed = segql_cli("estimate", str(path))
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"Error: {path}:1:")
