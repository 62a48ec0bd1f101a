"""init and status, run as a user would run them."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from segql import db

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_init_is_idempotent(segql_cli: Cli, database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA segql CASCADE; DROP SCHEMA segments CASCADE")
    first = segql_cli("init")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Initialized")
    second = segql_cli("init")
    assert second.returncode == 0, second.stderr
    assert "Already up to date" in second.stdout


def test_status_reports_server_and_counts(segql_cli: Cli, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("SELECT segql.track('u1', 'viewed')")
    result = segql_cli("status")
    assert result.returncode == 0, result.stderr
    fields = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert fields["server"] == "external"
    assert fields["events"] == "1"
    assert fields["profiles"] == "0"
    assert fields["postgres"][:2].isdigit()


def test_status_masks_password(segql_cli: Cli, cli_env: dict[str, str]) -> None:
    url = cli_env["SEGQL_DATABASE_URL"]
    with_password = url.replace("://postgres@", "://postgres:hunter2@").replace(
        "://postgres:@", "://postgres:hunter2@"
    )
    result = segql_cli("--database-url", with_password, "status")
    assert "hunter2" not in result.stdout + result.stderr


def test_database_errors_are_one_line(segql_cli: Cli) -> None:
    result = segql_cli("--database-url", "postgresql://nobody@127.0.0.1:1/none", "status")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr


def test_migration_errors_are_one_line(segql_cli: Cli, database_url: str) -> None:
    role = f"segql_weak_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute("DROP SCHEMA segql CASCADE")
    try:
        weak_url = make_conninfo(database_url, user=role)
        result = segql_cli("--database-url", weak_url, "init")
        assert result.returncode == 1
        assert result.stderr.startswith("Error: permission denied"), result.stderr
        assert "Traceback" not in result.stderr
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def run_with(env: dict[str, str], var: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in env.items() if k not in ("SEGQL_DATABASE_URL", "DATABASE_URL")}
    env[var] = url
    return subprocess.run(
        [sys.executable, "-m", "segql", "list"], env=env, capture_output=True, text=True
    )


def test_a_bad_url_names_the_variable_it_came_from(cli_env: dict[str, str]) -> None:
    result = run_with(cli_env, "DATABASE_URL", "not a url")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: $DATABASE_URL is not a PostgreSQL URL (")
    assert "postgresql://user:password@host:5432/dbname" in result.stderr


def test_a_missing_database_says_how_to_create_it(cli_env: dict[str, str]) -> None:
    url = db.with_database(cli_env["SEGQL_DATABASE_URL"], "segql_no_such_db")
    result = run_with(cli_env, "SEGQL_DATABASE_URL", url)
    assert result.returncode == 1
    assert "(from $SEGQL_DATABASE_URL): database 'segql_no_such_db' does not exist" in result.stderr
    assert "createdb segql_no_such_db" in result.stderr
