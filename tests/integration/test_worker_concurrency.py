"""Two workers at once share the due timers: each timer is applied exactly once."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from segql import deploy, parse, worker

USERS = 2_000
PINNED = datetime(2030, 1, 1, tzinfo=UTC)
WAIT = 60.0


def _workers_apply(url: str, n: int, batch: int) -> list[int]:
    """Run `n` workers side by side until every timer is gone; what each one applied."""
    stops = [worker.StopEvent() for _ in range(n)]
    applied: list[list[int]] = [[] for _ in range(n)]
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def run(k: int) -> None:
        start.wait()
        try:
            worker.run_worker(
                url, stop_event=stops[k], batch=batch, on_tick=applied[k].append, pinned_poll=0.1
            )
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + WAIT
            while conn.execute("SELECT count(*) FROM segql.timers").fetchone() != (0,):
                assert time.monotonic() < deadline, "timers left after the deadline"
                time.sleep(0.05)
    finally:
        for stop in stops:
            stop.set()
        for t in threads:
            t.join(WAIT)
        for stop in stops:
            stop.close()
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    return [sum(a) for a in applied]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spread", "batch"),
    [(timedelta(0), 10_000), (timedelta(milliseconds=1), 50)],
    ids=["same-instant", "distinct-instants"],
)
def test_two_workers_apply_each_timer_exactly_once(
    database_url: str, conn: psycopg.Connection, spread: timedelta, batch: int
) -> None:
    deploy.deploy(
        conn,
        parse.parse_text(
            "CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');", "test.sql"
        ),
    )
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [PINNED])
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts) "
        "SELECT 'u' || i, 'add_to_cart', %s - %s * i FROM generate_series(1, %s) i",
        [PINNED, spread, USERS],
    )
    conn.commit()
    due = conn.execute("SELECT count(*), count(DISTINCT due_at) FROM segql.timers").fetchone()
    assert due == (USERS, 1 if not spread else USERS)
    # Every timer falls due at once for both workers: move the clock past them without ticking.
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [PINNED + timedelta(hours=2)])
    conn.commit()

    applied = _workers_apply(database_url, 2, batch)

    assert sum(applied) == USERS
    rows = conn.execute(
        "SELECT count(*), count(DISTINCT user_id) FROM segql.changes "
        "WHERE segment = 'carted' AND kind = 'exit' AND cause = 'time'"
    ).fetchone()
    assert rows == (USERS, USERS)
    assert conn.execute(
        "SELECT count(*) FROM segql.changes WHERE kind = 'exit' AND at <> ("
        "SELECT max(ts) FROM segql.events e WHERE e.user_id = changes.user_id) + interval '1 hour'"
    ).fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM segql.members").fetchone() == (0,)
