"""What the catalog knows about a segment (`segql show`) and going back to an earlier version
(`segql rollback`).

A rollback is a deploy of the earlier version's definition: it is checked against the segments
deployed now, gets the next version number (versions only grow, so the log's `version` column
keeps meaning one definition), and only users whose membership differs get changes, with cause
`redeploy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from segql import deploy
from segql.parse import parse_text
from segql.sqlfiles import query


@dataclass(frozen=True)
class Version:
    version: int
    deployed_at: datetime
    definition: str
    comment: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "deployed_at": self.deployed_at.isoformat(),
            "definition": self.definition,
            "comment": self.comment,
        }


@dataclass(frozen=True)
class Shown:
    name: str
    version: int
    size: int
    definition: str
    comment: str | None
    depends_on: list[str]
    read_by: list[str]
    versions: list[Version]

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "size": self.size,
            "definition": self.definition,
            "comment": self.comment,
            "depends_on": self.depends_on,
            "read_by": self.read_by,
            "versions": [v.as_json() for v in self.versions],
        }


def show(conn: psycopg.Connection, name: str) -> Shown:
    deploy.require_segment(conn, name)
    row = conn.execute(query("show_segment"), {"name": name}).fetchone()
    assert row is not None
    versions = [Version(*r) for r in conn.execute(query("segment_versions"), {"name": name})]
    return Shown(name, row[0], row[1], row[2], row[3], list(row[4] or []), list(row[5]), versions)


def rollback(conn: psycopg.Connection, name: str, to: int | None = None) -> tuple[int, int]:
    """Deploy the definition of version `to` (default: the one before the current) again;
    returns (the version rolled back to, the version it is deployed as)."""
    shown = show(conn, name)
    earlier = [v for v in shown.versions if v.version < shown.version]
    if to is None:
        if not earlier:
            raise deploy.DeployError(
                f"segment '{name}' has only version {shown.version}: nothing to roll back to"
            )
        target = earlier[-1]
    else:
        found = [v for v in shown.versions if v.version == to]
        if not found:
            known = ", ".join(str(v.version) for v in shown.versions)
            raise deploy.DeployError(
                f"segment '{name}' has no version {to}; its versions are {known} "
                f"(segql show {name})"
            )
        target = found[0]
    if target.definition == shown.definition and target.comment == shown.comment:
        raise deploy.DeployError(
            f"version {target.version} of '{name}' is the definition deployed now "
            f"(v{shown.version})"
        )
    statements = parse_text(target.definition + ";", f"<{name} v{target.version}>")
    conn.rollback()
    result = deploy.deploy(conn, statements)
    conn.commit()
    now = show(conn, name).version if result.changed else shown.version
    return target.version, now
