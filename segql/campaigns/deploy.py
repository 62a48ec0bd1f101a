"""Campaigns in the segment deploy's transaction: catalog rows, versions, secrets and cursors.

A new campaign's cursor is the snapshot of its deploy, so it fires for changes committed after
it, never for the segment's existing members. A changed campaign keeps its secret, cursor and
deliveries; a dropped one takes its deliveries with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from segql.campaigns import sign
from segql.campaigns.check import Campaign, check
from segql.campaigns.parse import CampaignDialect
from segql.campaigns.plan import q
from segql.errors import SegqlError
from segql.parse import Statement, parse_text


class CampaignError(SegqlError):
    """The campaign cannot be deployed."""


@dataclass
class CampaignResult:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    steps: list[tuple[str, str]] = field(default_factory=list)  # (label, SQL as run)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.created or self.changed or self.dropped)


@dataclass(frozen=True)
class _Deployed:
    name: str
    version: int
    definition: str
    campaign: Campaign | None  # None when its segment is gone


def deployed_names(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute(q("deployed_campaigns"))}


def deploy_campaigns(
    conn: psycopg.Connection,
    statements: list[Statement],
    segments: Iterable[str],
    *,
    prune: bool = False,
    drop: Iterable[str] = (),
) -> CampaignResult:
    """Bring the catalog to `statements` plus the kept deployed campaigns; `segments` are the
    segments that exist once the deploy commits."""
    segment_names = set(segments)
    drop_set = set(drop)
    current = _deployed(conn, segment_names)
    wanted = {c.name: c for c in check(statements, segment_names)}
    result = CampaignResult()
    for name, old in current.items():
        if name in wanted:
            continue
        if prune or name in drop_set:
            result.dropped.append(name)
            _run(conn, result, f"drop campaign {name}", q("drop_campaign"), {"name": name})
        elif old.campaign is None:
            raise CampaignError(
                f"campaign '{name}' reads a segment that would be dropped; "
                f"drop the campaign first (segql drop {name}) or change it"
            )
    for name, campaign in wanted.items():
        _upsert(conn, result, campaign, current.get(name))
    return result


def _deployed(conn: psycopg.Connection, segments: set[str]) -> dict[str, _Deployed]:
    out = {}
    for name, version, definition, _secret in conn.execute(q("deployed_campaigns")).fetchall():
        stmt = parse_text(definition + ";", f"<deployed {name}>", CampaignDialect)
        try:
            campaign: Campaign | None = check(stmt, segments)[0]
        except SegqlError:
            campaign = None
        out[name] = _Deployed(name, version, definition, campaign)
    return out


def _upsert(
    conn: psycopg.Connection, result: CampaignResult, campaign: Campaign, old: _Deployed | None
) -> None:
    if old is not None and old.campaign is not None and old.campaign == campaign:
        result.unchanged.append(campaign.name)
        return
    last = conn.execute(q("last_campaign_version"), {"name": campaign.name}).fetchone()
    version = int(last[0] if last else 0) + 1
    params = _params(campaign, version)
    if old is None:
        result.created.append(campaign.name)
        params["secret"] = sign.new_secret()
        _run(conn, result, f"campaign {campaign.name} v{version}", q("insert_campaign"), params)
    else:
        result.changed.append(campaign.name)
        _run(conn, result, f"campaign {campaign.name} v{version}", q("update_campaign"), params)
    conn.execute(q("insert_campaign_version"), params)


def _params(c: Campaign, version: int) -> dict[str, Any]:
    return {
        "name": c.name,
        "version": version,
        "definition": c.text,
        "comment": c.comment,
        "source": c.source,
        "segment": c.segment,
        "kind": c.kind,
        "url": c.url,
        "after_secs": c.after,
        "cap_limit": c.limit,
        "cap_secs": c.per,
        "quiet_from": c.quiet[0] if c.quiet else None,
        "quiet_to": c.quiet[1] if c.quiet else None,
        "payload": c.payload,
    }


def _run(
    conn: psycopg.Connection, result: CampaignResult, label: str, sql: str, params: dict[str, Any]
) -> None:
    """Run a catalog statement, keeping its text with the values (secrets hidden) for compile."""
    shown = {**params, "secret": "<generated>"} if "secret" in params else params
    with psycopg.ClientCursor(conn) as cur:
        result.steps.append((label, cur.mogrify(sql.rstrip(";"), shown) + ";"))
    conn.execute(sql, params)


def split(statements: list[Statement]) -> tuple[list[Statement], list[Statement]]:
    """(segment statements, campaign statements)."""
    from segql.campaigns.check import is_campaign

    campaigns = [s for s in statements if is_campaign(s)]
    return [s for s in statements if not is_campaign(s)], campaigns
