"""What the dashboard's pages read, against a real database and a pinned clock."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta

import psycopg

from segql import deploy, history, run
from segql.dashboard import reads
from segql.dashboard.server import Background
from segql.parse import parse_text

T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def at(conn: psycopg.Connection, minutes_before: int) -> None:
    run.clock_set(conn, (T - timedelta(minutes=minutes_before)).isoformat())
    run.tick(conn)
    conn.commit()


def test_size_series_replays_the_log(conn: psycopg.Connection) -> None:
    at(conn, 70)
    deploy.deploy(conn, parse_text("CREATE SEGMENT c AS did('cart', within => '30 minutes');", "x"))
    conn.commit()
    for minutes, user in ((50, "ann"), (10, "bob")):
        at(conn, minutes)
        conn.execute("SELECT segql.track(%s, 'cart', '{}', segql.now())", [user])
        conn.commit()
    at(conn, 0)  # ann left at T-20m by her timer; bob is in

    series = reads.size_series(conn, "c", "hour")
    conn.commit()
    assert len(series["t"]) == 61
    for t, size in zip(series["t"], series["size"], strict=True):
        moment = datetime.fromtimestamp(t, UTC)
        assert size == len(history.members_at(conn, "c", moment)), moment
    assert series["size"][0] == 0 and series["size"][-1] == 1 and max(series["size"]) == 1
    assert sum(series["enters"]) == 2 and sum(series["exits"]) == 1

    page = reads.members_page(conn, "c", search="b")
    assert page["total"] == 1 and [m["user_id"] for m in page["members"]] == ["bob"]
    assert reads.members_page(conn, "c", search="%")["total"] == 0  # a wildcard is a character
    assert [
        (i.segment, i.left is None) for i in reads.intervals(reads.user_history(conn, "ann"))
    ] == [("c", False)]
    conn.commit()
    assert reads.draft(conn, "", 5)["error"]["message"] == "no CREATE SEGMENT statement found"
    (result,) = reads.draft(conn, "CREATE SEGMENT d AS did('cart');", 5)["results"]
    assert result == {"segment": "d", "size": 2, "overlap": {"c": 1}, "sample": ["ann", "bob"]}


def test_live_sizes_stay_exact_when_the_server_starts_during_writes(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        deploy.deploy(conn, parse_text("CREATE SEGMENT c AS did('cart');", "x"))
    done = threading.Event()

    def write() -> None:
        with psycopg.connect(database_url, autocommit=True) as writer:
            for i in range(300):
                writer.execute("SELECT segql.track(%s, 'cart', '{}')", [f"w{i}"])
                if i % 7 == 0:  # and some leave again
                    writer.execute("DELETE FROM segql.events WHERE user_id = %s", [f"w{i}"])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        with Background(database_url) as served:
            done.wait(60)
            expected = 300 - len(range(0, 300, 7))
            deadline = time.monotonic() + 10
            shown = None
            while time.monotonic() < deadline and shown != expected:
                html = urllib.request.urlopen(served.url, timeout=5).read().decode()
                found = re.search(r'data-segment="c">.*?data-size>(\d+)<', html, re.S)
                shown = int(found.group(1)) if found else None
                time.sleep(0.2)
            assert shown == expected
    finally:
        writer.join()


def test_a_users_page_explains_every_segment(conn: psycopg.Connection) -> None:
    definitions = """
    CREATE SEGMENT pricing AS event_count('page_view') FILTER (WHERE url LIKE '%/pricing%') >= 1;
    CREATE SEGMENT ny AS city LIKE 'New%';
    """
    deploy.deploy(conn, parse_text(definitions, "x.sql"))
    conn.execute("""SELECT segql.track('ann', 'page_view', '{"url": "/pricing/a"}')""")
    conn.commit()
    explained = {e.segment: e for e in reads.explanations(conn, "ann")}
    assert explained["pricing"].member and explained["pricing"].holds
    assert not explained["ny"].member and not explained["ny"].holds
    assert [(i.segment, i.left) for i in reads.intervals(reads.user_history(conn, "ann"))] == [
        ("pricing", None)
    ]
