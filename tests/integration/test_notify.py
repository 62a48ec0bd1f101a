"""NOTIFY is the doorbell: once per transaction that changed membership, never otherwise."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg

from segql import deploy, run
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DEFINITIONS = """
CREATE SEGMENT buyers AS did('purchase');
CREATE SEGMENT big AS event_sum('purchase', 'amount') > 100;
CREATE SEGMENT recent AS did('page_view', within => '1 hour');
"""


def _copy_events(conn: psycopg.Connection, rows: list[tuple[str, str, str]]) -> None:
    with (
        conn.cursor() as cur,
        cur.copy("COPY segql.events (user_id, name, ts, props) FROM STDIN") as copy,
    ):
        for user, name, props in rows:
            copy.write_row((user, name, T0, props))
    conn.commit()


def _listener(database_url: str, channel: str = "segql") -> psycopg.Connection:
    listener = psycopg.connect(database_url, autocommit=True)
    listener.execute(f'LISTEN "{channel}"')
    return listener


def test_one_notification_for_a_copy_of_10000_events(
    database_url: str, conn: psycopg.Connection
) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(DEFINITIONS, "n.sql"))
    before = conn.execute("SELECT coalesce(max(seq), 0) FROM segql.changes").fetchone()[0]  # type: ignore[index]
    conn.commit()
    listener = _listener(database_url)
    rows = [
        (
            f"user{i % 2500}",
            "purchase" if i % 3 == 0 else "page_view",
            json.dumps({"amount": i % 90}),
        )
        for i in range(10_000)
    ]
    _copy_events(conn, rows)

    received = list(listener.notifies(timeout=2.0))
    listener.close()
    assert len(received) == 1
    xid = json.loads(received[0].payload)["xid"]
    changes = conn.execute(
        "SELECT segment, user_id, kind FROM segql.changes WHERE xid = %s::xid8 ORDER BY seq", [xid]
    ).fetchall()
    all_new = conn.execute(
        "SELECT segment, user_id, kind FROM segql.changes WHERE seq > %s ORDER BY seq", [before]
    ).fetchall()
    assert changes == all_new
    # Exactly the batch's enters: everyone who bought, viewed, or spent over 100.
    entered = {(s, u) for s, u, k in changes if k == "enter"}
    assert all(k == "enter" for _, _, k in changes)
    for name in ("buyers", "big", "recent"):
        assert {u for s, u in entered if s == name} == deploy.full_members(conn, name)


def test_a_copy_that_changes_nothing_sends_no_notification(
    database_url: str, conn: psycopg.Connection
) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(DEFINITIONS, "n.sql"))
    _copy_events(conn, [("a", "purchase", json.dumps({"amount": 5}))])
    listener = _listener(database_url)
    # Same user again, and events no segment reads: membership does not move.
    _copy_events(
        conn,
        [("a", "purchase", json.dumps({"amount": 0}))] * 50
        + [("a", "newsletter_opened", "{}")] * 50,
    )
    assert list(listener.notifies(timeout=1.0)) == []
    listener.close()


def test_each_segment_has_its_own_channel(database_url: str, conn: psycopg.Connection) -> None:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(DEFINITIONS, "n.sql"))
    big = _listener(database_url, "segql.big")
    _copy_events(conn, [("a", "purchase", json.dumps({"amount": 5}))])
    assert list(big.notifies(timeout=0.5)) == []
    _copy_events(conn, [("a", "purchase", json.dumps({"amount": 500}))])
    assert len(list(big.notifies(timeout=1.0))) == 1
    big.close()
