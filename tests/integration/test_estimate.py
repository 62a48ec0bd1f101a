"""Reach before deploy: exact, read-only, and equal to the size a deploy gives at the same clock."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from segql import deploy, estimate, run, synth
from segql.diagnostics import DefinitionError
from segql.parse import parse_text
from segql.sqlfiles import resource_dir

END = datetime(2026, 3, 1, tzinfo=UTC)


def _shop(conn: psycopg.Connection) -> None:
    synth.copy_profiles(conn, synth.generate_profiles(300, seed=3, end=END))
    synth.copy_events(conn, synth.generate_events(6000, 300, 3, END - timedelta(days=30), END))
    run.clock_set(conn, END.isoformat())
    conn.commit()


def _examples(name: str) -> list:
    path = resource_dir("examples").joinpath(name)
    return parse_text(path.read_text(encoding="utf-8"), name)


def _objects(conn: psycopg.Connection) -> tuple:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_proc),"
        " (SELECT count(*) FROM segql.segments), (SELECT count(*) FROM segql.changes)"
    ).fetchone()
    conn.commit()
    return tuple(row or ())


def test_estimate_equals_size_after_deploy(conn: psycopg.Connection) -> None:
    _shop(conn)
    deploy.deploy(conn, _examples("lifecycle.sql"))
    conn.commit()
    shop = _examples("shop.sql")
    before = _objects(conn)
    results = estimate.estimate(conn, shop, sample=3)
    assert _objects(conn) == before  # nothing created, nothing logged

    deploy.deploy(conn, shop)
    conn.commit()
    sizes = {s.name: s.size for s in deploy.list_segments(conn)}
    assert [r.segment for r in results] == [
        "browsed_not_bought", "premium_new_york", "high_order_value", "carted_last_hour",
        "abandoned_cart", "broad_shoppers", "big_cart",
    ]  # fmt: skip
    assert any(r.size > 0 for r in results)
    for r in results:
        assert r.size == sizes[r.segment], r.segment
        members = {u for u, _ in deploy.members(conn, r.segment)}
        assert set(r.sample) <= members and len(r.sample) == min(3, r.size)
        for other in ("lapsed", "repeat_buyers", "new_signups"):
            theirs = {u for u, _ in deploy.members(conn, other)}
            assert r.overlap[other] == len(members & theirs), (r.segment, other)


def test_estimate_reads_deployed_segments_and_reports_errors(conn: psycopg.Connection) -> None:
    _shop(conn)
    deploy.deploy(conn, _examples("lifecycle.sql"))
    conn.commit()
    text = "CREATE SEGMENT lapsed_buyers AS in_segment('lapsed') AND did('purchase');"
    (result,) = estimate.estimate(conn, parse_text(text, "draft.sql"))
    lapsed = {u for u, _ in deploy.members(conn, "lapsed")}
    assert 0 < result.size <= len(lapsed) and result.overlap["lapsed"] == result.size
    conn.commit()

    with pytest.raises(DefinitionError) as bad:
        estimate.estimate(conn, parse_text("CREATE SEGMENT x AS\n  event_cnt('a') > 1;", "d.sql"))
    assert (bad.value.line, bad.value.col) == (2, 3)
    assert "d.sql:2:3: unknown function 'event_cnt'" in bad.value.message


def test_estimate_gives_up_at_the_timeout(conn: psycopg.Connection, database_url: str) -> None:
    locked, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with psycopg.connect(database_url) as other:
            other.execute("LOCK TABLE segql.events IN ACCESS EXCLUSIVE MODE")
            locked.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    try:
        assert locked.wait(10)
        statements = parse_text("CREATE SEGMENT any_view AS did('page_view');", "d.sql")
        with pytest.raises(estimate.EstimateError, match=r"longer than 0\.2 s"):
            estimate.estimate(conn, statements, timeout=0.2)
    finally:
        release.set()
        holder.join()
