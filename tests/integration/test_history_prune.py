"""prune-log: old changes go, membership replays stay exact after the cutoff, consumers hold it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner, Result

from segql import feed, history
from segql.cli import app
from segql.deploy import deploy, members
from segql.errors import ConfigError
from segql.parse import parse_text

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def at(conn: psycopg.Connection, moment: datetime) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [moment])


def hit(conn: psycopg.Connection, user: str) -> None:
    conn.execute("SELECT segql.track(%s, 'hit')", [user])


@pytest.fixture
def log(conn: psycopg.Connection) -> psycopg.Connection:
    """A flips in and out, B enters and stays, C enters, exits and never comes back."""
    at(conn, T0)
    deploy(conn, parse_text("CREATE SEGMENT flip AS event_count('hit') % 2 = 1;"))
    for user in ("a", "b", "c"):
        hit(conn, user)  # all enter on day 0
    conn.commit()
    at(conn, T0 + 10 * DAY)
    hit(conn, "a")  # exit
    hit(conn, "c")  # exit
    conn.commit()
    at(conn, T0 + 20 * DAY)
    hit(conn, "a")  # enter
    conn.commit()
    at(conn, T0 + 120 * DAY)
    hit(conn, "a")  # exit
    conn.commit()
    return conn


def kinds(conn: psycopg.Connection) -> list[tuple[str, str]]:
    rows = conn.execute("SELECT user_id, kind FROM segql.changes ORDER BY seq")
    return [(r[0], r[1]) for r in rows]


def test_prune_keeps_what_replays_need(log: psycopg.Connection) -> None:
    cutoff = T0 + 30 * DAY
    before = {d: history.members_at(log, "flip", cutoff + d * DAY) for d in (0, 50, 90)}
    result = feed.prune(log, cutoff)
    log.commit()
    assert result.deleted == {"flip": 4} and result.total == 4
    # a's enter on day 20 and b's on day 0 say who was in at the cutoff; c left: nothing of c.
    assert kinds(log) == [("b", "enter"), ("a", "enter"), ("a", "exit")]
    for d, expected in before.items():
        assert history.members_at(log, "flip", cutoff + d * DAY) == expected
    assert history.members_at(log, "flip", T0 + 120 * DAY) == members(log, "flip")
    assert history.horizon(log) == cutoff
    with pytest.raises(history.HistoryError, match="pruned"):
        history.members_at(log, "flip", cutoff - DAY)
    assert feed.prune(log, cutoff).total == 0


def test_dry_run_deletes_nothing(log: psycopg.Connection) -> None:
    result = feed.prune(log, T0 + 30 * DAY, dry_run=True)
    assert result.total == 4 and result.dry_run
    assert len(kinds(log)) == 7
    assert history.horizon(log) is None


def test_a_named_consumer_holds_back_what_it_has_not_acknowledged(
    log: psycopg.Connection, database_url: str
) -> None:
    with feed.subscribe(database_url, consumer="slow", since=0, timeout=1) as sub:
        first = [next(sub) for _ in range(4)]
        sub.ack(first[-1])  # day 0 and a's exit on day 10: c's exit on day 10 is not acked
    held = feed.prune(log, T0 + 30 * DAY)
    log.commit()
    assert held.deleted == {"flip": 3}
    assert held.held_back == 1 and held.held_by == {"slow": 1}
    forced = feed.prune(log, T0 + 30 * DAY, force=True)
    log.commit()
    assert forced.total == 1 and forced.forced


@pytest.fixture
def cli(database_url: str) -> Callable[..., Result]:
    """The CLI in this process: the commands' own logic, without a start-up per call."""
    runner = CliRunner(env={"SEGQL_DATABASE_URL": database_url})
    return lambda *args: runner.invoke(app, list(args))


def test_prune_log_and_consumers_commands(
    log: psycopg.Connection, cli: Callable[..., Result]
) -> None:
    at(log, T0 + 130 * DAY)
    log.commit()
    listed = cli("listen", "--consumer", "reader", "--since", "0", "--timeout", "0.5")
    assert len(listed.stdout.splitlines()) == 7, listed.output
    assert "reader" in cli("consumers", "list").stdout
    dry = cli("prune-log", "--older-than", "100d", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[0].startswith("Would delete 4 change(s) from before 2026-01-31")
    done = cli("prune-log", "--older-than", "100d")
    assert done.stdout.splitlines() == [
        "Deleted 4 change(s) from before 2026-01-31T00:00:00+00:00.",
        "  flip: 4",
    ]
    bad = cli("prune-log", "--older-than", "ninety days")
    assert isinstance(bad.exception, ConfigError) and "90d" in str(bad.exception)
    assert cli("consumers", "drop", "reader").exit_code == 0
    assert isinstance(cli("consumers", "drop", "reader").exception, ConfigError)
