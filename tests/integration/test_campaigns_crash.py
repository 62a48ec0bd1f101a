"""Two workers, a receiver that fails 30 % of requests and stalls some, one worker SIGKILLed
several times while changes flow: every covered change arrives once per webhook-id, signed, within
its cap, and nothing held by quiet hours goes out.

SEGQL_CRASH_CHANGES sets the number of changes (CI default 600; the full run is 5000).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from standardwebhooks.webhooks import Webhook

from segql import deploy
from segql.campaigns.parse import CampaignDialect
from segql.campaigns.receiver import Answer, Receiver
from segql.parse import parse_text

CHANGES = int(os.environ.get("SEGQL_CRASH_CHANGES", "600"))
TOGGLES = 10  # changes per user: five entries and five exits
CAP = 3
KILLS = 4
WRITE_SECONDS = 8.0
WAIT = 60.0


STALLING = threading.Event()  # set while a request is being held: a good moment for SIGKILL


def answer(receiver: Receiver, webhook_id: str) -> Answer:
    roll = random.random()
    if roll < 0.3:
        return Answer(500)
    if roll < 0.36:
        STALLING.set()
        return Answer(200, stall=random.uniform(0.3, 0.8))
    return Answer(200)


def definitions(url: str) -> str:
    now = datetime.now(UTC)
    quiet_from = (now - timedelta(hours=1)).strftime("%H:%M")
    quiet_to = (now + timedelta(hours=3)).strftime("%H:%M")
    return f"""
CREATE SEGMENT active AS plan = 'on';
CREATE CAMPAIGN welcome ON ENTER active SEND WEBHOOK '{url}' LIMIT {CAP} PER '1 hour';
CREATE CAMPAIGN goodbye ON EXIT active SEND WEBHOOK '{url}'
  QUIET HOURS '{quiet_from}' TO '{quiet_to}';
"""


def start_worker(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SEGQL_DATABASE_URL": database_url,
        "SEGQL_WEBHOOK_ALLOW": "127.0.0.1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "segql",
                "worker",
                "--senders",
                "3",
                "--retry-schedule",
                ",".join(["0.2s"] * 15),
                "--webhook-timeout",
                "3",
            ],
            env=env,
            stdout=out,
            stderr=out,
        )


def write_changes(database_url: str, users: int) -> None:
    """Spread over about as long as the kills take, so that every worker has work."""
    batches = TOGGLES * -(-users // 25)
    pause = WRITE_SECONDS / batches
    with psycopg.connect(database_url) as conn:
        for round_ in range(TOGGLES):
            plan = "on" if round_ % 2 == 0 else "off"
            for start in range(0, users, 25):
                conn.execute(
                    "INSERT INTO segql.profiles (user_id, traits) "
                    "SELECT 'u' || i, jsonb_build_object('plan', %s::text) "
                    "FROM generate_series(%s::int, %s::int) i "
                    "ON CONFLICT (user_id) DO UPDATE SET traits = excluded.traits",
                    [plan, start, min(users, start + 25) - 1],
                )
                conn.commit()
                time.sleep(pause)


def test_crash_and_retries_lose_and_duplicate_nothing(
    database_url: str, conn: psycopg.Connection, tmp_path: Path
) -> None:
    users = max(1, CHANGES // TOGGLES)
    with Receiver(answer) as receiver:
        deploy.deploy(conn, parse_text(definitions(receiver.url), "crash.sql", CampaignDialect))
        conn.commit()
        log = tmp_path / "workers.log"
        steady = start_worker(database_url, log)
        victim = start_worker(database_url, log)
        writer = threading.Thread(target=write_changes, args=(database_url, users))
        writer.start()
        kills = 0
        try:
            while writer.is_alive() or kills < KILLS:
                time.sleep(random.uniform(1.5, 2.5))  # the new worker is up and sending
                STALLING.clear()
                STALLING.wait(1.0)  # kill while some request is in flight, when there is one
                if kills < KILLS:
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                    kills += 1
                    victim = start_worker(database_url, log)
            writer.join()
            expected = _wait_all_sent(conn, receiver)
        finally:
            for proc in (steady, victim):
                proc.send_signal(signal.SIGTERM)
            for proc in (steady, victim):
                proc.wait(15)
        _check(conn, receiver, expected, users)


def _wait_all_sent(conn: psycopg.Connection, receiver: Receiver) -> set[str]:
    """Wait until every change is planned and every welcome that is not capped is received."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        planned = conn.execute(
            "SELECT (SELECT count(*) FROM segql.changes WHERE cause = 'profile'), "
            "(SELECT count(*) FROM segql.deliveries)"
        ).fetchone()
        ids = {
            r[0]
            for r in conn.execute(
                "SELECT webhook_id FROM segql.deliveries WHERE campaign = 'welcome' "
                "AND status <> 'skipped'"
            )
        }
        conn.commit()
        assert planned is not None
        if planned[0] == planned[1] and ids and ids <= set(receiver.delivered()):
            return ids
        time.sleep(0.2)
    raise AssertionError(f"not everything arrived: {planned}, {len(receiver.delivered())}")


