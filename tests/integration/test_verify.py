"""verify finds every kind of drift between incremental state and the full query; repair fixes it
through the deployed program and logs each fix with cause 'repair'."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from segql import verify
from segql.deploy import deploy
from segql.parse import parse_text

SEGMENTS = """
CREATE SEGMENT carted AS did('add_to_cart', within => '1 hour');
CREATE SEGMENT big AS event_sum('purchase', 'amount') >= 100;
CREATE SEGMENT big_carted AS in_segment('big') AND in_segment('carted');
"""
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _load(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0])
    deploy(conn, parse_text(SEGMENTS))
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts, props) "
        "SELECT 'u' || (i %% 40), (ARRAY['add_to_cart', 'purchase'])[1 + i %% 2], "
        "%s::timestamptz - (i || ' minutes')::interval, jsonb_build_object('amount', i) "
        "FROM generate_series(1, 400) i",
        [T0],
    )
    conn.commit()


def _corrupt(conn: psycopg.Connection) -> None:
    conn.execute("DELETE FROM segql.members WHERE segment = 'big' AND user_id = 'u1'")
    conn.execute("INSERT INTO segql.members VALUES ('carted', 'nobody', now())")
    conn.execute(
        "UPDATE segql.timers SET due_at = due_at + interval '5 minutes' WHERE user_id = 'u2'"
    )
    conn.execute("INSERT INTO segql.timers VALUES ('gone', 'u4', %s)", [T0])
    conn.commit()


def test_a_clean_database_verifies_clean(conn: psycopg.Connection) -> None:
    _load(conn)
    report = verify.verify(conn)
    assert report.clean, report
    assert report.segments == ["big", "big_carted", "carted"]


def test_every_difference_is_reported(conn: psycopg.Connection) -> None:
    _load(conn)
    _corrupt(conn)
    report = verify.verify(conn)
    assert report.missing == [("big", "u1")]
    assert report.extra == [("carted", "nobody")]
    assert [t.user_id for t in report.timers] == ["u2"]
    assert (report.timers[0].stored - report.timers[0].expected).total_seconds() == 300
    assert [o[:2] for o in report.orphans] == [("gone", "u4")]
    # Verifying changed nothing and announced nothing.
    assert conn.execute("SELECT count(*) FROM segql.changes WHERE cause <> 'event'").fetchone() == (
        0,
    )


def test_overdue_timers_are_reported_and_repair_ticks_them(conn: psycopg.Connection) -> None:
    _load(conn)
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0.replace(hour=2)])
    conn.commit()
    report = verify.verify(conn, ["carted"])
    assert report.overdue and not report.clean
    repaired = verify.verify(conn, ["carted"], repair=True)
    assert repaired.clean, repaired
    causes = {r[0] for r in conn.execute("SELECT DISTINCT cause FROM segql.changes")}
    assert causes == {"event", "time"}


def test_repair_fixes_membership_and_timers_and_logs_them(conn: psycopg.Connection) -> None:
    _load(conn)
    _corrupt(conn)
    conn.execute("DELETE FROM segql.timers WHERE segment = 'gone'")
    conn.commit()
    report = verify.verify(conn, repair=True)
    assert report.clean, report
    assert report.repaired == 3
    logged = conn.execute(
        "SELECT segment, user_id, kind FROM segql.changes WHERE cause = 'repair' ORDER BY 1, 2"
    ).fetchall()
    assert logged == [("big", "u1", "enter"), ("carted", "nobody", "exit")]
    assert verify.verify(conn).clean


def test_a_sample_checks_only_that_many_users(conn: psycopg.Connection) -> None:
    _load(conn)
    report = verify.verify(conn, sample=5)
    assert report.checked_users == 5 and report.clean


def test_an_unknown_segment_is_an_error(conn: psycopg.Connection) -> None:
    _load(conn)
    with pytest.raises(verify.VerifyError, match="'nope' is not deployed"):
        verify.verify(conn, ["nope"])


def test_cli_exit_codes(conn: psycopg.Connection, segql_cli) -> None:  # type: ignore[no-untyped-def]
    _load(conn)
    assert segql_cli("verify").returncode == 0
    _corrupt(conn)
    found = segql_cli("verify", "big")
    assert found.returncode == 1
    assert "big\tu1" in found.stdout and "1 missing member" in found.stdout
    fixed = segql_cli("verify", "--repair")
    assert fixed.returncode == 0, fixed.stdout
    assert "Repaired 3 user(s)" in fixed.stdout and "No differences." in fixed.stdout
    assert conn.execute("SELECT count(*) FROM segql.timers WHERE segment = 'gone'").fetchone() == (
        0,
    )
