"""Tricky text the compiler accepts reaches the database only as data.

Quotes, backslashes, dollar quotes (the generated functions' bodies are $segql$-quoted), comment
markers, non-ASCII and very long strings go into literals, prop keys, trait names and comments.
Deploy must succeed, membership must match the literal byte for byte, and the catalogs must
hold exactly the objects a deploy creates: nothing dropped, nothing extra.

Values in the data are hostile too: a profile with an extreme timestamp or number is read, or
read as NULL, but never makes the writer's transaction fail.
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest

from segql import deploy
from segql.parse import parse_text

TRICKY = {
    "quote": "it's",
    "quote and statement": "x'); DROP TABLE segql.events; --",
    "backslash": "a\\b",
    "trailing backslash": "a\\",
    "backslash quote": "\\'; DROP TABLE segql.profiles; --",
    "dollar quotes": "$$; DROP TABLE segql.events; $$",
    "segql dollar quotes": "$segql$; DROP TABLE segql.events; $segql$",
    "octal escape lookalike": "\\044\\x41",
    "newline and tab": "line\nbreak\tand tab",
    "comment markers": "/* -- */ */",
    "unicode": "na\u00efve \u2603 \U0001d518 \u00fc",
    "percent and underscore": "100%_off",
    "long": "y" * 10_000,
}


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_ident(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def catalog(conn: psycopg.Connection) -> set[tuple[str, str, str]]:
    """Every relation and function in the schemas a deploy touches, and in public."""
    rows = conn.execute(
        """SELECT n.nspname, c.relname, c.relkind::text FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname IN ('segql', 'segments', 'public')
           UNION ALL
           SELECT n.nspname, p.proname, 'function' FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname IN ('segql', 'segments', 'public')"""
    ).fetchall()
    return {(r[0], r[1], r[2]) for r in rows}


def expected_new_object(obj: tuple[str, str, str], segments: set[str]) -> bool:
    """What a deploy may add: a view per segment, a function per segment, the deploy's program."""
    schema, name, kind = obj
    if schema == "segments" and kind == "v":
        return name in segments
    if schema == "segql" and kind == "function":
        match = re.fullmatch(r"s_(.+)_v1", name)
        return (match is not None and match.group(1) in segments) or bool(re.match(r"p\d+_", name))
    return False


