"""Sending: claim one due delivery, POST it signed, record the outcome, all in one transaction.

The claimed row stays locked (FOR UPDATE SKIP LOCKED) while the request is in flight, so several
senders in several workers share the work and no delivery is sent by two at once; a sender that
dies mid-request drops its connection and with it the lock, and the delivery goes out again with
the same webhook-id. HTTP is at least once: receivers dedupe on webhook-id.

Only 2xx is success. Redirects are not followed (a 3xx is a failure). A 410 Gone disables the
campaign until it is redeployed or replayed. Anything else is retried on the schedule, or after
the receiver's Retry-After, and the delivery is dead (`failed`) after the last try.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time

import httpx
import psycopg

from segql.campaigns import guard, quiet, sign
from segql.campaigns.plan import q
from segql.errors import SegqlError

log = logging.getLogger("segql.worker")

# The Svix schedule: about three days from the first try to the last.
SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
SCHEDULE_TEXT = "5s,5m,30m,2h,5h,10h,10h"
TIMEOUT = 15.0
JITTER = 0.1  # each delay is moved by up to 10 % either way, so retries do not arrive in waves
MAX_RETRY_AFTER = 36000.0
ERROR_CHARS = 500


@dataclass(frozen=True)
class Settings:
    schedule: tuple[float, ...] = SCHEDULE
    timeout: float = TIMEOUT
    allow: str = ""  # more hosts or networks for the guard, beside SEGQL_WEBHOOK_ALLOW


@dataclass(frozen=True)
class Claim:
    """A claimed delivery, as `claim_delivery` reads it."""

    id: int
    webhook_id: str
    body: str
    round_attempts: int
    url: str
    secret: str
    campaign: str
    user_left: bool
    clock: datetime  # segql.now() when claimed
    quiet_from: dt_time | None
    quiet_to: dt_time | None
    timezone: str | None

    def retry_at(self, delay: float) -> datetime:
        """`delay` from now, moved out of the user's quiet hours like the first try."""
        due = self.clock + timedelta(seconds=delay)
        if self.quiet_from is None or self.quiet_to is None:
            return due
        return quiet.release(due, quiet.zone(self.timezone), (self.quiet_from, self.quiet_to))


@dataclass(frozen=True)
class Outcome:
    status: int | None  # the HTTP status, None when there was no answer
    error: str | None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def parse_schedule(text: str) -> tuple[float, ...]:
    """'5s,5m,30m,2h' -> seconds; a bare number is seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
    out = []
    for part in (p.strip().lower() for p in text.split(",")):
        if not part:
            continue
        unit = next((u for u in ("ms", "s", "m", "h", "d") if part.endswith(u)), "")
        number = part[: len(part) - len(unit)] if unit else part
        try:
            value = float(number) * units.get(unit, 1.0)
        except ValueError:
            raise SegqlError(
                f"'{part}' in the retry schedule is not a delay; write e.g. '5s,5m,30m,2h'"
            ) from None
        if value < 0:
            raise SegqlError(f"'{part}' in the retry schedule is negative")
        out.append(value)
    return tuple(out)


def client(settings: Settings) -> httpx.Client:
    return httpx.Client(timeout=settings.timeout, follow_redirects=False, trust_env=False)


def send_one(conn: psycopg.Connection, http: httpx.Client, settings: Settings) -> bool:
    """Claim, send and record one due delivery; False when none is due (or all are claimed)."""
    with conn.transaction():
        row = conn.execute(q("claim_delivery")).fetchone()
        if row is None:
            return False
        claim = Claim(*row)
        if claim.user_left:
            conn.execute(q("mark_left"), {"id": claim.id, "reason": "left the segment"})
            return True
        outcome = post(http, claim.url, claim.secret, claim.webhook_id, claim.body, settings.allow)
        _record(conn, settings, claim, outcome)
    return True


def post(
    http: httpx.Client, url: str, secret: str, webhook_id: str, body: str, allow: str = ""
) -> Outcome:
    try:
        guard.check(url, guard.allowlist(f"{guard.allowlist_text()},{allow}"))
    except guard.Blocked as err:
        return Outcome(None, f"blocked: {err.message}")
    stamp = int(time.time())
    try:
        response = http.post(
            url, content=body.encode(), headers=sign.headers(secret, webhook_id, stamp, body)
        )
    except httpx.TimeoutException:
        return Outcome(None, f"no answer within {http.timeout.read} s")
    except httpx.HTTPError as err:
        return Outcome(None, f"{type(err).__name__}: {err}"[:ERROR_CHARS])
    error = None if 200 <= response.status_code < 300 else response.text[:ERROR_CHARS]
    return Outcome(response.status_code, error, retry_after(response.headers.get("retry-after")))


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds or an HTTP date."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    base = datetime.now(UTC).timestamp() if now is None else now
    return min(max(0.0, when.timestamp() - base), MAX_RETRY_AFTER)


def _record(conn: psycopg.Connection, settings: Settings, claim: Claim, outcome: Outcome) -> None:
    base = {"id": claim.id, "status": outcome.status, "error": outcome.error}
    if outcome.ok:
        conn.execute(q("mark_delivered"), {"id": claim.id, "status": outcome.status})
    elif outcome.status == 410:
        reason = "the endpoint answered 410 Gone: campaign disabled until redeployed or replayed"
        conn.execute(q("mark_failed"), {**base, "reason": reason})
        conn.execute(q("disable_campaign"), {"name": claim.campaign, "reason": reason})
        log.warning("campaign %s disabled: its endpoint answered 410 Gone", claim.campaign)
    elif claim.round_attempts >= len(settings.schedule):
        reason = f"dead after {claim.round_attempts + 1} attempts"
        conn.execute(q("mark_failed"), {**base, "reason": reason})
    else:
        delay = next_delay(settings.schedule, claim.round_attempts, outcome.retry_after)
        due = claim.retry_at(delay)
        conn.execute(q("mark_retry"), {**base, "due": due, "reason": "retrying"})


def next_delay(
    schedule: tuple[float, ...], round_attempts: int, retry_after: float | None
) -> float:
    """The wait before the next try: the receiver's Retry-After if it gave one, else the
    schedule's step for this attempt with jitter."""
    if retry_after is not None:
        return retry_after
    step = schedule[round_attempts]
    return step * (1 + random.uniform(-JITTER, JITTER))
