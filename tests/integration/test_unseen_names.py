"""compile and deploy warn about event names and traits the data has never seen."""

from __future__ import annotations

import psycopg

from segql import deploy, parse

TEXT = """
CREATE SEGMENT typo AS did('purchse');
CREATE SEGMENT cased AS did('Purchase');
CREATE SEGMENT unquoted AS plan = premium;
CREATE SEGMENT fine AS did('purchase') AND plan = 'premium' AND did('*');
"""


def test_never_seen_names_warn_with_a_suggestion(conn: psycopg.Connection) -> None:
    conn.execute("SELECT segql.track('u1', 'purchase')")
    conn.execute("""SELECT segql.identify('u1', '{"plan": "premium"}')""")
    conn.commit()
    statements = parse.parse_text(TEXT, "shop.sql")
    expected = [
        "shop.sql: segment 'typo': event 'purchse' never occurs in segql.events; "
        "did you mean 'purchase'?",
        "shop.sql: segment 'cased': event 'Purchase' never occurs in segql.events; "
        "did you mean 'purchase'?",
        "shop.sql: segment 'unquoted': trait 'premium' never occurs in segql.profiles; "
        "if 'premium' is a value, quote it: 'premium'",
    ]
    assert deploy.compile_sql(conn, statements).warnings == expected
    assert deploy.deploy(conn, statements).warnings == expected


def test_an_empty_database_warns_about_nothing(conn: psycopg.Connection) -> None:
    assert deploy.compile_sql(conn, parse.parse_text(TEXT, "shop.sql")).warnings == []
