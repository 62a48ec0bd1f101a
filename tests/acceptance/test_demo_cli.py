"""`segql demo` as a newcomer runs it, without a terminal: it sets up its own database, streams
for the given seconds, exits 0 and ends with a summary whose counts match the change log."""

from __future__ import annotations

import re
import subprocess
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from segql import db

Cli = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.slow

HISTORY = 5000


@pytest.fixture
def demo_database(server_url: str) -> Iterator[str]:
    """A demo database name of this test's own, dropped afterwards whatever happened.

    The demo recreates its database on the server it is pointed at; a name per test keeps two
    test sessions on one server from dropping each other's demo.
    """
    name = f"segql_demo_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no {pattern!r} in:\n{text}"
    return int(found.group(1).replace(",", ""))


def test_demo_streams_and_summarizes_enters_and_timed_exits(
    segql_cli: Cli, database_url: str, demo_database: str
) -> None:
    result = segql_cli(
        "demo",
        "--seconds",
        "8",
        "--rate",
        "40",
        "--active-window",
        "3",
        "--users",
        "500",
        "--history",
        str(HISTORY),
        "--demo-database",
        demo_database,
        timeout=180,
    )
    out = result.stdout
    assert result.returncode == 0, result.stderr + out
    assert "Demo finished after" in out
    enters = _number(r"^Changes: ([\d,]+) enters", out)
    timed_exits = _number(r"^Timed exits: ([\d,]+)\.", out)
    assert enters > 0
    assert timed_exits >= 1
    assert _number(r"^  time\s+[\d,]+\s+([\d,]+)$", out) == timed_exits
    assert re.search(r"^  demo_active_now\s+[\d,]+\s+[\d,]+$", out, re.MULTILINE)
    assert "The change feed delivered all" in out
    # The summary says how to keep exploring the demo's own database, with commands that work.
    demo_url = db.with_database(database_url, demo_database)
    export = re.search(r"^  export SEGQL_DATABASE_URL='([^']+)'$", out, re.MULTILINE)
    assert export is not None and export.group(1) == db.mask_password(demo_url)
    shown = re.search(r"^  segql members (\S+)$", out, re.MULTILINE)
    assert shown is not None and re.search(r"^  segql why \S+ \S+$", out, re.MULTILINE)
    listed = segql_cli("--database-url", demo_url, "members", shown.group(1))
    assert listed.returncode == 0 and listed.stdout.strip()

    # The summary's counts are the change log's, exactly.
    with psycopg.connect(demo_url) as conn:
        logged = conn.execute(
            "SELECT count(*) FROM segql.changes WHERE kind = 'exit' AND cause = 'time'"
        ).fetchone()
        assert logged is not None and logged[0] == timed_exits
        events = conn.execute("SELECT count(*) FROM segql.events").fetchone()
        assert events is not None
        assert events[0] == HISTORY + _number(r"^Events sent: ([\d,]+)", out)


def test_demo_refuses_a_database_name_it_could_destroy(segql_cli: Cli) -> None:
    result = segql_cli("demo", "--seconds", "1", "--demo-database", "postgres")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "must begin with 'segql_demo'" in result.stderr
