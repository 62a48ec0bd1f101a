"""The demo's engine on a real server: a fresh database each run, exact counts, and segments that
still equal their full-recompute queries after the live traffic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from segql import db, deploy, zones
from segql import demo as demo_api
from segql.errors import ConfigError
from segql.models.check import is_model
from segql.worker import StopEvent


@pytest.fixture
def demo_name(server_url: str) -> Iterator[str]:
    name = f"segql_demo_test_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _options(name: str, **changes: object) -> demo_api.Options:
    base: dict[str, object] = {
        "users": 300,
        "history_events": 3000,
        "rate": 100.0,
        "active_window": 2,
        "database": name,
    }
    base.update(changes)
    return demo_api.Options(**base)  # type: ignore[arg-type]


def test_fast_clock_demo_counts_exactly_and_matches_the_full_queries(
    database_url: str, demo_name: str
) -> None:
    options = _options(demo_name, fast_clock=5.0)
    prepared = demo_api.prepare(database_url, options)
    assert demo_api.ACTIVE_SEGMENT in prepared.segments
    examples = [
        name
        for s in demo_api.example_statements()
        if not zones.is_zone(s) and not is_model(s)
        for name in deploy.names_of(s)  # a CREATE TIERS statement defines one per tier
    ]
    assert sorted(prepared.segments) == sorted([*examples, demo_api.ACTIVE_SEGMENT])

    with StopEvent() as stop, demo_api.Demo(prepared, options, stop) as demo:
        demo.run_until(2.0, lambda: None)
        summary = demo.finish()

    assert summary.events >= 150
    assert summary.profile_updates >= 1
    assert summary.timed_exits > 0
    assert summary.changes["enter", "event"] > 0
    assert summary.seen == summary.changes
    assert summary.pinned_at is not None
    with psycopg.connect(prepared.url) as conn:
        for name in prepared.segments:
            incremental = {user for user, _ in deploy.members(conn, name)}
            assert incremental == deploy.full_members(conn, name), name
            assert summary.sizes_end[name] == len(incremental)


def test_real_clock_demo_runs_the_worker_for_timed_exits(database_url: str, demo_name: str) -> None:
    options = _options(demo_name, active_window=1)
    prepared = demo_api.prepare(database_url, options)
    with StopEvent() as stop, demo_api.Demo(prepared, options, stop) as demo:
        demo.run_until(3.0, lambda: None)
        summary = demo.finish()
    assert summary.pinned_at is None
    assert summary.timed_exits > 0
    assert summary.seen == summary.changes


def test_reset_database_starts_clean_and_ends_old_sessions(
    database_url: str, demo_name: str
) -> None:
    url = demo_api.reset_database(database_url, demo_name)
    assert db.database_name(url) == demo_name
    with psycopg.connect(url, autocommit=True) as old:
        old.execute("CREATE TABLE leftover ()")
        # From the demo database itself too: the drop has to go through another database.
        again = demo_api.reset_database(url, demo_name)
        with pytest.raises(psycopg.OperationalError):
            old.execute("SELECT 1")
    with psycopg.connect(again) as conn:
        row = conn.execute("SELECT to_regclass('leftover') IS NULL").fetchone()
        assert row == (True,)


def test_options_refuse_a_name_that_could_be_a_real_database() -> None:
    with pytest.raises(ConfigError, match="must begin with 'segql_demo'"):
        demo_api.Options(database="shop")


def test_sparkline_scales_between_low_and_high_with_a_floor() -> None:
    assert demo_api.sparkline([]) == ""
    assert demo_api.sparkline([5, 5, 5]) == "▁▁▁"
    assert demo_api.sparkline([0, 35, 70]) == "▁▅█"
    # One member out of 67 is a small dip, not a fall from the top block to the bottom one.
    assert demo_api.sparkline([67, 66]) == "▂▁"
