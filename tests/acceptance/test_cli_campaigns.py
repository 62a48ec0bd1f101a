"""Campaigns as a user runs them: deploy and compile with segments, the worker sends, the
campaigns commands report, replay and print the secret, drop removes."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import psycopg
from standardwebhooks.webhooks import Webhook

from segql.campaigns.receiver import Answer, Receiver

Cli = Callable[..., CompletedProcess[str]]


def ok(result: CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def definitions(url: str) -> str:
    return f"""
CREATE SEGMENT carted AS did('add_to_cart');
CREATE CAMPAIGN hello ON ENTER carted SEND WEBHOOK '{url}'
  PAYLOAD '{{"who": {{{{ user_id | tojson }}}}, "plan": {{{{ traits.plan | tojson }}}}}}';
"""


def test_deploy_send_report_replay_drop(
    segql_cli: Cli, cli_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    healthy = [False]

    def answer(receiver: Receiver, webhook_id: str) -> Answer:
        return Answer(200 if healthy[0] else 500)

    with Receiver(answer) as receiver:
        path = tmp_path / "shop.sql"
        path.write_text(definitions(receiver.url))
        assert "INSERT INTO segql.campaigns" in ok(segql_cli("compile", str(path)))
        out = ok(segql_cli("deploy", str(path)))
        assert "created: carted" in out and "campaigns created: hello" in out
        secret = ok(segql_cli("campaigns", "secret", "hello")).strip()
        assert secret.startswith("whsec_")

        env = {**cli_env, "SEGQL_WEBHOOK_ALLOW": "127.0.0.1"}
        log = (tmp_path / "worker.log").open("w")
        worker = subprocess.Popen(
            [sys.executable, "-m", "segql", "worker", "--retry-schedule", "0.1s,0.1s"],
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute("SELECT segql.identify('ann', '{\"plan\": \"pro\"}')")
                conn.execute("SELECT segql.track('ann', 'add_to_cart', '{}')")
            _wait(lambda: _dead(database_url))
            failed = ok(segql_cli("campaigns", "deliveries", "hello", "--failed", "--json"))
            (row,) = [json.loads(line) for line in failed.splitlines()]
            assert row["attempts"] == 3 and row["last_status"] == 500
            healthy[0] = True
            assert "1 delivery queued again" in ok(segql_cli("campaigns", "replay", "hello"))
            assert receiver.wait_for(1, timeout=15)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(15)
            log.close()
        request = next(iter(receiver.delivered().values()))
        headers = {
            "webhook-id": request.webhook_id,
            "webhook-timestamp": request.timestamp,
            "webhook-signature": request.signature,
        }
        body = Webhook(secret).verify(request.body, headers)
        assert body["data"] == {"who": "ann", "plan": "pro"}
        (stats,) = json.loads(ok(segql_cli("campaigns", "list", "--json")))
        assert (stats["sent"], stats["failed"], stats["pending"]) == (1, 0, 0)

        assert "dropped: hello" in ok(segql_cli("drop", "hello"))
        assert "No campaigns deployed" in ok(segql_cli("campaigns", "list"))


def test_bad_campaign_is_refused_with_its_position(segql_cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "shop.sql"
    path.write_text(
        "CREATE SEGMENT carted AS did('add_to_cart');\n"
        "CREATE CAMPAIGN c ON ENTER carted SEND WEBHOOK 'mailto:me@example.com';\n"
    )
    result = segql_cli("deploy", str(path))
    assert result.returncode == 1
    assert f"Error: {path}:2:48: 'mailto:me@example.com' is not an http(s) URL" in result.stderr
    missing = segql_cli("campaigns", "secret", "nope")
    assert missing.returncode == 1 and "campaign 'nope' is not deployed" in missing.stderr


def _dead(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM segql.deliveries WHERE status = 'failed'")
        return bool(row.fetchone() == (1,))


def _wait(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
