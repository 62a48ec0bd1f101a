"""compile is a dry run: it shows the numbers deploy would take and uses none of them."""

from __future__ import annotations

import psycopg

from segql import deploy, parse

TEXT = "CREATE SEGMENT a AS did('x');\nCREATE SEGMENT b AS event_count('y') > 2;"


def test_compile_uses_up_no_deploy_or_feature_number(conn: psycopg.Connection) -> None:
    statements = parse.parse_text(TEXT, "s.sql")
    deploy.deploy(conn, parse.parse_text("CREATE SEGMENT z AS did('z');", "z.sql"))
    first = deploy.compile_sql(conn, statements)
    second = deploy.compile_sql(conn, statements)
    assert first.deploy_id == second.deploy_id == 2
    assert first.script == second.script
    done = deploy.deploy(conn, statements)
    assert done.deploy_id == 2
    conn.commit()
    assert done.script == first.script
