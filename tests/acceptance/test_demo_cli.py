"""`segql demo` as a newcomer runs it, without a terminal: it sets up its own database, streams
for the given seconds, exits 0 and ends with a summary whose counts match the change log."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import IO

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


def _until_dashboard(out: IO[str]) -> list[str]:
    lines: list[str] = []
    for line in out:
        lines.append(line)
        if line.startswith("Dashboard: "):
            return lines
    raise AssertionError("the demo printed no dashboard URL:\n" + "".join(lines))


def _number(pattern: str, text: str) -> int:
    found = re.search(pattern, text, re.MULTILINE)
    assert found, f"no {pattern!r} in:\n{text}"
    return int(found.group(1).replace(",", ""))


def test_demo_streams_and_summarizes_enters_and_timed_exits(
    cli_env: dict[str, str], database_url: str, demo_database: str
) -> None:
    args = [
        "demo", "--seconds", "8", "--rate", "40", "--active-window", "3", "--users", "500",
        "--history", str(HISTORY), "--demo-database", demo_database, "--dashboard-port", "0",
    ]  # fmt: skip
    with subprocess.Popen(
        [sys.executable, "-m", "segql", *args],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        head = _until_dashboard(proc.stdout)
        url = head[-1].removeprefix("Dashboard: ").strip()
        # While the demo runs, its dashboard shows the demo's segments and streams their sizes.
        page = urllib.request.urlopen(url, timeout=10).read().decode()
        assert 'data-segment="demo_active_now"' in page
        with urllib.request.urlopen(f"{url}stream", timeout=10) as stream:
            lines = [stream.readline().decode() for _ in range(3)]
        assert any(line.startswith("data: ") and "demo_active_now" in line for line in lines)
        rest, err = proc.communicate(timeout=180)
    result = subprocess.CompletedProcess(args, proc.returncode, "".join(head) + rest, err)
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

    # The summary's counts are the change log's, exactly.
    demo_url = db.with_database(database_url, demo_database)
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
