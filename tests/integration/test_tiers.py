"""CREATE TIERS: mutually exclusive segments, first match wins, moves as one exit and one enter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from segql import deploy, feed, history, run
from segql.cli import app
from segql.diagnostics import DefinitionError
from segql.parse import parse_text

T0 = datetime(2026, 3, 1, tzinfo=UTC)
TIERS = """
CREATE TIERS loyalty COMMENT 'How engaged a buyer is' AS
    big     WHEN event_count('buy') >= 3,
    recent  WHEN did('buy', within => '1 day'),
    lapsed  WHEN did('buy');
"""


def _buy(conn: psycopg.Connection, user: str, at: datetime) -> None:
    conn.execute("INSERT INTO segql.events (user_id, name, ts) VALUES (%s, 'buy', %s)", [user, at])
    conn.commit()


def _tier(conn: psycopg.Connection, user: str) -> list[str]:
    rows = conn.execute(
        "SELECT segment FROM segql.members WHERE user_id = %s ORDER BY segment", [user]
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    run.clock_set(conn, T0)
    deploy.deploy(conn, parse_text(TIERS))
    return conn


def test_each_tier_is_a_segment_and_a_user_is_in_the_first_that_holds(
    shop: psycopg.Connection,
) -> None:
    listed = {s.name: s for s in deploy.list_segments(shop)}
    assert sorted(listed) == ["big", "lapsed", "recent"]
    assert listed["big"].comment == "How engaged a buyer is"
    _buy(shop, "ann", T0)
    assert _tier(shop, "ann") == ["recent"]
    _buy(shop, "ann", T0)
    _buy(shop, "ann", T0)
    assert _tier(shop, "ann") == ["big"]  # big comes first, though recent holds too
    view = shop.execute("SELECT user_id FROM segments.big").fetchall()
    assert view == [("ann",)]
    for name in ("big", "recent", "lapsed"):
        assert {u for u, _ in deploy.members(shop, name)} == deploy.full_members(shop, name)


def test_a_move_is_one_exit_and_one_enter_at_one_instant(shop: psycopg.Connection) -> None:
    _buy(shop, "bob", T0)
    run.clock_set(shop, T0 + timedelta(days=2))
    run.tick(shop)
    assert _tier(shop, "bob") == ["lapsed"]
    rows = shop.execute(
        "SELECT segment, kind, at, cause, xid::text FROM segql.changes WHERE user_id = 'bob' "
        "ORDER BY seq"
    ).fetchall()
    edge = T0 + timedelta(days=1)
    assert rows[0][:4] == ("recent", "enter", T0, "event")
    assert sorted(r[:4] for r in rows[1:]) == [
        ("lapsed", "enter", edge, "time"),
        ("recent", "exit", edge, "time"),
    ]
    assert rows[1][4] == rows[2][4]  # one transaction
    changes = history.user_changes(shop, "lapsed", "bob")
    assert changes[-1].tier_change == {"tiers": "loyalty", "from": "recent", "to": "lapsed"}
    left = history.user_changes(shop, "recent", "bob")
    assert left[0].tier_change is None  # entering the first tier is no move
    assert left[1].tier_change == {"tiers": "loyalty", "from": "recent", "to": "lapsed"}


def test_the_feed_shows_a_tier_change(shop: psycopg.Connection, database_url: str) -> None:
    _buy(shop, "cy", T0)
    _buy(shop, "cy", T0)
    _buy(shop, "cy", T0)
    seen = []
    with feed.subscribe(database_url, since=0, poll_interval=0.1) as sub:
        for change in sub:
            seen.append(change.as_json())
            if len(seen) == 3:
                break
    assert [(c["segment"], c["kind"]) for c in seen] == [
        ("recent", "enter"),
        ("big", "enter"),
        ("recent", "exit"),
    ]
    move = {"tiers": "loyalty", "from": "recent", "to": "big"}
    assert seen[1]["tier_change"] == move and seen[2]["tier_change"] == move
    assert "tier_change" not in seen[0]
    out = CliRunner().invoke(
        app, ["--database-url", database_url, "history", "big", "--user", "cy"]
    )
    assert out.exit_code == 0, out.output
    assert "tier change in loyalty: recent -> big" in out.output


def test_why_names_the_earlier_tiers(shop: psycopg.Connection) -> None:
    _buy(shop, "dee", T0)
    e = history.why(shop, "recent", "dee")
    assert e.holds and e.combinator == "and"
    assert [c.text for c in e.conditions] == [
        "did('buy', within => '1 day')",
        "NOT ((event_count('buy') >= 3) IS TRUE)",
    ]


def test_a_tier_alone_cannot_be_dropped(shop: psycopg.Connection) -> None:
    with pytest.raises(deploy.DeployError, match="recent is a tier of loyalty"):
        deploy.deploy(shop, [], drop=["recent"])
    shop.rollback()
    deploy.deploy(shop, [], drop=["loyalty"])
    assert deploy.list_segments(shop) == []


def test_redeploying_the_group_drops_tiers_it_no_longer_lists(shop: psycopg.Connection) -> None:
    _buy(shop, "eve", T0)
    text = "CREATE TIERS loyalty AS big WHEN event_count('buy') >= 3, any WHEN did('buy');"
    result = deploy.deploy(shop, parse_text(text))
    assert sorted(result.dropped) == ["lapsed", "recent"]
    assert _tier(shop, "eve") == ["any"]


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("CREATE TIERS t AS a did('x');", "1:21", "Expected WHEN"),
        ("CREATE TIERS t AS a WHEN did('x'),;", "1:34", "Expected a tier"),
        ("CREATE TIERS t AS a WHEN did('x'),\n  a WHEN true;", "2:3", "defined twice"),
        ("CREATE TIERS t AS a WHEN event_count('x');", "1:26", "not true/false"),
        ('CREATE TIERS t AS "A" WHEN true;', "1:19", "tier names cannot be quoted"),
        ("CREATE TIERS t AS t WHEN true;", "1:19", "has the name of its tiers"),
        ("CREATE TIERS t AS a WHEN true;\nCREATE TIERS t AS b WHEN true;", "2:14", "twice"),
    ],
)
def test_bad_tiers_are_refused_at_their_place(text: str, where: str, problem: str) -> None:
    from segql.check import check

    with pytest.raises(DefinitionError) as err:
        check(parse_text(text, "t.sql"))
    message = str(err.value)
    assert message.startswith(f"t.sql:{where}:"), message
    assert problem in message


def test_listen_prints_the_move(shop: psycopg.Connection, segql_cli) -> None:  # type: ignore[no-untyped-def]
    _buy(shop, "fay", T0)
    for _ in range(2):
        _buy(shop, "fay", T0)
    done = segql_cli("listen", "big", "--since", "0", "--timeout", "1")
    line = json.loads(done.stdout.splitlines()[0])
    assert line["tier_change"] == {"tiers": "loyalty", "from": "recent", "to": "big"}


def test_the_classic_rfm_map_places_every_buyer_in_one_tier(conn: psycopg.Connection) -> None:
    import random
    from pathlib import Path

    from segql import rfm

    run.clock_set(conn, T0)
    rnd = random.Random(12)
    rows = []
    for i in range(120):
        for _ in range(rnd.choice([1, 1, 2, 3, 5, 8, 13])):
            at = T0 - timedelta(days=rnd.uniform(0, 400))
            rows.append((f"b{i}", at, json.dumps({"amount": rnd.choice([5, 20, 80, 300])})))
    conn.cursor().executemany(
        "INSERT INTO segql.events (user_id, name, ts, props) VALUES (%s, 'purchase', %s, %s)",
        rows,
    )
    conn.commit()
    example = Path(__file__).resolve().parents[2] / "examples" / "rfm.sql"
    deploy.deploy(conn, parse_text(example.read_text(), str(example)))
    rfm.refresh(conn)
    names = [s.name for s in deploy.list_segments(conn)]
    assert len(names) == 11

    def placed() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for user, segment in conn.execute("SELECT user_id, segment FROM segql.members"):
            out.setdefault(user, []).append(segment)
        conn.rollback()
        return out

    tiers = placed()
    assert sorted(tiers) == sorted(f"b{i}" for i in range(120))
    assert all(len(t) == 1 for t in tiers.values()), tiers
    assert len({t[0] for t in tiers.values()}) >= 8  # the map is used, not one tier
    run.clock_set(conn, T0 + timedelta(days=120))
    run.tick(conn)
    later = placed()
    assert all(len(t) == 1 for t in later.values())
    moved = conn.execute(
        "SELECT count(*) FROM segql.changes c WHERE c.cause = 'time' AND c.kind = 'enter' "
        "AND segql.tier_move(c.segment, c.user_id, c.xid, c.at, c.kind) IS NOT NULL"
    ).fetchone()
    assert moved is not None and moved[0] > 0
    for name in names:
        assert {u for u, _ in deploy.members(conn, name)} == deploy.full_members(conn, name)


def test_compile_shows_the_tiers_and_the_cutpoints_a_deploy_would_compute(
    database_url: str,
) -> None:
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "rfm.sql"
    out = CliRunner().invoke(app, ["--database-url", database_url, "compile", str(example)])
    assert out.exit_code == 0, out.output
    assert "-- cutpoints of new RFM scores" in out.output
    assert "percentile_disc(ARRAY[0.2, 0.4, 0.6, 0.8])" in out.output
    assert "-- view segments.cant_lose_them" in out.output