def _check(conn: psycopg.Connection, receiver: Receiver, expected: set[str], users: int) -> None:
    secret = dict(conn.execute("SELECT name, secret FROM segql.campaigns").fetchall())
    seqs: dict[str, int] = {}
    bodies: dict[str, bytes] = {}
    for request in receiver.requests:
        headers = {
            "webhook-id": request.webhook_id,
            "webhook-timestamp": request.timestamp,
            "webhook-signature": request.signature,
        }
        body = Webhook(secret["welcome"]).verify(request.body, headers)  # raises if it does not
        assert body["data"]["campaign"] == "welcome", "a quiet-hours delivery went out"
        assert bodies.setdefault(request.webhook_id, request.body) == request.body
        seqs[request.webhook_id] = body["data"]["seq"]
    # Exactly one delivery row per covered change, and one webhook-id per change.
    enters = conn.execute(
        "SELECT count(*) FROM segql.changes WHERE cause = 'profile' AND kind = 'enter'"
    ).fetchone()
    rows = conn.execute(
        "SELECT count(*) FROM segql.deliveries WHERE campaign = 'welcome'"
    ).fetchone()
    assert enters == rows == (users * TOGGLES // 2,)
    assert set(receiver.delivered()) == expected
    attempts = Counter(r.webhook_id for r in receiver.requests)
    assert max(attempts.values()) > 1, "no 500 was retried"  # 30 % fail: retries must show
    twice = Counter(r.webhook_id for r in receiver.requests if 200 <= r.status < 300)
    print(  # shown with -s: how much of the run was retries and resends after a kill
        f"{len(receiver.requests)} requests for {len(expected)} webhooks; "
        f"{sum(n > 1 for n in attempts.values())} ids retried; "
        f"{sum(n > 1 for n in twice.values())} answered 2xx more than once (resent after a kill)"
    )
    # Resent after a kill: the same id and the same bytes (checked above), never a new id.
    assert len(set(seqs.values())) == len(seqs), "a change went out under two webhook-ids"
    # Caps: at most CAP welcomes per user (the run lasts far less than the hour).
    per_user = Counter(json.loads(bodies[i])["data"]["user_id"] for i in receiver.delivered())
    assert max(per_user.values()) == CAP and len(per_user) == users
    skipped = conn.execute(
        "SELECT count(*) FROM segql.deliveries WHERE campaign = 'welcome' AND status = 'skipped' "
        "AND reason LIKE 'cap:%%'"
    ).fetchone()
    assert skipped == (users * (TOGGLES // 2 - CAP),)
    # Quiet hours: every goodbye is held, due at the end of the window.
    held = conn.execute(
        "SELECT count(*), bool_and(status = 'pending' AND due_at > now() + interval '2 hours') "
        "FROM segql.deliveries WHERE campaign = 'goodbye'"
    ).fetchone()
    assert held == (users * TOGGLES // 2, True)
