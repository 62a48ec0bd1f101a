"""Zones in the catalog: `CREATE ZONE` definitions deployed beside the segments that read them.

A segment that reads a zone (in_zone, at the top level or in a FILTER) compiles the zone's
geometry into its own SQL, and the geometry is part of the segment's meaning. So a deploy that
changes a zone changes every segment reading it: each gets a new version and is re-evaluated
for every user in the same transaction (changes logged with cause 'redeploy'), and features
filtered by the zone are computed again. A zone no segment reads is only stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from segql import ir
from segql.check import Checker
from segql.parse import CreateZone, Statement, parse_text


@dataclass
class ZoneChanges:
    created: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def nothing_to_do(self) -> bool:
        return not (self.created or self.changed or self.dropped)


def is_zone(stmt: Statement) -> bool:
    return isinstance(stmt.tree, CreateZone)


def deployed(conn: psycopg.Connection) -> dict[str, ir.Zone]:
    """The zones in the catalog, re-checked from their stored definitions."""
    rows = conn.execute("SELECT name, definition FROM segql.zones ORDER BY name").fetchall()
    checker = Checker()
    for name, definition in rows:
        stmt = parse_text(definition + ";", f"<deployed zone {name}>")[0]
        checker.source = stmt.source
        checker.zone_statement(stmt)
    return {z.name: z for z in checker.defined_zones}


def readers(segments: Iterable[ir.Segment], names: set[str]) -> dict[str, list[str]]:
    """For each zone of `names`, the segments that read it."""
    out: dict[str, list[str]] = {}
    for seg in segments:
        for zone in set(seg.zones) & names:
            out.setdefault(zone, []).append(seg.name)
    return out


def changes(current: dict[str, ir.Zone], defined: list[ir.Zone], dropped: set[str]) -> ZoneChanges:
    out = ZoneChanges()
    for zone in defined:
        old = current.get(zone.name)
        if old is None:
            out.created.append(zone.name)
        elif old == zone:
            out.unchanged.append(zone.name)
        else:
            out.changed.append(zone.name)
    out.dropped = sorted(dropped & set(current))
    return out


def record(conn: psycopg.Connection, defined: list[ir.Zone], result: ZoneChanges) -> None:
    """Store new and changed zones, forget dropped ones."""
    fresh = set(result.created) | set(result.changed)
    for zone in defined:
        if zone.name not in fresh:
            continue
        conn.execute(
            """INSERT INTO segql.zones (name, version, definition, source)
               VALUES (%s, 1, %s, %s)
               ON CONFLICT (name) DO UPDATE SET version = segql.zones.version + 1,
                   definition = excluded.definition, source = excluded.source,
                   deployed_at = now()""",
            [zone.name, zone.text, zone.source],
        )
    if result.dropped:
        conn.execute("DELETE FROM segql.zones WHERE name = ANY(%s)", [result.dropped])


@dataclass
class ZoneInfo:
    name: str
    version: int
    definition: str
    deployed_at: Any
    segments: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "definition": self.definition,
            "deployed_at": self.deployed_at.isoformat(),
            "segments": self.segments,
        }


def list_zones(conn: psycopg.Connection, segments: Iterable[ir.Segment]) -> list[ZoneInfo]:
    rows = conn.execute(
        "SELECT name, version, definition, deployed_at FROM segql.zones ORDER BY name"
    ).fetchall()
    read = readers(segments, {r[0] for r in rows})
    return [ZoneInfo(r[0], r[1], r[2], r[3], sorted(read.get(r[0], []))) for r in rows]
