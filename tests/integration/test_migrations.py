"""The schema migrations build is the schema the code expects, and it round-trips."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from segql import db, schema


@pytest.fixture
def empty_url(server_url: str) -> Iterator[str]:
    name = f"segql_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    yield db.with_database(server_url, name)
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _columns(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT table_schema || '.' || table_name, column_name
               FROM information_schema.columns
               WHERE table_schema IN ('segql', 'segments')"""
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def _objects(url: str) -> set[tuple[str, str]]:
    """Every relation and function in segql's schemas, to compare before/after a round trip."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """SELECT 'rel', c.oid::regclass::text FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname IN ('segql', 'segments')
               UNION ALL
               SELECT 'fn', p.oid::regprocedure::text FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname IN ('segql', 'segments')"""
        ).fetchall()
    return {(kind, name) for kind, name in rows}


def test_upgrade_yields_expected_schema(empty_url: str) -> None:
    schema.upgrade(empty_url)
    found = _columns(empty_url)
    missing = {
        table: sorted(set(columns) - found.get(table, set()))
        for table, columns in schema.EXPECTED_SCHEMA.items()
        if set(columns) - found.get(table, set())
    }
    assert missing == {}
    assert schema.current(empty_url) == ",".join(schema.heads())


def test_downgrade_to_base_then_upgrade_round_trips(empty_url: str) -> None:
    schema.upgrade(empty_url)
    at_head = _objects(empty_url)
    schema.downgrade(empty_url, "base")
    assert schema.current(empty_url) is None
    alembic_own = {("rel", "segql.alembic_version"), ("rel", "segql.alembic_version_pkc")}
    leftovers = _objects(empty_url) - alembic_own
    assert leftovers == set()
    schema.upgrade(empty_url)
    assert _objects(empty_url) == at_head


def test_ensure_schema_is_idempotent(empty_url: str) -> None:
    assert schema.ensure_schema(empty_url) is True
    assert schema.ensure_schema(empty_url) is False
    assert schema.is_current(empty_url)


def test_base_functions(database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE segql.clock SET pinned_at = '2030-01-02T03:04:05Z'")
        event_id = conn.execute("SELECT segql.track('u1', 'signup', '{\"plan\": \"pro\"}')")
        assert event_id.fetchone() is not None
        ts = conn.execute("SELECT ts FROM segql.events WHERE user_id = 'u1'").fetchone()
        assert ts is not None and ts[0].isoformat() == "2030-01-02T03:04:05+00:00"
        conn.execute("SELECT segql.identify('u1', '{\"a\": 1, \"b\": 1}')")
        conn.execute("SELECT segql.identify('u1', '{\"b\": 2}')")
        traits = conn.execute("SELECT traits FROM segql.profiles WHERE user_id = 'u1'").fetchone()
        assert traits == ({"a": 1, "b": 2},)
        conn.execute("SET LOCAL segql.now = '2031-01-01T00:00:00Z'")
        now = conn.execute("SELECT segql.now()").fetchone()
        assert now is not None and now[0].year == 2031


def test_roles_granted_read_before_0011_can_read_tier_moves(empty_url: str) -> None:
    schema.upgrade(empty_url, "0010")
    role = f"reader_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("GRANT SELECT ON segql.changes TO {}").format(sql.Identifier(role)))
    try:
        schema.upgrade(empty_url)
        with psycopg.connect(empty_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT has_function_privilege(%s, "
                "'segql.tier_move(text, text, xid8, timestamptz, text)', 'EXECUTE'), "
                "has_table_privilege(%s, 'segql.rfm_cutpoints', 'SELECT')",
                [role, role],
            ).fetchone()
            assert row == (True, True)
    finally:
        with psycopg.connect(empty_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
