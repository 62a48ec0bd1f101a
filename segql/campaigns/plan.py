"""Changes to deliveries: one row per (campaign, change), in the transaction that moves the cursor.

A campaign's cursor is a snapshot (as a feed consumer's base, see segql/feed.py): planning locks
the campaign's row (another planner skips it), reads the changes of every transaction visible in
the current snapshot and not in the cursor, writes their deliveries and stores the current
snapshot as the new cursor, all in one transaction. A crash before the commit plans nothing, after
it everything; the unique (campaign, seq) key would refuse a second row for a change anyway.

A change becomes a `pending` delivery due at its instant plus AFTER, moved to the end of the
user's quiet hours, or a `skipped` one with the reason (the cap was reached, the template failed).
Caps count what has been planned, in commit order, so retries never take a slot.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

import jinja2
import psycopg

from segql.campaigns import payload, quiet
from segql.sqlfiles import query

SQL = "campaigns.sql"


def q(name: str) -> str:
    return query(name, SQL)


@dataclass(frozen=True)
class _Rules:
    name: str
    segment: str
    kind: str
    after: Decimal | None
    cap_limit: int | None
    cap_secs: Decimal | None
    quiet: tuple[time, time] | None
    template: jinja2.Template | None
    version: int


def plan_all(conn: psycopg.Connection) -> int:
    """Plan every campaign (each in its own transaction); the number of deliveries written."""
    names = [r[0] for r in conn.execute(q("campaign_names"))]
    conn.commit()
    return sum(plan_campaign(conn, name) for name in names)


def plan_campaign(conn: psycopg.Connection, name: str) -> int:
    with conn.transaction():
        row = conn.execute(q("lock_campaign"), {"name": name}).fetchone()
        if row is None:
            return 0  # dropped, or another worker is planning it right now
        rules, base = _rules(row), str(row[10])
        snapshot = conn.execute(q("current_snapshot")).fetchone()[0]  # type: ignore[index]
        changes = conn.execute(
            q("new_changes"),
            {"segment": rules.segment, "kind": rules.kind, "base": base, "snapshot": snapshot},
        ).fetchall()
        rows = _deliveries(conn, rules, changes)
        if rows:
            with conn.cursor() as cur:
                cur.executemany(q("insert_delivery"), rows)
            conn.execute(q("ring_senders"))
        conn.execute(q("advance_cursor"), {"snapshot": snapshot, "name": name})
    return len(rows)


def _rules(row: tuple[Any, ...]) -> _Rules:
    name, segment, kind, after, cap_limit, cap_secs, q_from, q_to, template, version = row[:10]
    return _Rules(
        name,
        segment,
        kind,
        after,
        cap_limit,
        cap_secs,
        (q_from, q_to) if q_from is not None else None,
        payload.compile_template(template) if template is not None else None,
        version,
    )


def _deliveries(
    conn: psycopg.Connection, rules: _Rules, changes: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    counted = _recent(conn, rules, changes)
    out = []
    for seq, user_id, at, cause, version, traits in changes:
        ctx = payload.context(
            campaign=rules.name,
            segment=rules.segment,
            kind=rules.kind,
            user_id=user_id,
            at=at,
            cause=cause,
            seq=seq,
            traits=traits if isinstance(traits, dict) else {},
        )
        row = {
            "campaign": rules.name,
            "seq": seq,
            "segment": rules.segment,
            "user_id": user_id,
            "kind": rules.kind,
            "change_at": at,
            "webhook_id": webhook_id(rules.name, seq),
            "status": "pending",
            "reason": None,
            "due_at": _due(rules, at, ctx["traits"]),
            "body": None,
        }
        if rules.quiet is not None and row["due_at"] > _after(rules, at):
            row["reason"] = "held by quiet hours"
        capped = _capped(rules, counted[user_id], at)
        if capped is not None:
            row.update(status="skipped", reason=capped, due_at=None)
        else:
            _render(rules, ctx, version, row)
        if row["status"] == "pending":
            bisect.insort(counted[user_id], at)
        out.append(row)
    return out


def webhook_id(campaign: str, seq: int) -> str:
    """Stable for a (campaign, change): every retry, by any worker, carries the same id."""
    return f"msg_{campaign}_{seq}"


def _recent(
    conn: psycopg.Connection, rules: _Rules, changes: list[tuple[Any, ...]]
) -> dict[str, list[datetime]]:
    counted: dict[str, list[datetime]] = defaultdict(list)
    if rules.cap_limit is None or rules.cap_secs is None or not changes:
        return counted
    since = min(c[2] for c in changes) - timedelta(seconds=float(rules.cap_secs))
    users = sorted({c[1] for c in changes})
    for user_id, at in conn.execute(
        q("recent_planned"), {"campaign": rules.name, "users": users, "since": since}
    ):
        counted[user_id].append(at)
    return counted


def _capped(rules: _Rules, planned: list[datetime], at: datetime) -> str | None:
    """The reason a change is over the cap, or None. The window is rolling: (at - PER, at]."""
    if rules.cap_limit is None or rules.cap_secs is None:
        return None
    since = at - timedelta(seconds=float(rules.cap_secs))
    inside = bisect.bisect_right(planned, at) - bisect.bisect_right(planned, since)
    if inside < rules.cap_limit:
        return None
    return f"cap: {rules.cap_limit} per {_seconds_text(rules.cap_secs)} already planned"


def _after(rules: _Rules, at: datetime) -> datetime:
    return at + timedelta(seconds=float(rules.after or 0))


def _due(rules: _Rules, at: datetime, traits: dict[str, Any]) -> datetime:
    due = _after(rules, at)
    if rules.quiet is None:
        return due
    return quiet.release(due, quiet.zone(traits.get("timezone")), rules.quiet)


def _render(rules: _Rules, ctx: dict[str, Any], version: int, row: dict[str, Any]) -> None:
    if rules.template is None:
        data = payload.default_data(ctx, version)
    else:
        try:
            data = payload.render_data(rules.template, ctx)
        except payload.PayloadError as err:
            row.update(status="skipped", reason=f"payload: {err}", due_at=None)
            return
    row["body"] = payload.envelope(rules.kind, row["change_at"], data)


def _seconds_text(secs: Decimal) -> str:
    value = int(secs)
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} seconds"
