"""members_at replays the change log: at every past moment it equals what the oracle said then."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from segql import history, run
from segql.deploy import deploy, full_members, members
from segql.parse import parse_text

SEGMENTS = """
CREATE SEGMENT browsing AS did('view', within => '2 hours');
CREATE SEGMENT buyer AS event_count('purchase', within => '1 day') >= 2;
CREATE SEGMENT pro AS plan = 'pro' AND signed_up_at < now() - interval '3 days';
CREATE SEGMENT hot AS in_segment('browsing') AND (in_segment('buyer') OR plan = 'pro');
"""
REDEPLOY = "CREATE SEGMENT buyer AS event_count('purchase', within => '1 day') >= 3;"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
USERS = [f"u{i}" for i in range(30)]


def pin(conn: psycopg.Connection, at: datetime) -> None:
    conn.execute("UPDATE segql.clock SET pinned_at = %s", [at])
    conn.execute("SELECT segql.tick()")


def step(conn: psycopg.Connection, rng: random.Random) -> None:
    for _ in range(rng.randint(0, 12)):
        user = rng.choice(USERS)
        name = rng.choice(["view", "view", "purchase"])
        conn.execute("SELECT segql.track(%s, %s)", [user, name])
    for _ in range(rng.randint(0, 3)):
        traits = {
            "plan": rng.choice(["free", "pro"]),
            "signed_up_at": (T0 + timedelta(days=rng.randint(-6, 6))).isoformat(),
        }
        conn.execute("SELECT segql.identify(%s, %s)", [rng.choice(USERS), json.dumps(traits)])


Snapshot = dict[str, list[tuple[str, datetime]]]


def test_members_at_equals_the_oracle_at_every_past_moment(conn: psycopg.Connection) -> None:
    rng = random.Random(11)
    pin(conn, T0)
    step(conn, rng)  # users from before the first deploy enter with cause 'deploy'
    deploy(conn, parse_text(SEGMENTS))
    names = ["browsing", "buyer", "pro", "hot"]
    moments: list[tuple[datetime, Snapshot]] = []
    at = T0
    for i in range(40):
        at += timedelta(minutes=rng.choice([1, 7, 30, 90, 180, 600]))
        pin(conn, at)
        step(conn, rng)
        if i == 20:
            deploy(conn, parse_text(REDEPLOY))  # new version: changes with cause 'redeploy'
        if i == 30:
            deploy(conn, [], drop=["pro"])  # its members exit with cause 'drop'
            names.remove("pro")
        conn.commit()
        snapshot: Snapshot = {}
        for name in names:
            snapshot[name] = members(conn, name)
            assert {u for u, _ in snapshot[name]} == full_members(conn, name), (i, name)
        snapshot.setdefault("pro", [])
        moments.append((at, snapshot))

    causes = {r[0] for r in conn.execute("SELECT DISTINCT cause FROM segql.changes")}
    assert {"event", "profile", "time", "deploy", "redeploy", "drop"} <= causes
    for moment, snapshot in moments:
        for name, expected in snapshot.items():
            assert history.members_at(conn, name, moment) == expected, (moment, name)
    assert history.members_at(conn, "browsing", T0 - timedelta(seconds=1)) == []


def test_members_at_reads_naive_times_as_utc_and_rejects_unknown_segments(
    conn: psycopg.Connection,
) -> None:
    pin(conn, T0)
    deploy(conn, parse_text(SEGMENTS))
    conn.execute("SELECT segql.track('u1', 'view')")
    naive = T0.replace(tzinfo=None)
    assert [u for u, _ in history.members_at(conn, "browsing", naive)] == ["u1"]
    with pytest.raises(Exception, match="not deployed"):
        history.members_at(conn, "nope", T0)


def test_at_in_the_future_is_refused(conn: psycopg.Connection) -> None:
    deploy(conn, parse_text("CREATE SEGMENT browsing AS did('view');", "b.sql"))
    run.clock_set(conn, T0)
    with pytest.raises(history.HistoryError, match="is in the future"):
        history.members_at(conn, "browsing", T0 + timedelta(seconds=1))


def test_series_and_changes(conn: psycopg.Connection) -> None:
    pin(conn, T0)
    deploy(conn, parse_text(SEGMENTS))
    conn.execute("SELECT segql.track('a', 'view'), segql.track('b', 'view')")
    pin(conn, T0 + timedelta(days=1))  # both windows closed at T0 + 2h
    conn.execute("SELECT segql.track('a', 'view')")
    days = history.series(conn, "browsing", "day")
    assert [(p.start, p.enters, p.exits, p.size) for p in days] == [
        (T0, 2, 2, 0),
        (T0 + timedelta(days=1), 1, 0, 1),
    ]
    hours = history.series(conn, "browsing", "hour")
    assert [(p.enters, p.exits) for p in hours] == [(2, 0), (0, 2), (1, 0)]
    mine = history.user_changes(conn, "browsing", "a")
    assert [(c.kind, c.cause, c.at) for c in mine] == [
        ("enter", "event", T0),
        ("exit", "time", T0 + timedelta(hours=2)),
        ("enter", "event", T0 + timedelta(days=1)),
    ]
    assert [c.user_id for c in history.recent_changes(conn, "browsing", 2)] == ["b", "a"]
    with pytest.raises(history.HistoryError, match="not a period"):
        history.series(conn, "browsing", "year")  # type: ignore[arg-type]