def add_user(
    conn: psycopg.Connection,
    user: str,
    traits: dict[str, Any],
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    conn.execute(
        "INSERT INTO segql.profiles (user_id, traits) VALUES (%s, %s)", [user, json.dumps(traits)]
    )
    for name, props in events:
        conn.execute(
            "INSERT INTO segql.events (user_id, name, props) VALUES (%s, %s, %s)",
            [user, name, json.dumps(props)],
        )
    conn.commit()


@pytest.mark.parametrize("value", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_literals_deploy_and_match_exactly(conn: psycopg.Connection, value: str) -> None:
    text = (
        f"CREATE SEGMENT tricky COMMENT {sql_string(value)}\n"
        f"AS plan = {sql_string(value)}\n"
        f"AND {sql_ident(value)} = {sql_string(value)}\n"
        f"AND event_sum({sql_string(value)}, {sql_string(value)}) > 1\n"
        f"AND did('page_view') FILTER (WHERE {sql_ident(value)} = {sql_string(value)});"
    )
    before = catalog(conn)
    tables_before = {o for o in before if o[2] == "r"}
    assert {("segql", "events", "r"), ("segql", "profiles", "r")} <= tables_before
    deploy.deploy(conn, parse_text(text, "tricky.sql"))
    conn.commit()

    matching = {"plan": value, value: value}
    purchase = (value, {value: 2})
    page_view = ("page_view", {value: value})
    add_user(conn, "hit", matching, [purchase, page_view])
    add_user(conn, "other_plan", {"plan": value + "!", value: value}, [purchase, page_view])
    add_user(conn, "other_trait", {"plan": value, value: value[:-1]}, [purchase, page_view])
    add_user(conn, "small_sum", matching, [(value, {value: 1}), page_view])
    add_user(conn, "other_event", matching, [(value + " ", {value: 2}), page_view])
    add_user(conn, "other_prop", matching, [purchase, ("page_view", {value: value.upper() + "!"})])
    add_user(conn, "wildcard", {"plan": "%", value: "%"}, [purchase, ("page_view", {value: "%"})])

    assert [u for u, _ in deploy.members(conn, "tricky")] == ["hit"]
    assert deploy.full_members(conn, "tricky") == {"hit"}

    # The text went into the catalog as data, whole.
    row = conn.execute(
        "SELECT comment, definition, obj_description('segments.tricky'::regclass) "
        "FROM segql.segments WHERE name = 'tricky'"
    ).fetchone()
    assert row == (value, text.rstrip(";"), value)

    after = catalog(conn)
    assert tables_before <= after, "a table was dropped"
    assert {o for o in after - before if not expected_new_object(o, {"tricky"})} == set()
    assert {o for o in before - after if not re.match(r"p\d+_", o[1])} == set()
    assert conn.execute("SELECT count(*) FROM segql.events").fetchone() == (14,)


def test_keyword_segment_names_deploy_as_quoted_identifiers(conn: psycopg.Connection) -> None:
    # Quoted names are refused; keywords Postgres reserves are fine unquoted in segql.
    text = """
    CREATE SEGMENT user COMMENT 'a keyword' AS plan = 'pro';
    CREATE SEGMENT order AS in_segment('user') AND did('purchase');
    CREATE SEGMENT null AS NOT in_segment('order');
    """
    before = catalog(conn)
    deploy.deploy(conn, parse_text(text, "keywords.sql"))
    conn.commit()
    add_user(conn, "buyer", {"plan": "pro"}, [("purchase", {"amount": 3})])
    add_user(conn, "viewer", {"plan": "pro"}, [])
    for name, expected in (
        ("user", {"buyer", "viewer"}),
        ("order", {"buyer"}),
        ("null", {"viewer"}),
    ):
        assert {u for u, _ in deploy.members(conn, name)} == expected
        assert deploy.full_members(conn, name) == expected
    rows = conn.execute('SELECT user_id FROM segments."order"').fetchall()
    assert rows == [("buyer",)]
    after = catalog(conn)
    assert {
        o for o in after - before if not expected_new_object(o, {"user", "order", "null"})
    } == set()


# -- values in the data: a profile never makes its writer fail ---------------------------------

# (condition, traits, the membership that is right when it is not a matter of taste)
HOSTILE_TRAITS = [
    pytest.param(
        "signed_up_at < now() - interval '1 day'",
        {"signed_up_at": "infinity"},
        None,
        id="infinity",
    ),
    pytest.param(
        "signed_up_at < now() - interval '1 day'",
        {"signed_up_at": "-infinity"},
        None,
        id="minus infinity",
    ),
    pytest.param(
        "'2026-01-01'::timestamptz < signed_up_at + interval '1 day' * score",
        {"signed_up_at": "2026-01-01", "score": 1e20},
        None,
        id="interval overflow",
    ),
    # Read as seconds, 1e16 is beyond an interval's range, so it is unreadable (NULL) and the
    # user is not a member. PostgreSQL 15 wraps it around to a negative interval ("less than an
    # hour"); 17 and later raise.
    pytest.param(
        "session_length::interval < interval '1 hour'",
        {"session_length": 1e16},
        set(),
        id="interval out of range",
    ),
    # Timestamps are read for years 1 to 9999 only: beyond, interval arithmetic could leave
    # the timestamp range inside the writer's trigger.
    pytest.param(
        "signed_up_at > now() - interval '1 day'",
        {"signed_up_at": "294000-01-01"},
        set(),
        id="year 294000",
    ),
    pytest.param("score * 2 > 1", {"score": "9e999"}, {"u"}, id="huge number"),
]


@pytest.mark.parametrize(("condition", "traits", "expected"), HOSTILE_TRAITS)
def test_extreme_trait_values_do_not_fail_the_writer(
    conn: psycopg.Connection, condition: str, traits: dict[str, Any], expected: set[str] | None
) -> None:
    deploy.deploy(conn, parse_text(f"CREATE SEGMENT a AS {condition};"))
    conn.commit()
    add_user(conn, "u", traits, [])
    members = {u for u, _ in deploy.members(conn, "a")}
    assert members == deploy.full_members(conn, "a")
    if expected is not None:
        assert members == expected


@pytest.mark.parametrize("word", ["now", "today", "tomorrow", "yesterday"])
def test_relative_timestamp_words_are_not_timestamps(conn: psycopg.Connection, word: str) -> None:
    deploy.deploy(conn, parse_text("CREATE SEGMENT unknown AS signed_up_at::timestamptz IS NULL;"))
    conn.commit()
    add_user(conn, "u", {"signed_up_at": word}, [])
    assert {u for u, _ in deploy.members(conn, "unknown")} == {"u"}
