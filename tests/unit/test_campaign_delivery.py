"""Signing, quiet hours, the SSRF guard and the retry schedule, without a database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from segql.campaigns import deliver, guard, payload, quiet, sign
from segql.errors import SegqlError


def test_signatures_verify_with_the_reference_verifier() -> None:
    secret = sign.new_secret()
    assert secret.startswith("whsec_")
    body = payload.envelope("enter", datetime(2026, 1, 1, tzinfo=UTC), {"user_id": "é"})
    stamp = int(datetime.now(UTC).timestamp())
    headers = sign.headers(secret, "msg_c_1", stamp, body)
    assert Webhook(secret).verify(body.encode(), headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(sign.new_secret()).verify(body.encode(), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("é", "e").encode(), headers)


NY = quiet.zone("America/New_York")
NIGHT = (time(22), time(8))


@pytest.mark.parametrize(
    ("due", "released"),
    [
        # Spring forward (2026-03-08): 08:00 is EDT, 12:00 UTC, not 13:00.
        (datetime(2026, 3, 8, 5, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC)),
        # The evening before: 22:30 EST holds until the next 08:00 EDT.
        (datetime(2026, 3, 8, 3, 30, tzinfo=UTC), datetime(2026, 3, 8, 12, tzinfo=UTC)),
        # Fall back (2026-11-01): 08:00 is EST, 13:00 UTC.
        (datetime(2026, 11, 1, 5, tzinfo=UTC), datetime(2026, 11, 1, 13, tzinfo=UTC)),
        # Outside the window: unchanged.
        (datetime(2026, 3, 8, 15, tzinfo=UTC), datetime(2026, 3, 8, 15, tzinfo=UTC)),
    ],
)
def test_quiet_hours_end_at_local_time_across_daylight_saving(
    due: datetime, released: datetime
) -> None:
    assert quiet.release(due, NY, NIGHT) == released


def test_quiet_hours_inside_a_day_and_unknown_zones() -> None:
    lunch = (time(12), time(13))
    assert quiet.release(datetime(2026, 5, 1, 12, 30, tzinfo=UTC), UTC, lunch) == datetime(
        2026, 5, 1, 13, tzinfo=UTC
    )
    assert quiet.zone("Mars/Olympus") is UTC
    assert quiet.zone(42) is UTC
    assert quiet.zone("../../etc/passwd") is UTC


def test_a_window_ending_in_a_skipped_hour_ends_just_after_it() -> None:
    # 02:30 does not exist in New York on 2026-03-08; the window ends when the clocks read 03:30.
    early = (time(1), time(2, 30))
    got = quiet.release(datetime(2026, 3, 8, 6, 30, tzinfo=UTC), NY, early)
    assert got == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://localhost/x",
        "http://10.1.2.3/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://0.0.0.0/x",
        "http://[::ffff:127.0.0.1]/x",
    ],
)
def test_internal_addresses_are_blocked(url: str) -> None:
    with pytest.raises(guard.Blocked, match="SEGQL_WEBHOOK_ALLOW"):
        guard.check(url, guard.allowlist(""))


def test_the_allowlist_takes_hosts_and_networks() -> None:
    guard.check("http://127.0.0.1:8080/x", guard.allowlist("127.0.0.1"))
    guard.check("http://10.9.8.7/x", guard.allowlist(" 10.0.0.0/8 , hooks.internal"))
    guard.check("http://hooks.internal/x", guard.allowlist("10.0.0.0/8,hooks.internal"))
    with pytest.raises(guard.Blocked):
        guard.check("http://10.9.8.7/x", guard.allowlist("127.0.0.1"))
    guard.check("http://93.184.215.14/x", guard.allowlist(""))  # a public address


def test_retry_schedule_and_retry_after() -> None:
    assert deliver.parse_schedule(deliver.SCHEDULE_TEXT) == deliver.SCHEDULE
    assert deliver.parse_schedule("250ms, 2") == (0.25, 2.0)
    with pytest.raises(SegqlError, match="not a delay"):
        deliver.parse_schedule("5 minutes")
    assert deliver.retry_after("120") == 120.0
    assert deliver.retry_after("Wed, 01 Jan 2026 00:01:00 GMT", now=1767225600.0) == 60.0
    assert deliver.retry_after("soon") is None
    for attempt, step in enumerate(deliver.SCHEDULE):
        delay = deliver.next_delay(deliver.SCHEDULE, attempt, None)
        assert step * 0.9 <= delay <= step * 1.1
    assert deliver.next_delay(deliver.SCHEDULE, 0, 30.0) == 30.0
