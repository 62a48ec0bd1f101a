"""The timer worker on the real clock: changes land at their due time, and lost backends heal."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from segql import deploy, parse, worker

WAIT = 10.0  # seconds; generous upper bound for anything that should take well under one


def deploy_text(conn: psycopg.Connection, text: str) -> None:
    deploy.deploy(conn, parse.parse_text(text, "test.sql"))
    conn.commit()


class RunningWorker:
    """`run_worker` on a thread, with a way to wait for its passes and its failure, if any."""

    def __init__(self, url: str, **options: Any) -> None:
        self.stop = worker.StopEvent()
        self.passes: list[int] = []
        self.error: BaseException | None = None
        self._changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(url, options), daemon=True)

    def _run(self, url: str, options: dict[str, Any]) -> None:
        try:
            worker.run_worker(url, stop_event=self.stop, on_tick=self._on_tick, **options)
        except BaseException as exc:  # reported by the test thread
            self.error = exc

    def _on_tick(self, n: int) -> None:
        with self._changed:
            self.passes.append(n)
            self._changed.notify_all()

    def wait_passes(self, count: int, timeout: float = WAIT) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.passes) >= count, timeout), self.passes

    @property
    def processed(self) -> int:
        return sum(self.passes)


@contextmanager
def running_worker(url: str, **options: Any) -> Iterator[RunningWorker]:
    running = RunningWorker(url, **options)
    running.thread.start()
    try:
        running.wait_passes(1)  # connected, listening, and done with what was already due
        yield running
    finally:
        running.stop.set()
        running.thread.join(WAIT)
        running.stop.close()
    assert not running.thread.is_alive(), "the worker did not stop"
    assert running.error is None, running.error


@contextmanager
def listening(url: str, channel: str = "segql") -> Iterator[psycopg.Connection]:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"LISTEN {channel}")
        yield conn


def next_xid(listener: psycopg.Connection, timeout: float) -> str | None:
    """The xid the next `segql` notification points at, or None after `timeout` seconds."""
    for note in listener.notifies(timeout=timeout, stop_after=1):
        return str(json.loads(note.payload)["xid"])
    return None


def changes_of(conn: psycopg.Connection, xid: str) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT segment, user_id, kind, cause, at, recorded_at FROM segql.changes "
        "WHERE xid = %s::xid8 ORDER BY seq",
        [xid],
    ).fetchall()
    conn.commit()
    return rows


def insert_event(conn: psycopg.Connection, user: str, name: str = "add_to_cart") -> datetime:
    row = conn.execute(
        "INSERT INTO segql.events (user_id, name) VALUES (%s, %s) RETURNING ts", [user, name]
    ).fetchone()
    conn.commit()
    assert row is not None
    return row[0]


def worker_pids(conn: psycopg.Connection) -> set[int]:
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND application_name LIKE 'segql worker%'"
    ).fetchall()
    conn.commit()
    return {r[0] for r in rows}


@pytest.mark.slow
def test_window_exit_arrives_at_its_exact_due_time(
    database_url: str, conn: psycopg.Connection
) -> None:
    deploy_text(conn, "CREATE SEGMENT carted AS did('add_to_cart', within => '5 seconds');")
    with listening(database_url) as listener, running_worker(database_url):
        before = time.monotonic()
        ts = insert_event(conn, "u1")
        committed = time.monotonic()

        enter = next_xid(listener, WAIT)
        assert enter is not None
        assert [c[:4] for c in changes_of(conn, enter)] == [("carted", "u1", "enter", "event")]

        exit_ = next_xid(listener, 5.0 + WAIT)
        arrived = time.monotonic()
        assert exit_ is not None
        [(segment, user, kind, cause, at, recorded_at)] = changes_of(conn, exit_)
        assert (segment, user, kind, cause) == ("carted", "u1", "exit", "time")
        assert at == ts + timedelta(seconds=5)  # logged at the moment it happened
        # The server applied it no earlier than the due time and promptly after it ...
        assert ts + timedelta(seconds=5) <= recorded_at < ts + timedelta(seconds=7)
        # ... and the listener heard of it no earlier than 5 s after the event, within 2 s more.
        assert arrived - before >= 5.0
        assert arrived - committed < 7.0

        # Nothing else happens without new events.
        assert next_xid(listener, 1.0) is None
    counts = conn.execute(
        "SELECT (SELECT count(*) FROM segql.changes), (SELECT count(*) FROM segql.timers), "
        "(SELECT count(*) FROM segql.members)"
    ).fetchone()
    assert counts == (2, 0, 0)


@pytest.mark.slow
def test_worker_survives_terminated_backends(
    database_url: str, conn: psycopg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    deploy_text(conn, "CREATE SEGMENT carted AS did('add_to_cart', within => '2 seconds');")
    with listening(database_url) as listener, running_worker(database_url) as running:
        # A timer is pending while the worker sleeps towards it; then both its backends die.
        ts = insert_event(conn, "u1")
        assert next_xid(listener, WAIT) is not None  # entered
        before = worker_pids(conn)
        assert len(before) == 2
        conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", [list(before)])
        conn.commit()

        exit_ = next_xid(listener, 2.0 + WAIT)
        assert exit_ is not None
        [(_, user, kind, cause, at, recorded_at)] = changes_of(conn, exit_)
        assert (user, kind, cause) == ("u1", "exit", "time")
        assert at == ts + timedelta(seconds=2)
        assert recorded_at - at < timedelta(seconds=2)

        after = worker_pids(conn)
        assert len(after) == 2 and not (after & before)

        # And it keeps working on new connections.
        insert_event(conn, "u2")
        assert next_xid(listener, WAIT) is not None  # entered
        exit_ = next_xid(listener, 2.0 + WAIT)
        assert exit_ is not None
        assert [c[1:4] for c in changes_of(conn, exit_)] == [("u2", "exit", "time")]
        assert running.thread.is_alive()
    lost = [r for r in caplog.records if "lost the database connection" in r.getMessage()]
    assert len(lost) == 1
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_worker_wakes_early_for_an_earlier_timer(
    database_url: str, conn: psycopg.Connection
) -> None:
    """A long sleep towards a far timer is cut short by the trigger's doorbell."""
    deploy_text(
        conn,
        "CREATE SEGMENT far AS did('far', within => '1 hour');\n"
        "CREATE SEGMENT near AS did('near', within => '1 second');",
    )
    insert_event(conn, "u1", "far")
    with listening(database_url) as listener, running_worker(database_url, max_sleep=30.0):
        ts = insert_event(conn, "u2", "near")
        assert next_xid(listener, WAIT) is not None  # entered
        exit_ = next_xid(listener, 1.0 + WAIT)
        assert exit_ is not None
        [(segment, user, kind, cause, at, recorded_at)] = changes_of(conn, exit_)
        assert (segment, user, kind, cause) == ("near", "u2", "exit", "time")
        assert at == ts + timedelta(seconds=1)
        assert recorded_at - at < timedelta(seconds=1)


