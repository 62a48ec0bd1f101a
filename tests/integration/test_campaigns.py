"""Campaigns against a real Postgres and a real local HTTP receiver."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from standardwebhooks.webhooks import Webhook

from segql import deploy, feed, worker
from segql.campaigns import deliver, plan
from segql.campaigns.parse import CampaignDialect
from segql.campaigns.receiver import Answer, Receiver
from segql.parse import parse_text

FAST = deliver.Settings(schedule=(0.05, 0.05, 0.05), timeout=2.0)
SLOW = deliver.Settings(schedule=(60.0,), timeout=2.0)
SEGMENT = "CREATE SEGMENT carts AS did('add_to_cart');\n"


@pytest.fixture(autouse=True)
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEGQL_WEBHOOK_ALLOW", "127.0.0.1")


def deploy_text(conn: psycopg.Connection, text: str) -> deploy.DeployResult:
    result = deploy.deploy(conn, parse_text(text, "test.sql", CampaignDialect))
    conn.commit()
    return result


def campaign(url: str, extra: str = "", on: str = "ENTER") -> str:
    return f"CREATE CAMPAIGN rescue ON {on} carts SEND WEBHOOK '{url}' {extra};\n"


def event(conn: psycopg.Connection, user: str, name: str = "add_to_cart") -> None:
    conn.execute("INSERT INTO segql.events (user_id, name) VALUES (%s, %s)", [user, name])
    conn.commit()


def send_all(conn: psycopg.Connection, settings: deliver.Settings = FAST) -> int:
    sent = 0
    with deliver.client(settings) as http:
        while deliver.send_one(conn, http, settings):
            sent += 1
    return sent


def secret(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT secret FROM segql.campaigns WHERE name = 'rescue'").fetchone()
    assert row is not None
    return str(row[0])


def statuses(conn: psycopg.Connection) -> list[tuple[str, str, str | None]]:
    rows = conn.execute(
        "SELECT user_id, status, reason FROM segql.deliveries ORDER BY seq"
    ).fetchall()
    conn.commit()
    return [(r[0], r[1], r[2]) for r in rows]


def test_entry_is_planned_once_signed_and_delivered(conn: psycopg.Connection) -> None:
    with Receiver() as receiver:
        deploy_text(conn, SEGMENT)
        event(conn, "before")  # a member before the campaign exists: no webhook
        result = deploy_text(conn, SEGMENT + campaign(receiver.url))
        assert result.campaigns.created == ["rescue"]
        event(conn, "u1")
        event(conn, "u1")  # already a member: no new change
        assert plan.plan_all(conn) == 1
        assert plan.plan_all(conn) == 0  # the cursor moved with the rows
        assert send_all(conn) == 1
        got = receiver.delivered()
        assert list(got) == [plan.webhook_id("rescue", _seq_of(conn, "u1"))]
        request = next(iter(got.values()))
        headers = {
            "webhook-id": request.webhook_id,
            "webhook-timestamp": request.timestamp,
            "webhook-signature": request.signature,
        }
        body = Webhook(secret(conn)).verify(request.body, headers)
        assert body["type"] == "segment.entered"
        assert body["data"]["user_id"] == "u1"
        assert body["data"]["campaign"] == "rescue"
        assert statuses(conn) == [("u1", "delivered", None)]


def _seq_of(conn: psycopg.Connection, user: str) -> int:
    row = conn.execute("SELECT max(seq) FROM segql.changes WHERE user_id = %s", [user]).fetchone()
    assert row is not None
    return int(row[0])


def test_500s_are_retried_with_the_same_id_and_bytes(conn: psycopg.Connection) -> None:
    answers = iter([500, 500, 200])

    def script(receiver: Receiver, webhook_id: str) -> Answer:
        return Answer(next(answers))

    with Receiver(script) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        event(conn, "u1")
        plan.plan_all(conn)
        deadline = time.monotonic() + 30
        while not receiver.delivered() and time.monotonic() < deadline:
            send_all(conn)
            time.sleep(0.05)
        assert [r.status for r in receiver.requests] == [500, 500, 200]
        assert len({r.webhook_id for r in receiver.requests}) == 1
        assert len({r.body for r in receiver.requests}) == 1
        row = conn.execute("SELECT attempts, status FROM segql.deliveries").fetchone()
        assert row == (3, "delivered")


def test_dead_after_the_last_try_then_replayed(conn: psycopg.Connection) -> None:
    ok = threading.Event()

    def script(receiver: Receiver, webhook_id: str) -> Answer:
        return Answer(200 if ok.is_set() else 503)

    with Receiver(script) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        event(conn, "u1")
        plan.plan_all(conn)
        deadline = time.monotonic() + 30
        while statuses(conn)[0][1] == "pending" and time.monotonic() < deadline:
            send_all(conn)
            time.sleep(0.05)
        assert statuses(conn) == [("u1", "failed", "dead after 4 attempts")]
        ok.set()
        row = conn.execute(plan.q("replay"), {"campaign": "rescue", "since": None}).fetchone()
        conn.commit()
        assert row is not None and row[0] == 1
        assert send_all(conn) == 1
        assert statuses(conn)[0][1] == "delivered"


def test_retry_after_is_honoured(conn: psycopg.Connection) -> None:
    def script(receiver: Receiver, webhook_id: str) -> Answer:
        return Answer(429, {"Retry-After": "120"}) if not receiver.requests else Answer(200)

    with Receiver(script) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        event(conn, "u1")
        plan.plan_all(conn)
        send_all(conn)
        row = conn.execute(
            "SELECT extract(epoch FROM due_at - last_attempt_at), status, last_status "
            "FROM segql.deliveries"
        ).fetchone()
        assert row is not None
        assert 119 <= float(row[0]) <= 121 and row[1:] == ("pending", 429)


def test_410_disables_the_campaign(conn: psycopg.Connection) -> None:
    with Receiver(lambda r, i: Answer(410)) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        event(conn, "u1")
        event(conn, "u2")
        plan.plan_all(conn)
        assert send_all(conn) == 1  # the second is held: the endpoint is gone
        row = conn.execute("SELECT disabled_at IS NOT NULL FROM segql.campaigns").fetchone()
        assert row == (True,)
        assert [s for _, s, _ in statuses(conn)] == ["failed", "pending"]


def test_redirects_are_not_followed(conn: psycopg.Connection) -> None:
    with Receiver(lambda r, i: Answer(302, {"Location": "http://127.0.0.1:9/x"})) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        event(conn, "u1")
        plan.plan_all(conn)
        send_all(conn, SLOW)  # one attempt: the retry is a minute away
        assert len(receiver.requests) == 1
        row = conn.execute("SELECT status, last_status FROM segql.deliveries").fetchone()
        assert row == ("pending", 302)


def test_cap_skips_with_a_reason(conn: psycopg.Connection) -> None:
    text = "CREATE SEGMENT carts AS plan = 'cart';\n" + campaign(
        "http://127.0.0.1:9/x", "LIMIT 1 PER '1 hour'"
    )
    deploy_text(conn, text)
    for value in ("cart", "none", "cart"):  # enters, leaves, enters again within the hour
        conn.execute(
            "INSERT INTO segql.profiles (user_id, traits) VALUES ('u1', %s) "
            "ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits",
            [json.dumps({"plan": value})],
        )
        conn.commit()
    plan.plan_all(conn)
    assert statuses(conn) == [
        ("u1", "pending", None),
        ("u1", "skipped", "cap: 1 per 1 hours already planned"),
    ]


def test_after_skips_a_user_who_left(conn: psycopg.Connection) -> None:
    text = "CREATE SEGMENT carts AS did('add_to_cart') AND NOT did('buy');\n" + campaign(
        "http://127.0.0.1:9/x", "AFTER '30 minutes'"
    )
    deploy_text(conn, text)
    event(conn, "u1")
    event(conn, "u2")
    plan.plan_all(conn)
    event(conn, "u1", "buy")
    row = conn.execute(
        "SELECT min(extract(epoch FROM due_at - change_at)) FROM segql.deliveries"
    ).fetchone()
    assert row is not None and float(row[0]) == 1800
    conn.execute("UPDATE segql.deliveries SET due_at = now()")  # as if 30 minutes had passed
    conn.commit()
    with Receiver() as receiver:
        conn.execute("UPDATE segql.campaigns SET url = %s", [receiver.url])
        conn.commit()
        send_all(conn)
        assert [json.loads(r.body)["data"]["user_id"] for r in receiver.requests] == ["u2"]
    assert ("u1", "skipped", "left the segment") in statuses(conn)


def test_quiet_hours_hold_in_the_users_zone(conn: psycopg.Connection) -> None:
    deploy_text(conn, SEGMENT + campaign("http://127.0.0.1:9/x", "QUIET HOURS '22:00' TO '08:00'"))
    conn.execute("SELECT set_config('segql.now', '2026-03-08 05:00:00+00', false)")
    conn.execute(
        "INSERT INTO segql.profiles (user_id, traits) VALUES "
        "('ny', '{\"timezone\": \"America/New_York\"}'), ('utc', '{}')"
    )
    conn.commit()
    conn.execute(
        "INSERT INTO segql.events (user_id, name, ts) VALUES "
        "('ny', 'add_to_cart', '2026-03-08 05:00:00+00'), "
        "('utc', 'add_to_cart', '2026-03-08 05:00:00+00')"
    )
    conn.commit()
    plan.plan_all(conn)
    rows = dict(conn.execute("SELECT user_id, due_at FROM segql.deliveries").fetchall())
    conn.commit()
    # New York: midnight EST (05:00 UTC); the clocks go forward at 02:00, so 08:00 is EDT.
    assert rows["ny"] == datetime(2026, 3, 8, 12, tzinfo=UTC)
    assert rows["utc"] == datetime(2026, 3, 8, 8, tzinfo=UTC)


def test_worker_plans_and_delivers(database_url: str, conn: psycopg.Connection) -> None:
    with Receiver() as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url))
        stop = worker.StopEvent()
        thread = threading.Thread(
            target=worker.run_worker,
            args=(database_url,),
            kwargs={"stop_event": stop, "senders": 2, "delivery": FAST},
            daemon=True,
        )
        thread.start()
        try:
            for i in range(20):
                event(conn, f"u{i}")
            assert receiver.wait_for(20, timeout=30)
        finally:
            stop.set()
            thread.join(15)
            stop.close()
        assert not thread.is_alive()
        assert len(receiver.delivered()) == 20


def test_prune_keeps_changes_a_campaign_has_not_planned(conn: psycopg.Connection) -> None:
    deploy_text(conn, "CREATE SEGMENT carts AS plan = 'cart';\n" + campaign("http://127.0.0.1:9/x"))
    conn.execute("SELECT set_config('segql.now', '2026-01-01 00:00:00+00', false)")
    for value in ("cart", "none"):
        conn.execute(
            "INSERT INTO segql.profiles (user_id, traits) VALUES ('u1', %s) "
            "ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits",
            [json.dumps({"plan": value})],
        )
        conn.commit()
    cutoff = datetime(2026, 6, 1, tzinfo=UTC)
    held = feed.prune(conn, cutoff)
    assert held.total == 0 and held.held_by == {"campaign rescue": 2}
    plan.plan_all(conn)
    assert feed.prune(conn, cutoff).total == 2
    assert statuses(conn) == [("u1", "pending", None)]


def test_a_retry_that_would_land_in_quiet_hours_waits_for_their_end(
    conn: psycopg.Connection,
) -> None:
    def script(receiver: Receiver, webhook_id: str) -> Answer:
        return Answer(503, {"Retry-After": "36000"})  # ten hours: 01:00 UTC, inside the window

    with Receiver(script) as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url, "QUIET HOURS '22:00' TO '08:00'"))
        conn.execute("SELECT set_config('segql.now', '2026-03-08 15:00:00+00', false)")
        conn.execute(
            "INSERT INTO segql.events (user_id, name, ts) "
            "VALUES ('u1', 'add_to_cart', '2026-03-08 15:00:00+00')"
        )
        conn.commit()
        plan.plan_all(conn)
        assert send_all(conn) == 1
        row = conn.execute("SELECT due_at, last_status FROM segql.deliveries").fetchone()
        assert row == (datetime(2026, 3, 9, 8, tzinfo=UTC), 503)


def test_after_is_kept_to_the_second_by_the_worker(
    database_url: str, conn: psycopg.Connection
) -> None:
    with Receiver() as receiver:
        deploy_text(conn, SEGMENT + campaign(receiver.url, "AFTER '2 seconds'"))
        stop = worker.StopEvent()
        thread = threading.Thread(
            target=worker.run_worker,
            args=(database_url,),
            kwargs={"stop_event": stop, "senders": 1, "delivery": FAST},
            daemon=True,
        )
        thread.start()
        try:
            event(conn, "u1")
            assert receiver.wait_for(1, timeout=30)
        finally:
            stop.set()
            thread.join(15)
            stop.close()
        row = conn.execute("SELECT change_at, due_at FROM segql.deliveries").fetchone()
        assert row is not None
        change_at, due_at = row
        assert due_at == change_at + timedelta(seconds=2)
        (request,) = receiver.requests
        assert request.received >= due_at.timestamp()  # never early
