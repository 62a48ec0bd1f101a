"""Faults with real processes: a worker SIGKILLed mid-tick, redeploys and drops while writers
insert. After each, `verify` is clean and the change log holds every change exactly once.

Sizes are scaled for CI; SEGQL_FAULT_FULL=1 runs the issue's sizes (100 k timers).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg

from segql import run, verify
from segql.deploy import deploy
from segql.parse import parse_text

FULL = os.environ.get("SEGQL_FAULT_FULL") == "1"
TIMERS = 100_000 if FULL else 20_000
WRITERS = 8
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def assert_log_consistent(conn: psycopg.Connection) -> None:
    """Per (segment, user) the log alternates enter/exit, and ends in the current membership."""
    bad = conn.execute(
        """SELECT segment, user_id, kind, prev FROM (
               SELECT segment, user_id, kind,
                      lag(kind) OVER (PARTITION BY segment, user_id ORDER BY seq) AS prev
               FROM segql.changes) c
           WHERE kind = prev"""
    ).fetchall()
    assert bad == [], bad[:5]
    mismatch = conn.execute(
        """SELECT l.segment, l.user_id FROM (
               SELECT DISTINCT ON (segment, user_id) segment, user_id, kind FROM segql.changes
               ORDER BY segment, user_id, seq DESC) l
           JOIN segql.segments s ON s.name = l.segment
           WHERE (l.kind = 'enter') <> EXISTS (SELECT 1 FROM segql.members m
                                               WHERE m.segment = l.segment
                                                 AND m.user_id = l.user_id)"""
    ).fetchall()
    assert mismatch == [], mismatch[:5]


def assert_clean(conn: psycopg.Connection) -> None:
    conn.commit()
    report = verify.verify(conn)
    assert report.clean, report
    assert_log_consistent(conn)


def test_a_worker_killed_mid_tick_is_finished_exactly_by_the_next(
    conn: psycopg.Connection, database_url: str
) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0])
    deploy(conn, parse_text("CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');"))
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts) "
        "SELECT 'u' || i, 'add_to_cart', %s::timestamptz - (i %% 1800) * interval '1 second' "
        "FROM generate_series(1, %s) i",
        [T0, TIMERS],
    )
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0 + timedelta(hours=2)])
    conn.commit()
    assert conn.execute("SELECT count(*) FROM segql.timers").fetchone() == (TIMERS,)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SEGQL_DATABASE_URL"] = database_url
    tick = [sys.executable, "-m", "segql", "tick", "--batch", str(TIMERS // 10)]
    proc = subprocess.Popen(tick, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while _count(conn, "SELECT count(*) FROM segql.changes WHERE cause = 'time'") == 0:
            assert proc.poll() is None, "the tick ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done_before = _count(conn, "SELECT count(*) FROM segql.changes WHERE cause = 'time'")
    assert 0 < done_before < TIMERS, "the kill did not land in the middle of the tick"
    subprocess.run(tick, env=env, check=True, capture_output=True, timeout=600)
    assert _count(conn, "SELECT count(*) FROM segql.changes WHERE cause = 'time'") == TIMERS
    assert _count(conn, "SELECT count(*) FROM segql.timers") == 0
    assert _count(conn, "SELECT count(*) FROM segql.members") == 0
    assert_clean(conn)


def _count(conn: psycopg.Connection, statement: str) -> int:
    row = conn.execute(statement).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


@contextmanager
def writers(database_url: str, names: list[str]) -> Iterator[list[int]]:
    """WRITERS threads inserting events for 200 users until the block ends; yields counts."""
    stop = threading.Event()
    counts = [0] * WRITERS
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as wconn:
                i = 0
                while not stop.is_set():
                    user = f"u{(index * 7919 + i) % 200}"
                    wconn.execute("SELECT segql.track(%s, %s)", [user, names[i % len(names)]])
                    counts[index] += 1
                    i += 1
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        yield counts
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == []


SEGMENTS = """
CREATE SEGMENT viewers AS event_count('view') >= 3;
CREATE SEGMENT buyers AS event_count('purchase') >= 2 AND in_segment('viewers');
CREATE SEGMENT recent AS did('view', within => '1 hour');
"""


def test_a_redeploy_while_writers_insert_loses_and_duplicates_nothing(
    conn: psycopg.Connection, database_url: str
) -> None:
    deploy(conn, parse_text(SEGMENTS))
    conn.commit()
    with writers(database_url, ["view", "purchase", "view"]) as counts:
        for threshold in (5, 8, 13):
            changed = f"CREATE SEGMENT viewers AS event_count('view') >= {threshold};"
            deploy(conn, parse_text(changed))
            conn.commit()
            time.sleep(0.3)
    assert sum(counts) > 0
    total = _count(conn, "SELECT count(*) FROM segql.events")
    assert total == sum(counts)
    run.tick(conn)  # what the worker does at once: see the test of out-of-order writers below
    assert_clean(conn)


def test_a_drop_while_writers_insert(conn: psycopg.Connection, database_url: str) -> None:
    deploy(conn, parse_text(SEGMENTS))
    conn.commit()
    with writers(database_url, ["view", "purchase"]):
        deploy(conn, [], drop=["buyers"])
        conn.commit()
        time.sleep(0.3)
        deploy(conn, [], drop=["recent"])
        conn.commit()
    assert _count(conn, "SELECT count(*) FROM segql.members WHERE segment <> 'viewers'") == 0
    # Timers may remain keyed by the event group that `viewers` still reads; none by the drops.
    gone = "SELECT count(*) FROM segql.timers WHERE segment IN ('buyers', 'recent')"
    assert _count(conn, gone) == 0
    drops = conn.execute(
        "SELECT segment, count(*) FILTER (WHERE cause = 'drop'), "
        "count(*) FILTER (WHERE kind = 'enter') - count(*) FILTER (WHERE kind = 'exit') "
        "FROM segql.changes WHERE segment IN ('buyers', 'recent') GROUP BY 1"
    ).fetchall()
    assert all(balance == 0 for _, _, balance in drops), drops
    run.tick(conn)  # what the worker does at once: see the test of out-of-order writers below
    assert_clean(conn)


def test_a_writer_that_started_first_but_commits_second_leaves_a_timer_due_at_once(
    conn: psycopg.Connection, database_url: str
) -> None:
    # Events are stamped with their transaction's start. A writer that began before another
    # but reached the user after it evaluates at its own, earlier instant, where the other's
    # event is still in the future: it leaves a timer due at that event's ts, which the worker
    # applies at once. Until then, verify reports the timer as overdue; after, all is exact.
    deploy(conn, parse_text("CREATE SEGMENT recent AS did('view', within => '1 hour');"))
    conn.commit()
    with psycopg.connect(database_url) as first, psycopg.connect(database_url) as second:
        first.execute("SELECT now()")  # the first writer's transaction, and its instant, begin
        second.execute("SELECT segql.track('u', 'view')")
        second.commit()
        first.execute("SELECT segql.track('u', 'view')")
        first.commit()
    later = conn.execute("SELECT max(ts) FROM segql.events").fetchone()
    conn.commit()
    report = verify.verify(conn)
    assert [(user, due) for _, user, due in report.overdue] == [("u", later[0])]
    run.tick(conn)
    assert_clean(conn)
    assert conn.execute("SELECT user_id FROM segments.recent").fetchall() == [("u",)]
