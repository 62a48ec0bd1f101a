"""The embedded server: started on demand, joined warm, recovered after a crash, stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from segql import db

pytestmark = pytest.mark.slow

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def embedded_cli() -> Iterator[tuple[Cli, Path]]:
    """A CLI with no database URL and its own SEGQL_HOME, so it runs its own embedded server.

    Not under pytest's tmp_path: each pytest session resets its base directory to mode 0700,
    which would lock the server's own system user out of the data directory (as root).
    """
    base = Path(tempfile.mkdtemp(prefix="segql-server-test-", dir=tempfile.gettempdir()))
    env = {k: v for k, v in os.environ.items() if k not in (*db.ENV_VARS, "SEGQL_DEBUG")}
    env["SEGQL_HOME"] = str(base / "home")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "segql", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    try:
        yield run, base / "home" / "pgdata"
    finally:
        run("server", "stop")
        shutil.rmtree(base, ignore_errors=True)


def _fields(output: str) -> dict[str, str]:
    return dict(line.split(None, 1) for line in output.splitlines())


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_embedded_lifecycle(embedded_cli: tuple[Cli, Path]) -> None:
    run, pgdata = embedded_cli

    first = run("status")
    assert first.returncode == 0, first.stderr
    fields = _fields(first.stdout)
    assert fields["server"] == "embedded"
    assert fields["schema"].startswith("not initialized")
    assert "/segql?" in fields["database"]  # its own database, not `postgres`

    init = run("init")
    assert init.returncode == 0, init.stderr
    assert run("server", "status").stdout.startswith("running")

    # A crash leaves a postmaster.pid and client pids behind that name dead processes.
    assert run("server", "stop").stdout.startswith("Stopped")
    (pgdata / "postmaster.pid").write_text(f"{_dead_pid()}\n{pgdata}\n0\n5432\n\n\n\nready\n")
    gone = _dead_pid()
    (pgdata / ".handle_pids.json").write_text(json.dumps([gone]))

    again = run("status")
    assert again.returncode == 0, again.stderr
    assert _fields(again.stdout)["schema"] != "not initialized (run `segql init`)"
    assert gone not in json.loads((pgdata / ".handle_pids.json").read_text())

    assert run("server", "stop").stdout.startswith("Stopped")
    assert run("server", "stop").stdout.startswith("The embedded server is not running")
    assert run("server", "status").stdout.startswith("stopped")
