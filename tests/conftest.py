"""Shared fixtures: one PostgreSQL server per session (per worker under xdist), one fresh
database per test.

- `server_url`: the server. $SEGQL_TEST_DATABASE_URL or $DATABASE_URL when set, else an embedded
  server in a temporary SEGQL_HOME, stopped at the end of the session.
- `template_url`: a database migrated to head once per session; its name is unique per session so
  concurrent sessions against one server do not collide.
- `database_url`: a fresh clone of the template for one test, dropped afterwards.
- `conn`: a psycopg connection to that database (autocommit off).
- `segql_cli`: runs `python -m segql ...` as a subprocess against that database.

Tests are marked `integration` / `acceptance` by the folder they live in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from segql import db, embedded, schema

_LAYER_MARKS = {"integration": pytest.mark.integration, "acceptance": pytest.mark.acceptance}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    # Most of a test's time is the server's, and each worker starts its own embedded server:
    # past a few workers they only contend for the same cores and disk.
    return max(1, min(4, os.cpu_count() or 1))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for part in Path(str(item.path)).parts:
            if part in _LAYER_MARKS:
                item.add_marker(_LAYER_MARKS[part])


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    configured = os.environ.get("SEGQL_TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if configured:
        yield configured
        return
    # Under the system temp dir: as root the server's parents get widened permissions.
    home = Path(tempfile.mkdtemp(prefix="segql-test-", dir=tempfile.gettempdir()))
    try:
        yield embedded.server_url(home)
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def _admin(server: str) -> psycopg.Connection:
    return psycopg.connect(server, autocommit=True)


def _drop_database(server: str, name: str) -> None:
    with _admin(server) as conn:
        # WITH (FORCE) terminates the backends still connected (PostgreSQL 13+).
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def template_url(server_url: str) -> Iterator[str]:
    name = f"segql_tmpl_{uuid.uuid4().hex[:12]}"
    with _admin(server_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    url = db.with_database(server_url, name)
    try:
        schema.upgrade(url)
        yield url
    finally:
        _drop_database(server_url, name)


@pytest.fixture
def database_url(server_url: str, template_url: str) -> Iterator[str]:
    name = f"segql_test_{uuid.uuid4().hex[:12]}"
    template = db.database_name(template_url)
    with _admin(server_url) as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )
    try:
        yield db.with_database(server_url, name)
    finally:
        _drop_database(server_url, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url) as connection:
        yield connection


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for a segql subprocess: this test's database, nothing inherited that competes."""
    env = {k: v for k, v in os.environ.items() if k not in db.ENV_VARS}
    env["SEGQL_DATABASE_URL"] = database_url
    env["SEGQL_HOME"] = str(tmp_path / "segql-home")  # never the developer's embedded server
    env.pop("SEGQL_DEBUG", None)
    return env


@pytest.fixture
def segql_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`segql_cli("status")` runs the CLI as a user would and returns the finished process."""

    def run(
        *args: str, input: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "segql", *args],
            env=cli_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run
