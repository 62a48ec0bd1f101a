"""RFM scores: cutpoints at deploy and at `segql refresh`, scores moving with events and time."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from segql import deploy, rfm, run, worker
from segql.cli import app
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)

SEGMENTS = """
CREATE SEGMENT recent_buyers AS rfm_recency('buy') >= 4;
CREATE SEGMENT frequent AS rfm_frequency('buy') = 5;
CREATE SEGMENT big_spenders AS rfm_monetary('buy', 'amount', within => '30 days') >= 4;
CREATE SEGMENT unscored AS did('view') AND rfm_recency('buy') IS NULL;
"""


def _buy(conn: psycopg.Connection, user: str, at: datetime, amount: int = 10) -> None:
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, 'buy', %s, %s)",
        [user, at, json.dumps({"amount": amount})],
    )


def _members(conn: psycopg.Connection, name: str) -> set[str]:
    return {u for u, _ in deploy.members(conn, name)}


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    run.clock_set(conn, T0)
    # Ten buyers: u0 bought once, 10 days ago ... u9 ten times, the last one today.
    for i in range(10):
        for k in range(i + 1):
            _buy(conn, f"u{i}", T0 - (10 - i) * DAY + k * timedelta(minutes=1), 10 * (i + 1))
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES ('v', 'view', %s)", [T0])
    conn.commit()
    deploy.deploy(conn, parse_text(SEGMENTS))
    return conn


def test_deploy_computes_cutpoints_at_the_clock(shop: psycopg.Connection) -> None:
    rows = {r.score: r for r in rfm.cutpoints(shop)}
    assert sorted(rows) == [
        "rfm_frequency('buy')",
        "rfm_monetary('buy', 'amount', within => '30 days')",
        "rfm_recency('buy')",
    ]
    freq = rows["rfm_frequency('buy')"]
    # percentile_disc over counts 1..10: the 2nd, 4th, 6th and 8th values.
    assert (freq.cutpoints, freq.population, freq.computed_at) == (["2", "4", "6", "8"], 10, T0)
    assert rows["rfm_recency('buy')"].population == 10
    # Frequency 5 beats all four cutpoints: counts 9 and 10.
    assert _members(shop, "frequent") == {"u8", "u9"}
    assert _members(shop, "unscored") == {"v"}
    assert _members(shop, "frequent") == deploy.full_members(shop, "frequent")


def test_an_order_moves_the_score_in_its_own_transaction(shop: psycopg.Connection) -> None:
    for _ in range(8):
        _buy(shop, "u0", T0)
    shop.commit()
    assert "u0" in _members(shop, "frequent")
    row = shop.execute(
        "SELECT kind, cause, at FROM segql.changes WHERE segment = 'frequent' AND user_id = 'u0'"
    ).fetchall()
    assert row == [("enter", "event", T0)]


def test_recency_falls_at_the_exact_crossing(shop: psycopg.Connection) -> None:
    durations = shop.execute(
        "SELECT durations FROM segql.rfm_cutpoints WHERE score = 'rfm_recency(''buy'')'"
    ).fetchone()[0]  # type: ignore[index]
    members = _members(shop, "recent_buyers")
    assert members == deploy.full_members(shop, "recent_buyers")
    run.clock_set(shop, T0 + 5 * DAY)
    run.tick(shop)
    assert _members(shop, "recent_buyers") == set()
    exits = shop.execute(
        "SELECT user_id, at FROM segql.changes WHERE segment = 'recent_buyers' AND kind = 'exit' "
        "ORDER BY user_id"
    ).fetchall()
    assert {u for u, _ in exits} == members
    last = dict(
        shop.execute(
            "SELECT user_id, max(ts) FROM segql.events WHERE name = 'buy' GROUP BY 1"
        ).fetchall()
    )
    # Score 4 beats three of the four cutpoints: the user's duration is strictly shorter than
    # the second, and the score falls to 3 at the instant the duration reaches it.
    assert [u for u, _ in exits] == ["u7", "u8", "u9"]
    for user, at in exits:
        assert at == last[user] + durations[1]


def test_ticks_and_clock_moves_never_refresh(shop: psycopg.Connection) -> None:
    before = rfm.cutpoints(shop)
    run.clock_set(shop, T0 + 40 * DAY)
    run.tick(shop)
    run.clock_set(shop, T0 + 20 * DAY)
    assert rfm.cutpoints(shop) == before


def test_refresh_recomputes_and_logs_with_cause_refresh(shop: psycopg.Connection) -> None:
    for n in range(1, 7):
        for _ in range(10 + n):
            _buy(shop, f"n{n}", T0)
    shop.commit()
    assert _members(shop, "frequent") == {"u8", "u9", "n1", "n2", "n3", "n4", "n5", "n6"}
    result = rfm.refresh(shop)
    assert (result.scores, result.users) == (3, 17)
    # Counts 1..16: the fourth cutpoint is the 13th value, and 5 means strictly more.
    assert rfm.cutpoints(shop)[0].cutpoints == ["4", "7", "10", "13"]
    assert _members(shop, "frequent") == {"n4", "n5", "n6"}
    causes = shop.execute(
        "SELECT DISTINCT cause FROM segql.changes WHERE segment = 'frequent' AND kind = 'exit'"
    ).fetchall()
    assert causes == [("refresh",)]
    assert result.exits >= 2
    for name in ("recent_buyers", "frequent", "big_spenders", "unscored"):
        assert _members(shop, name) == deploy.full_members(shop, name)


def test_cli_refresh_and_rfm(shop: psycopg.Connection, database_url: str) -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["--database-url", database_url, "rfm"])
    assert shown.exit_code == 0, shown.output
    assert "rfm_frequency('buy')\n  cutpoints:  2, 4, 6, 8\n" in shown.output
    assert f"10 user(s), computed at {T0.isoformat()}" in shown.output
    done = runner.invoke(app, ["--database-url", database_url, "refresh"])
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Refreshed 3 RFM score(s) and re-evaluated 11 user(s)")
    listed = runner.invoke(app, ["--database-url", database_url, "rfm", "--json"])
    assert json.loads(listed.output)[0]["cutpoints"] == ["2", "4", "6", "8"]


def _run_worker(url: str, every: float, passes: int) -> None:
    """The worker on a thread for `passes` passes of at most 0.2 s each."""
    stop = worker.StopEvent()
    seen: list[int] = []

    def on_tick(n: int) -> None:
        seen.append(n)
        if len(seen) >= passes:
            stop.set()

    thread = threading.Thread(
        target=worker.run_worker,
        args=(url,),
        kwargs={
            "stop_event": stop,
            "on_tick": on_tick,
            "max_sleep": 0.2,
            "refresh_every": every,
            "campaigns": False,
        },
        daemon=True,
    )
    thread.start()
    thread.join(30)
    stop.close()
    assert not thread.is_alive()


def test_the_worker_refreshes_on_its_schedule(shop: psycopg.Connection, database_url: str) -> None:
    for _ in range(20):
        _buy(shop, "u0", T0)
    shop.commit()
    assert "u0" in _members(shop, "frequent")
    # A schedule longer than the test: nothing is refreshed.
    _run_worker(database_url, 3600.0, 3)
    assert rfm.cutpoints(shop)[0].cutpoints == ["2", "4", "6", "8"]
    shop.rollback()
    time.sleep(0.5)
    # Due: the cutpoints move and u0's frequency is scored against them.
    _run_worker(database_url, 0.5, 3)
    assert rfm.cutpoints(shop)[0].cutpoints == ["3", "5", "7", "9"]
    causes = shop.execute("SELECT DISTINCT cause FROM segql.changes WHERE cause = 'refresh'")
    assert causes.fetchall() == [("refresh",)]


def test_why_shows_the_score_its_value_and_the_cutpoints(
    shop: psycopg.Connection, database_url: str
) -> None:
    out = CliRunner().invoke(app, ["--database-url", database_url, "why", "frequent", "u8"])
    assert out.exit_code == 0, out.output
    assert "[yes] rfm_frequency('buy') = 5" in out.output
    assert "        rfm_frequency('buy') = 5\n" in out.output
    assert "        event_count('buy') = 9\n" in out.output
    assert "        cutpoint 4 of rfm_frequency('buy') = 8\n" in out.output
    recency = CliRunner().invoke(
        app, ["--database-url", database_url, "why", "recent_buyers", "u9"]
    )
    assert "        now() - last_event_at('buy') = " in recency.output
    assert "cutpoint 1 of rfm_recency('buy') = 1 day, 23:52:00" in recency.output
    assert "Next timer: 2026-03-02T00:01:00+00:00" in recency.output


def test_verify_and_rebuild_agree_with_the_scores(shop: psycopg.Connection) -> None:
    from segql import rebuild, verify

    run.clock_set(shop, T0 + 2 * DAY)
    run.tick(shop)
    shop.execute("DELETE FROM segql.events WHERE user_id = 'u9' AND ts > %s", [T0 - DAY])
    shop.execute("UPDATE segql.events SET ts = ts + interval '3 days' WHERE user_id = 'u1'")
    shop.commit()
    report = verify.verify(shop)
    assert report.clean, report
    result = rebuild.rebuild(shop)
    assert (result.enters, result.exits) == (0, 0)
    # Removing the cutpoints by hand makes every buyer score 1: verify sees the difference
    # in the scores' segments and a repair settles them.
    shop.execute("UPDATE segql.rfm_cutpoints SET cuts = NULL, durations = NULL")
    shop.commit()
    assert not verify.verify(shop).clean
    assert verify.verify(shop, repair=True).clean
