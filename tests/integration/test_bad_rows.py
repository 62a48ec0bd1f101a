"""Bad rows on the SQL path: each is refused with an error naming the column (and, in the detail,
the row), or accepted with documented semantics. Never a crash inside a generated function, never
a membership the full query disagrees with."""

from __future__ import annotations

import json

import psycopg
import pytest

from segql import verify
from segql.deploy import deploy
from segql.parse import parse_text

ODD_EVENT = 'it\'s "done" ✓'
SEGMENTS = f"""
CREATE SEGMENT spenders AS event_sum('purchase', 'amount') >= 100;
CREATE SEGMENT pricey AS event_avg('purchase', 'amount') > 60;
CREATE SEGMENT busy AS event_count('view') >= 10000;
CREATE SEGMENT odd AS did('{ODD_EVENT.replace("'", "''")}');
CREATE SEGMENT pro AS plan = 'pro';
"""


@pytest.fixture
def db(conn: psycopg.Connection) -> psycopg.Connection:
    deploy(conn, parse_text(SEGMENTS))
    conn.commit()
    return conn


def members(conn: psycopg.Connection, segment: str) -> set[str]:
    rows = conn.execute("SELECT user_id FROM segql.members WHERE segment = %s", [segment])
    return {r[0] for r in rows}


def assert_exact(conn: psycopg.Connection) -> None:
    conn.commit()
    report = verify.verify(conn)
    assert report.clean, report


def refused(
    conn: psycopg.Connection, error: type[psycopg.Error], says: str, statement: str, *args: object
) -> psycopg.Error:
    with pytest.raises(error) as caught:
        conn.execute(statement, list(args))
    conn.rollback()
    assert says in str(caught.value), str(caught.value)
    return caught.value


def test_a_null_user_id_is_refused_naming_the_column(db: psycopg.Connection) -> None:
    insert = "INSERT INTO segql.events (user_id, name) VALUES (%s, 'view')"
    refused(db, psycopg.errors.NotNullViolation, 'column "user_id"', insert, None)
    refused(
        db, psycopg.errors.NotNullViolation, 'column "user_id"', "SELECT segql.track(NULL, 'view')"
    )


def test_an_empty_user_id_is_refused(db: psycopg.Connection) -> None:
    insert = "INSERT INTO segql.events (user_id, name) VALUES (%s, 'view')"
    refused(db, psycopg.errors.CheckViolation, "events.user_id must not be empty", insert, "")
    refused(
        db,
        psycopg.errors.CheckViolation,
        "profiles.user_id must not be empty",
        "SELECT segql.identify('', '{}')",
    )
    refused(
        db,
        psycopg.errors.CheckViolation,
        "events.name must not be empty",
        "SELECT segql.track('u', '')",
    )
    assert_exact(db)


def test_a_null_ts_is_refused_and_track_defaults_it(db: psycopg.Connection) -> None:
    refused(
        db,
        psycopg.errors.NotNullViolation,
        'column "ts"',
        "INSERT INTO segql.events (user_id, name, ts) VALUES ('u', 'view', NULL)",
    )
    db.execute("SELECT segql.track('u', 'purchase', '{\"amount\": 100}', NULL)")
    assert members(db, "spenders") == {"u"}
    assert_exact(db)


@pytest.mark.parametrize("ts", ["infinity", "-infinity", "20000-01-01", "0001-01-01 BC"])
def test_an_infinite_or_far_ts_is_refused_with_its_value(db: psycopg.Connection, ts: str) -> None:
    error = refused(
        db,
        psycopg.errors.CheckViolation,
        "events.ts must be finite, in years 1 to 9999",
        "INSERT INTO segql.events (user_id, name, ts) VALUES ('u', 'view', %s)",
        ts,
    )
    assert "Failing row contains" in (error.diag.message_detail or "")
    assert_exact(db)


@pytest.mark.parametrize("props", ["[1, 2]", '"amount"', "null", "42"])
def test_props_that_are_not_an_object_are_refused(db: psycopg.Connection, props: str) -> None:
    refused(
        db,
        psycopg.errors.CheckViolation,
        "events.props must be a JSON object",
        "INSERT INTO segql.events (user_id, name, props) VALUES ('u', 'purchase', %s::jsonb)",
        props,
    )
    refused(
        db,
        psycopg.errors.CheckViolation,
        "profiles.traits must be a JSON object",
        "INSERT INTO segql.profiles (user_id, traits) VALUES ('u', %s::jsonb)",
        props,
    )
    assert_exact(db)


def test_a_wrong_typed_prop_counts_as_null(db: psycopg.Connection) -> None:
    amounts = [80, "abc", "20", True, None, {"x": 1}]
    for amount in amounts:
        db.execute("SELECT segql.track('u', 'purchase', %s)", [json.dumps({"amount": amount})])
    # Numbers and numeric strings count: 80 + 20 = 100 over two values (avg 50).
    assert members(db, "spenders") == {"u"}
    assert members(db, "pricey") == set()
    db.execute("SELECT segql.track('u', 'purchase', '{\"amount\": \"1e400\"}')")
    db.execute("SELECT segql.identify('u', '{\"plan\": [\"pro\"]}')")
    assert members(db, "pro") == set()
    assert_exact(db)


def test_very_large_props_are_accepted(db: psycopg.Connection) -> None:
    blob = "x" * 1_000_000
    db.execute(
        "SELECT segql.track('u', 'purchase', %s)", [json.dumps({"amount": 150, "blob": blob})]
    )
    db.execute("SELECT segql.identify('u', %s)", [json.dumps({"plan": "pro", "bio": blob})])
    assert members(db, "spenders") == {"u"} and members(db, "pro") == {"u"}
    assert_exact(db)


def test_ten_thousand_events_of_one_user_in_one_statement(db: psycopg.Connection) -> None:
    db.execute(
        "INSERT INTO segql.events (user_id, name, ts) "
        "SELECT 'u', 'view', segql.now() - i * interval '1 second' FROM generate_series(1, 10000) i"
    )
    assert members(db, "busy") == {"u"}
    count = db.execute("SELECT count(*) FROM segql.changes WHERE segment = 'busy'").fetchone()
    assert count == (1,)
    assert_exact(db)


def test_names_with_quotes_and_unicode(db: psycopg.Connection) -> None:
    user = 'o\'brien "q" \\ ü 😀 ;--'
    db.execute("SELECT segql.track(%s, %s)", [user, ODD_EVENT])
    db.execute("SELECT segql.identify(%s, %s)", [user, json.dumps({"plan": "pro"})])
    assert members(db, "odd") == {user} and members(db, "pro") == {user}
    assert db.execute("SELECT user_id FROM segments.odd").fetchall() == [(user,)]
    assert_exact(db)
