"""Synthetic data loaded into a real database: counts, upserts and COPY's escaping."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from segql import synth

Cli = Callable[..., subprocess.CompletedProcess[str]]
END = datetime(2025, 6, 1, tzinfo=UTC)


def test_generate_into_db_loads_exact_counts(segql_cli: Cli, database_url: str) -> None:
    result = segql_cli(
        "generate", "--events", "3000", "--users", "150", "--seed", "9", "--into-db",
        "--end", "2025-06-01T00:00:00Z", "--days", "7", "--batch-size", "700",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Generated 3,000 events and 150 profiles" in result.stdout
    with psycopg.connect(database_url) as conn:
        events, users, first, last = conn.execute(
            "SELECT count(*), count(DISTINCT user_id), min(ts), max(ts) FROM segql.events"
        ).fetchone() or (0, 0, None, None)
        profiles = conn.execute("SELECT count(*) FROM segql.profiles").fetchone()
    assert events == 3000
    assert 1 < users <= 150
    assert profiles == (150,)
    assert END - timedelta(days=7) <= first <= last <= END


def test_generate_needs_a_destination(segql_cli: Cli) -> None:
    result = segql_cli("generate", "--events", "10")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: choose exactly one of --out DIR or --into-db")


def test_profiles_upsert_replaces_traits(conn: psycopg.Connection) -> None:
    conn.execute("""INSERT INTO segql.profiles VALUES ('u000001', '{"stale": true}')""")
    conn.commit()
    loaded = synth.copy_profiles(conn, synth.generate_profiles(40, 1, END), batch_size=15)
    again = synth.copy_profiles(conn, synth.generate_profiles(40, 1, END))
    assert loaded == again == 40
    rows = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE traits ? 'stale') FROM segql.profiles"
    )
    assert rows.fetchone() == (40, 0)


def test_copy_events_round_trips_awkward_values(conn: psycopg.Connection) -> None:
    awkward = [
        {"user_id": "tab\there", "name": "back\\slash", "ts": "2025-01-01T00:00:00Z", "props": {}},
        {"user_id": "ü", "name": "line\nbreak", "ts": "2025-01-01T00:00:01+02:00",
         "props": {"q": 'a "quoted"\tvalue\\', "n": 1.5}},
    ]  # fmt: skip
    assert synth.copy_events(conn, awkward, batch_size=1) == 2
    rows = conn.execute("SELECT user_id, name, props FROM segql.events ORDER BY id").fetchall()
    assert rows == [(e["user_id"], e["name"], e["props"]) for e in awkward]


def test_each_copy_batch_is_its_own_transaction(conn: psycopg.Connection) -> None:
    rows = synth.event_rows(2_500, 30, 2, END - timedelta(days=1), END)
    seen: list[int] = []
    synth.copy_event_rows(conn, rows, batch_size=1_000, on_batch=seen.append)
    assert seen == [1_000, 1_000, 500]
    xmins = conn.execute("SELECT count(DISTINCT xmin::text) FROM segql.events").fetchone()
    assert xmins == (3,)


def test_generate_never_overwrites_without_force(segql_cli: Cli, tmp_path: Path) -> None:
    args = ("generate", "--events", "20", "--out", str(tmp_path))
    assert segql_cli(*args).returncode == 0
    again = segql_cli(*args)
    assert again.returncode == 1
    assert "already holds events.jsonl and profiles.jsonl; pass --force" in again.stderr
    assert segql_cli(*args, "--force").returncode == 0
