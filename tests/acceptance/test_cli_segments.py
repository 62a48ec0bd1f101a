"""The segment commands as a user runs them: compile, deploy, list, members, clock, drop."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import psycopg

Cli = Callable[..., CompletedProcess[str]]

DEFINITIONS = """
CREATE SEGMENT carted COMMENT 'Added to cart in the last hour'
AS did('add_to_cart', within => '1 hour');

CREATE SEGMENT premium_ny AS plan = 'premium' AND city = 'New York';
"""


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_deploy_members_and_time(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "shop.sql"
    path.write_text(DEFINITIONS)
    assert "CREATE OR REPLACE FUNCTION" in ok(segql_cli("compile", str(path)))
    ok(segql_cli("clock", "set", "2026-05-01T12:00:00Z"))
    assert "created: carted, premium_ny" in ok(segql_cli("deploy", str(path)))
    assert "Nothing to deploy" in ok(segql_cli("deploy", str(path)))

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT segql.track('ann', 'add_to_cart', '{}', '2026-05-01T11:30:00Z')")
        conn.execute('SELECT segql.identify(\'bob\', \'{"plan": "premium", "city": "New York"}\')')
    listed = {s["name"]: s for s in json.loads(ok(segql_cli("list", "--json")))}
    assert listed["carted"]["size"] == 1 and listed["premium_ny"]["size"] == 1
    assert ok(segql_cli("members", "carted", "--csv")).splitlines()[1].startswith("ann,")

    # Half an hour later ann's cart add leaves the window: the exit is at 12:30 exactly.
    assert "processed 1 timer(s)" in ok(segql_cli("clock", "set", "2026-05-01T13:00:00Z"))
    assert ok(segql_cli("members", "carted")) == ""
    at_noon = ok(segql_cli("members", "carted", "--json", "--at", "2026-05-01T12:29:59Z"))
    assert [json.loads(line)["user_id"] for line in at_noon.splitlines()] == ["ann"]
    assert ok(segql_cli("members", "carted", "--at", "2026-05-01T12:30:00Z")) == ""

    assert "dropped: premium_ny" in ok(segql_cli("drop", "premium_ny"))
    missing = segql_cli("members", "premium_ny")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: segment 'premium_ny'")


def test_a_bad_definition_names_file_line_and_column(segql_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.sql"
    path.write_text("CREATE SEGMENT ok AS did('x');\nCREATE SEGMENT bad AS event_cnt('x') > 3;\n")
    result = segql_cli("deploy", str(path))
    assert result.returncode == 1
    assert f"{path}:2:23: unknown function 'event_cnt'" in result.stderr
    assert "did you mean 'event_count'" in result.stderr
    assert json.loads(ok(segql_cli("list", "--json"))) == []


def test_rebuild_repairs_lost_membership(segql_cli: Cli, database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "shop.sql"
    path.write_text(DEFINITIONS)
    assert "nothing is deployed" in segql_cli("rebuild").stderr.lower()
    ok(segql_cli("clock", "set", "2026-05-01T12:00:00Z"))
    ok(segql_cli("deploy", str(path)))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT segql.track('ann', 'add_to_cart', '{}', '2026-05-01T11:30:00Z')")
    assert "no changes" in ok(segql_cli("rebuild"))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM segql.members")  # a restore from an older backup, say
    assert "1 enter(s), 0 exit(s)" in ok(segql_cli("rebuild"))
    assert ok(segql_cli("members", "carted", "--csv")).splitlines()[1].startswith("ann,")
