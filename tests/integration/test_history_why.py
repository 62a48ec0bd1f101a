"""`why`: each condition of a definition, the user's values, the thresholds and what comes next."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner, Result

from segql import history
from segql.cli import app
from segql.deploy import deploy
from segql.errors import ConfigError
from segql.parse import parse_text

Cli = Callable[..., subprocess.CompletedProcess[str]]
T0 = datetime(2026, 3, 1, tzinfo=UTC)
SEGMENTS = """
CREATE SEGMENT vip AS event_sum('purchase', 'amount') > 100 AND plan = 'premium';
CREATE SEGMENT lapsing AS
    did('view', within => '2 days')
    AND NOT did('purchase', within => '2 days')
    AND signed_up_at < now() - interval '30 days';
CREATE SEGMENT either AS in_segment('vip') OR event_count('view') >= 3;
"""


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [T0])
    deploy(conn, parse_text(SEGMENTS))
    for user, traits in (
        ("ann", {"plan": "premium", "signed_up_at": "2025-01-01"}),
        ("bob", {"plan": "free", "signed_up_at": "2026-02-15"}),
    ):
        conn.execute("SELECT segql.identify(%s, %s)", [user, json.dumps(traits)])
    conn.execute("SELECT segql.track('ann', 'purchase', '{\"amount\": 150}')")
    conn.execute("SELECT segql.track('bob', 'view')")
    conn.commit()
    return conn


def test_a_member_and_every_condition_holding(shop: psycopg.Connection) -> None:
    e = history.why(shop, "vip", "ann")
    assert (e.member, e.holds, e.combinator, e.version) == (True, True, "and", 1)
    assert e.member_since == T0 and e.now == T0 and e.known_user
    amount, plan = e.conditions
    assert amount.text == "event_sum('purchase', 'amount') > 100"
    assert amount.holds is True
    assert [(v.label, v.value) for v in amount.values] == [("event_sum('purchase', 'amount')", 150)]
    assert (amount.op, amount.right and amount.right.value) == (">", 100)
    assert (plan.text, plan.holds, plan.values[0].value) == ("plan = 'premium'", True, "premium")
    assert e.last_change is not None
    assert (e.last_change.kind, e.last_change.cause, e.last_change.at) == ("enter", "event", T0)
    assert e.next_timer is None


def test_a_non_member_with_the_failing_conditions_and_the_next_timer(
    shop: psycopg.Connection,
) -> None:
    e = history.why(shop, "lapsing", "bob")
    assert (e.member, e.holds) == (False, False)
    viewed, not_bought, signed_up = e.conditions
    assert (viewed.text, viewed.holds) == ("did('view', within => '2 days')", True)
    assert (not_bought.text, not_bought.holds) == ("NOT did('purchase', within => '2 days')", True)
    assert signed_up.text == "signed_up_at < now() - interval '30 days'"
    assert signed_up.holds is False
    assert signed_up.right is not None and signed_up.right.value == T0 - timedelta(days=30)
    assert signed_up.left is not None
    assert signed_up.left.value == datetime(2026, 2, 15, tzinfo=UTC)
    # Bob's view leaves the window in two days, before his account is 30 days old (Mar 17).
    assert e.next_timer == T0 + timedelta(days=2)


def test_the_users_own_interval_text_and_what_the_next_timer_does(
    shop: psycopg.Connection, cli: Callable[..., Result]
) -> None:
    deploy(
        shop,
        parse_text(
            "CREATE SEGMENT viewers AS did('view', within => '24 hours')"
            " AND last_event_at('view') > now() - INTERVAL '48 hours';"
        ),
    )
    shop.commit()
    e = history.why(shop, "viewers", "bob")
    assert [c.text for c in e.conditions] == [
        "did('view', within => '24 hours')",
        "last_event_at('view') > now() - interval '48 hours'",
    ]
    assert e.member and e.next_timer == T0 + timedelta(hours=24)
    assert e.next_timer_effect == "exit"
    shop.rollback()
    shown = cli("why", "viewers", "bob").stdout
    assert (
        "Next timer: 2026-03-02T00:00:00+00:00: the definition is checked again then; "
        "with no new event before it, bob leaves viewers."
    ) in shown


def test_or_of_a_segment_and_a_count_and_an_unknown_user(shop: psycopg.Connection) -> None:
    e = history.why(shop, "either", "ann")
    assert e.combinator == "or" and e.holds
    assert [(c.text, c.holds) for c in e.conditions] == [
        ("in_segment('vip')", True),
        ("event_count('view') >= 3", False),
    ]
    nobody = history.why(shop, "vip", "nobody")
    assert not nobody.known_user and not nobody.member and nobody.last_change is None
    assert [c.holds for c in nobody.conditions] == [False, None]  # NULL plan: unknown


def test_why_takes_the_user_id_as_a_value(shop: psycopg.Connection) -> None:
    e = history.why(shop, "vip", "x'); DROP TABLE segql.events; --")
    assert not e.known_user
    assert shop.execute("SELECT count(*) FROM segql.events").fetchone() == (2,)


@pytest.fixture
def cli(database_url: str) -> Callable[..., Result]:
    """The CLI in this process: the commands' own logic, without a start-up per call."""
    runner = CliRunner(env={"SEGQL_DATABASE_URL": database_url})
    return lambda *args: runner.invoke(app, list(args))


def test_why_and_history_commands(shop: psycopg.Connection, cli: Callable[..., Result]) -> None:
    text = cli("why", "vip", "ann")
    assert text.exit_code == 0, text.output
    assert "ann is a member since 2026-03-01T00:00:00+00:00 of vip (v1)" in text.stdout
    assert "[yes] event_sum('purchase', 'amount') > 100" in text.stdout
    assert "threshold: 100" in text.stdout
    as_json = json.loads(cli("why", "lapsing", "bob", "--json").stdout)
    assert as_json["holds"] is False
    assert [c["holds"] for c in as_json["conditions"]] == [True, True, False]

    totals = cli("history", "vip")
    header, row = totals.stdout.splitlines()
    assert header.split() == ["DAY", "FROM", "ENTERS", "EXITS", "SIZE"]
    assert row.split() == ["2026-03-01T00:00:00+00:00", "+1", "-0", "1"]
    changes = json.loads(cli("history", "vip", "--user", "ann", "--json").stdout)
    assert [(c["kind"], c["cause"]) for c in changes] == [("enter", "event")]
    listed = cli("history", "either", "--changes", "--limit", "1")
    assert "enter  ann" in listed.stdout
    wrong = cli("history", "vip", "--every", "year")
    assert isinstance(wrong.exception, ConfigError) and "--every" in str(wrong.exception)


def test_an_unknown_segment_is_an_error_message(shop: psycopg.Connection, segql_cli: Cli) -> None:
    missing = segql_cli("why", "nope", "ann")
    assert missing.returncode == 1 and missing.stderr.startswith("Error: segment 'nope'")
