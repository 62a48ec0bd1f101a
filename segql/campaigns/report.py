"""What campaigns did: the `campaign_stats` and `campaign_deliveries` views, replay, secrets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from segql.campaigns.plan import q
from segql.errors import SegqlError


class UnknownCampaign(SegqlError):
    """No such campaign."""


@dataclass(frozen=True)
class Stats:
    campaign: str
    segment: str
    kind: str
    url: str
    version: int
    disabled_at: datetime | None
    disabled_reason: str | None
    sent: int
    pending: int
    failed: int
    skipped: int
    last_delivered_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {k: _jsonable(v) for k, v in self.__dict__.items()}


DELIVERY_COLUMNS = (
    "webhook_id",
    "seq",
    "user_id",
    "kind",
    "change_at",
    "status",
    "reason",
    "due_at",
    "attempts",
    "last_status",
    "last_error",
    "last_attempt_at",
    "delivered_at",
)


def stats(conn: psycopg.Connection) -> list[Stats]:
    return [Stats(*row) for row in conn.execute(q("campaign_stats"))]


def deliveries(conn: psycopg.Connection, name: str, failed: bool = False) -> list[dict[str, Any]]:
    require(conn, name)
    rows = conn.execute(q("campaign_deliveries"), {"campaign": name, "failed": failed})
    return [dict(zip(DELIVERY_COLUMNS, (_jsonable(v) for v in row), strict=True)) for row in rows]


def replay(conn: psycopg.Connection, name: str, since: datetime | None = None) -> int:
    """Send dead deliveries again from the start of the retry schedule; enables the campaign."""
    require(conn, name)
    row = conn.execute(q("replay"), {"campaign": name, "since": since}).fetchone()
    return int(row[0]) if row else 0


def secret(conn: psycopg.Connection, name: str) -> str:
    row = conn.execute(q("campaign_secret"), {"name": name}).fetchone()
    if row is None:
        require(conn, name)
    assert row is not None
    return str(row[0])


def require(conn: psycopg.Connection, name: str) -> None:
    if conn.execute(q("campaign_secret"), {"name": name}).fetchone() is not None:
        return
    known = [r[0] for r in conn.execute(q("campaign_names"))]
    hint = f" Deployed: {', '.join(known)}." if known else " No campaign is deployed."
    raise UnknownCampaign(f"campaign '{name}' is not deployed.{hint}")


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
