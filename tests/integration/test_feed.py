"""segql.subscribe: order, resumption, acknowledgement, wake-ups and reconnection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from segql import feed
from segql.deploy import deploy
from segql.parse import parse_text
from segql.worker import StopEvent

# Each event of a user flips their membership of `flip`; a purchase over 100 makes a `vip`.
SEGMENTS = """
CREATE SEGMENT flip AS event_count('hit') % 2 = 1;
CREATE SEGMENT vip AS event_sum('purchase', 'amount') > 100;
"""


@pytest.fixture
def url(database_url: str) -> str:
    with psycopg.connect(database_url) as conn:
        deploy(conn, parse_text(SEGMENTS))
    return database_url


def hit(conn: psycopg.Connection, *users: str) -> None:
    conn.execute(
        "INSERT INTO segql.events (user_id, name) SELECT unnest(%s::text[]), 'hit'", [list(users)]
    )


def write(url: str, *users: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        hit(conn, *users)


def seqs(sub: feed.Subscription, n: int) -> list[int]:
    return [next(sub).seq for _ in range(n)]


def remaining(sub: feed.Subscription) -> list[int]:
    return [c.seq for c in sub]


@pytest.fixture
def open_subs() -> Iterator[list[feed.Subscription]]:
    subs: list[feed.Subscription] = []
    yield subs
    for sub in subs:
        sub.close()


def subscribe(subs: list[feed.Subscription], url: str, **kwargs: object) -> feed.Subscription:
    kwargs.setdefault("timeout", 1.0)
    kwargs.setdefault("poll_interval", 0.2)
    sub = feed.subscribe(url, **kwargs)  # type: ignore[arg-type]
    subs.append(sub)
    return sub


def test_delivers_every_change_and_resumes_after_the_last_ack(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    write(url, "a", "b", "c")
    write(url, "a")
    sub = subscribe(open_subs, url, consumer="c1", since=0)
    changes = [next(sub) for _ in range(3)]
    assert [(c.segment, c.user_id, c.kind) for c in changes] == [
        ("flip", "a", "enter"),
        ("flip", "b", "enter"),
        ("flip", "c", "enter"),
    ]
    assert changes[0].cause == "event" and changes[0].version == 1
    sub.ack(changes[1])
    sub.close()
    again = subscribe(open_subs, url, consumer="c1")
    assert remaining(again) == [changes[2].seq, changes[2].seq + 1]


def test_a_new_consumer_starts_now_and_since_only_places_new_ones(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    write(url, "a")
    fresh = subscribe(open_subs, url, consumer="late")
    assert remaining(fresh) == []
    fresh.close()
    write(url, "b")
    assert [c.user_id for c in subscribe(open_subs, url, consumer="late", since=0)] == ["b"]
    assert remaining(subscribe(open_subs, url, since=1)) == [2]


def test_out_of_seq_commits_are_neither_skipped_nor_waited_for(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    """Seq 1 commits after seq 2: seq 2 is delivered at once, seq 1 when it commits."""
    with psycopg.connect(url) as early:
        hit(early, "early")  # takes seq 1, commits last
        write(url, "late")  # takes seq 2, commits first
        live = subscribe(open_subs, url, since=0)
        consumer = subscribe(open_subs, url, consumer="c", since=0)
        started = time.monotonic()
        assert next(live).seq == 2
        assert next(consumer).seq == 2
        assert time.monotonic() - started < 1.0  # not waiting for the open transaction
        consumer.ack(2)
        consumer.close()
        early.commit()
    assert next(live).seq == 1
    assert remaining(subscribe(open_subs, url, consumer="c")) == [1]


def test_commit_order_beats_xid_order_and_long_transactions_do_not_stall(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    """T2 takes its xid before T1 but changes user u after T1 commits: T1 is delivered first,
    while an older transaction is still open (its xid holds the snapshot's xmin back)."""
    live = subscribe(open_subs, url, since=0)
    with psycopg.connect(url) as long, psycopg.connect(url) as t2:
        long.execute("SELECT pg_current_xact_id()")
        t2.execute("SELECT pg_current_xact_id()")
        write(url, "u")  # T1: u enters flip
        assert next(live).kind == "enter"
        hit(t2, "u")  # T2: u exits flip
        t2.commit()
        exit_ = next(live)
        assert (exit_.user_id, exit_.kind) == ("u", "exit")
        later = subscribe(open_subs, url, since=0)
        assert [c.kind for c in later] == ["enter", "exit"]


def test_transactions_arrive_whole_and_by_commit(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    with psycopg.connect(url) as a, psycopg.connect(url) as b:
        hit(a, "a1")
        hit(b, "b1")
        hit(a, "a2")
        b.commit()  # b: seq 2, commits first
        a.commit()  # a: seqs 1 and 3
    sub = subscribe(open_subs, url, since=0)
    assert [(c.seq, c.user_id) for c in sub] == [(2, "b1"), (1, "a1"), (3, "a2")]


def test_segment_filter_and_consumer_bound_to_its_segments(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    write(url, "a")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT segql.track('a', 'purchase', '{\"amount\": 500}')")
    sub = subscribe(open_subs, url, segments=["vip"], consumer="vips", since=0)
    assert [(c.segment, c.user_id) for c in sub] == [("vip", "a")]
    sub.close()
    with pytest.raises(feed.FeedError, match="reads segments vip"):
        subscribe(open_subs, url, consumer="vips")


def test_ack_is_cumulative_and_only_for_delivered_changes(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    write(url, "a", "b", "c", "d")
    sub = subscribe(open_subs, url, consumer="c", since=0)
    assert seqs(sub, 3) == [1, 2, 3]
    with pytest.raises(feed.FeedError, match="not delivered"):
        sub.ack(4)
    sub.ack(3)
    sub.ack(1)  # behind the position: nothing moves back
    sub.close()
    assert remaining(subscribe(open_subs, url, consumer="c")) == [4]


def test_read_only_reads_a_consumer_without_moving_it(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    write(url, "a", "b")
    first = subscribe(open_subs, url, consumer="c", since=0)
    first.ack(next(first))
    first.close()
    peek = subscribe(open_subs, url, consumer="c", read_only=True)
    for change in peek:
        peek.ack(change)
    peek.close()
    assert remaining(subscribe(open_subs, url, consumer="c")) == [2]


def test_one_process_per_consumer_name(
    url: str, open_subs: list[feed.Subscription], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "_BUSY_WAIT", 0.3)
    subscribe(open_subs, url, consumer="solo")
    with pytest.raises(feed.ConsumerBusy):
        subscribe(open_subs, url, consumer="solo")


def test_a_large_transaction_is_read_in_pages_and_resumed_inside(
    database_url: str, open_subs: list[feed.Subscription]
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO segql.events (user_id, name) "
            "SELECT 'u' || lpad(i::text, 4, '0'), 'hit' FROM generate_series(1, 250) i"
        )
    with psycopg.connect(database_url) as conn:
        deploy(conn, parse_text(SEGMENTS))  # the backfill: 250 enters in one transaction
    write(database_url, "u0001", "x")
    sub = subscribe(open_subs, database_url, consumer="c", since=0, page_size=40)
    first = [next(sub) for _ in range(95)]
    assert {c.cause for c in first} == {"deploy"}
    sub.ack(first[-1])
    sub.close()
    rest = remaining(subscribe(open_subs, database_url, consumer="c", page_size=40))
    assert [c.seq for c in first] + rest == list(range(1, 253))


def test_a_notification_wakes_the_subscriber(url: str, open_subs: list[feed.Subscription]) -> None:
    sub = subscribe(open_subs, url, poll_interval=30, timeout=20)
    timer = threading.Timer(0.3, write, [url, "a"])
    timer.start()
    started = time.monotonic()
    assert next(sub).user_id == "a"
    timer.join()
    assert time.monotonic() - started < 5  # woken by NOTIFY, not by the 30 s poll


def test_the_stop_flag_ends_a_waiting_subscription(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    with StopEvent() as stop:
        sub = subscribe(open_subs, url, poll_interval=30, timeout=None, stop=stop)
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        assert remaining(sub) == []
        assert time.monotonic() - started < 5


def test_reconnects_when_its_connections_are_killed(
    url: str, open_subs: list[feed.Subscription]
) -> None:
    sub = subscribe(open_subs, url, consumer="c", since=0, timeout=10)
    write(url, "a")
    assert next(sub).user_id == "a"
    with psycopg.connect(url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND application_name LIKE 'segql %%'"
        ).fetchone()
    assert killed == (2,)
    write(url, "b")
    change = next(sub)
    assert change.user_id == "b"
    sub.ack(change)  # on the new connection
    write(url, "c")
    assert next(sub).user_id == "c"


def test_an_idle_consumer_moves_past_changes_of_other_segments(
    url: str, open_subs: list[feed.Subscription], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed, "_IDLE_SAVE_INTERVAL", 0.0)
    sub = subscribe(open_subs, url, segments=["vip"], consumer="idle", since=0)
    write(url, "a", "b")  # flip only
    assert remaining(sub) == []
    with psycopg.connect(url) as conn:
        (info,) = feed.consumers(conn)
        assert info.name == "idle" and info.pending == 0
        row = conn.execute(
            "SELECT bool_and(pg_visible_in_snapshot(c.xid, k.base)) "
            "FROM segql.changes c, segql.consumers k"
        ).fetchone()
    assert row == (True,)
