"""`segql listen`, run as a user runs it: JSON lines, consumers, signals, pipes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

import psycopg
import pytest

from segql.deploy import deploy
from segql.parse import parse_text

Cli = Callable[..., subprocess.CompletedProcess[str]]
SEGMENTS = """
CREATE SEGMENT flip AS event_count('hit') % 2 = 1;
CREATE SEGMENT vip AS event_sum('purchase', 'amount') > 100;
"""


@pytest.fixture
def url(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        deploy(conn, parse_text(SEGMENTS))
    return database_url


def hit(url: str, *users: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for user in users:
            conn.execute("SELECT segql.track(%s, 'hit')", [user])


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "segql", "listen", "--poll-interval", "0.2", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_lines(stream: IO[str] | None, n: int, timeout: float = 30) -> list[dict[str, Any]]:
    """n JSON lines from a running listener, or fail after `timeout` seconds."""
    assert stream is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(stream.readline() for _ in range(n)))
    reader.daemon = True
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"only {len(lines)} of {n} lines within {timeout} s"
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_prints_json_lines_as_changes_commit_and_stops_cleanly(
    url: str, cli_env: dict[str, str], stop: signal.Signals
) -> None:
    hit(url, "a", "b")
    proc = start(cli_env, "--since", "0")
    first = read_lines(proc.stdout, 2)
    assert [(c["seq"], c["segment"], c["user_id"], c["kind"]) for c in first] == [
        (1, "flip", "a", "enter"),
        (2, "flip", "b", "enter"),
    ]
    assert set(first[0]) == {"seq", "segment", "user_id", "kind", "at", "cause", "version"}
    hit(url, "a")
    assert read_lines(proc.stdout, 1)[0]["kind"] == "exit"
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert out == "" and err == ""


def test_a_consumer_resumes_where_it_stopped(url: str, segql_cli: Cli) -> None:
    hit(url, "a", "b")
    first = segql_cli("listen", "--consumer", "crm", "--since", "0", "--timeout", "0.5")
    assert [json.loads(line)["seq"] for line in first.stdout.splitlines()] == [1, 2]
    again = segql_cli("listen", "--consumer", "crm", "--since", "0", "--timeout", "0.5")
    assert again.returncode == 0 and again.stdout == ""
    hit(url, "c")
    peek = segql_cli("listen", "--consumer", "crm", "--no-ack", "--timeout", "0.5")
    assert [json.loads(line)["user_id"] for line in peek.stdout.splitlines()] == ["c"]
    new = segql_cli("listen", "-c", "crm", "--timeout", "0.5")
    assert [json.loads(line)["user_id"] for line in new.stdout.splitlines()] == ["c"]
    listed = segql_cli("consumers", "list", "--json")
    assert json.loads(listed.stdout)[0] | {"acked_at": None, "updated_at": None} == {
        "name": "crm",
        "segments": None,
        "last_seq": 3,
        "acked_at": None,
        "updated_at": None,
        "pending": 0,
    }


def test_follows_only_the_named_segments(url: str, segql_cli: Cli) -> None:
    hit(url, "a")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT segql.track('a', 'purchase', '{\"amount\": 500}')")
    only = segql_cli("listen", "VIP", "--since", "0", "--timeout", "0.5")
    assert [json.loads(line)["segment"] for line in only.stdout.splitlines()] == ["vip"]
    unknown = segql_cli("listen", "nope", "--timeout", "0.5")
    assert unknown.returncode == 1 and unknown.stderr.startswith("Error: segment 'nope'")


def test_a_closed_pipe_ends_it_quietly(url: str, cli_env: dict[str, str]) -> None:
    """`segql listen | head -n 1`: the reader leaves; listen exits without a traceback."""
    hit(url, "a")
    proc = start(cli_env, "--since", "0")
    read_lines(proc.stdout, 1)
    assert proc.stdout is not None
    proc.stdout.close()
    deadline = time.monotonic() + 15
    while proc.poll() is None and time.monotonic() < deadline:
        hit(url, "b")  # something to write into the closed pipe
        time.sleep(0.2)
    assert proc.poll() == 0
    assert proc.stderr is not None and proc.stderr.read() == ""
    proc.stderr.close()