def test_worker_before_any_deploy_waits_quietly(
    database_url: str, conn: psycopg.Connection
) -> None:
    with running_worker(database_url, max_sleep=0.2) as running:
        running.wait_passes(3)
        assert running.processed == 0
    assert conn.execute("SELECT count(*) FROM segql.changes").fetchone() == (0,)


def test_pinned_clock_is_read_again_on_each_wake(
    database_url: str, conn: psycopg.Connection
) -> None:
    """Moving a pinned clock past a due time, without ticking, is picked up by the worker."""
    deploy_text(conn, "CREATE SEGMENT carted AS did('add_to_cart', within => '1 day');")
    conn.execute("UPDATE segql.clock SET pinned_at = '2030-01-01T00:00:00Z'")
    conn.commit()
    insert_event(conn, "u1")
    with running_worker(database_url, pinned_poll=0.1) as running:
        conn.execute("UPDATE segql.clock SET pinned_at = '2030-01-02T00:00:00Z'")
        conn.commit()
        deadline = time.monotonic() + WAIT
        while running.processed < 1 and time.monotonic() < deadline:
            running.wait_passes(len(running.passes) + 1)
        assert running.processed == 1
    row = conn.execute("SELECT kind, cause, at FROM segql.changes WHERE kind = 'exit'").fetchone()
    assert row is not None
    assert row[:2] == ("exit", "time")
    assert row[2].isoformat() == "2030-01-02T00:00:00+00:00"


def test_unreachable_database_is_retried_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """While the server is down the worker keeps trying, backing off, and says so once."""
    attempts: list[float] = []
    original = psycopg.connect

    def counting_connect(*args: Any, **kwargs: Any) -> psycopg.Connection:
        attempts.append(time.monotonic())
        return original(*args, **kwargs)

    with worker.StopEvent() as stop, pytest.MonkeyPatch.context() as patch:
        patch.setattr(psycopg, "connect", counting_connect)
        timer = threading.Timer(2.0, stop.set)
        timer.start()
        # Only the timer loop's connections are counted: campaign senders and the relay back
        # off on their own.
        worker.run_worker(
            "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1",
            stop_event=stop,
            campaigns=False,
            relay_interval=None,
        )
        timer.join()
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 3 <= len(attempts) <= 6  # 0.1, 0.2, 0.4, 0.8 s apart: backing off, not spinning
    assert gaps == sorted(gaps)
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "lost the database connection" in warnings[0].getMessage()
