"""show and rollback: a segment's versions, and deploying an earlier one again."""

from __future__ import annotations

import psycopg
import pytest

from segql import catalog, deploy, parse

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
