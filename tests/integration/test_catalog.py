"""show and rollback: a segment's versions, and deploying an earlier one again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from segql import catalog, deploy, parse, run, users

V1 = "CREATE SEGMENT vip COMMENT 'big spenders' AS event_sum('purchase', 'amount') > 100;"
V2 = "CREATE SEGMENT vip COMMENT 'big spenders' AS event_sum('purchase', 'amount') > 50;"
READER = "CREATE SEGMENT vip_app AS in_segment('vip') AND did('app_open');"


def test_show_and_rollback(conn: psycopg.Connection) -> None:
    deploy.deploy(conn, parse.parse_text(V1 + READER, "a.sql"))
    conn.execute("""SELECT segql.track('a', 'purchase', '{"amount": 70}')""")
    conn.commit()
    deploy.deploy(conn, parse.parse_text(V2, "b.sql"))
    conn.commit()
    shown = catalog.show(conn, "vip")
    assert (shown.version, shown.size, shown.comment) == (2, 1, "big spenders")
    assert shown.read_by == ["vip_app"]
    assert [v.version for v in shown.versions] == [1, 2]
    conn.rollback()

    assert catalog.rollback(conn, "vip") == (1, 3)
    assert deploy.members(conn, "vip") == []
    rows = conn.execute(
        "SELECT user_id, kind, cause, version FROM segql.changes WHERE segment = 'vip' ORDER BY seq"
    ).fetchall()
    assert rows == [("a", "enter", "redeploy", 2), ("a", "exit", "redeploy", 3)]
    conn.rollback()
    assert catalog.rollback(conn, "vip", to=2) == (2, 4)
    with pytest.raises(deploy.DeployError, match="has no version 9; its versions are 1, 2, 3, 4"):
        catalog.rollback(conn, "vip", to=9)
    with pytest.raises(deploy.DeployError, match="is the definition deployed now"):
        catalog.rollback(conn, "vip", to=2)


def test_a_users_page(conn: psycopg.Connection) -> None:
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    run.clock_set(conn, t0)
    deploy.deploy(
        conn, parse.parse_text("CREATE SEGMENT recent AS did('buy', within => '1 hour');")
    )
    conn.execute("""SELECT segql.identify('u1', '{"plan": "pro"}')""")
    conn.execute("""SELECT segql.track('u1', 'buy', '{"amount": 5}')""")
    conn.execute("SELECT segql.track('u1', 'view', '{}', %s)", [t0 - timedelta(days=1)])
    conn.commit()
    page = users.page(conn, "u1")
    assert page.segments == [("recent", t0, 1)]
    assert page.traits == {"plan": "pro"} and page.events == 2
    assert [(name, ts) for ts, name, _ in page.recent] == [
        ("buy", t0),
        ("view", t0 - timedelta(days=1)),
    ]
    assert page.timers == [(t0 + timedelta(hours=1), ["recent"])]
    assert not users.page(conn, "nobody").known
