"""`segql worker` as a user runs it: it applies timers, stops cleanly on a signal, and explains
why --install-cron cannot work where pg_cron is missing."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from segql import deploy, parse

Cli = Callable[..., subprocess.CompletedProcess[str]]
WAIT = 30.0


class WorkerProcess:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "segql", "worker", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True).start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no {text!r} in the worker's log: {self.seen}")


@contextmanager
def worker_process(env: dict[str, str], *args: str) -> Iterator[WorkerProcess]:
    worker = WorkerProcess(env, *args)
    try:
        worker.wait_for("worker started")
        yield worker
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
        worker.proc.wait(WAIT)
        for stream in (worker.proc.stdout, worker.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_worker_promptly_with_exit_0(
    cli_env: dict[str, str], signum: signal.Signals
) -> None:
    with worker_process(cli_env) as worker:
        time.sleep(0.2)  # asleep on its listener by now
        sent = time.monotonic()
        worker.proc.send_signal(signum)
        assert worker.proc.wait(WAIT) == 0
        took = time.monotonic() - sent
        worker.wait_for("worker stopped")
        # Stopping takes one interpreter exit; the bound leaves room for a loaded machine.
        assert took < 5.0, (took, worker.seen)


def test_worker_applies_a_timer_and_logs_the_tick(
    cli_env: dict[str, str], database_url: str
) -> None:
    with psycopg.connect(database_url) as conn:
        deploy.deploy(
            conn,
            parse.parse_text(
                "CREATE SEGMENT carted AS did('add_to_cart', within => '1 second');", "x.sql"
            ),
        )
        conn.commit()
        with worker_process(cli_env) as worker:
            conn.execute("SELECT segql.track('u1', 'add_to_cart')")
            conn.commit()
            worker.wait_for("processed 1 timer(s)")
            worker.proc.send_signal(signal.SIGTERM)
            assert worker.proc.wait(WAIT) == 0
        rows = conn.execute("SELECT kind, cause FROM segql.changes ORDER BY seq").fetchall()
    assert rows == [("enter", "event"), ("exit", "time")]


def test_quiet_worker_does_not_log_ticks(cli_env: dict[str, str], database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        deploy.deploy(
            conn,
            parse.parse_text(
                "CREATE SEGMENT carted AS did('add_to_cart', within => '1 second');", "x.sql"
            ),
        )
        conn.execute("SELECT segql.track('u1', 'add_to_cart')")
        conn.commit()
    worker = subprocess.Popen(
        [sys.executable, "-m", "segql", "worker", "--quiet"],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            deadline = time.monotonic() + WAIT
            while conn.execute("SELECT count(*) FROM segql.timers").fetchone() != (0,):
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=WAIT)
    assert worker.returncode == 0
    assert "processed" not in err and out == ""


def test_install_cron_without_pg_cron_says_what_to_do(segql_cli: Cli, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron'"
        ).fetchone()
    if available:
        pytest.skip("this server has pg_cron")
    result = segql_cli("worker", "--install-cron")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: pg_cron is not installed")
    assert "segql worker" in result.stderr  # the default that needs nothing
    assert "Traceback" not in result.stderr
