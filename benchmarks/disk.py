"""What segql's tables take on disk, table by table, discovered from the catalog.

segql's per-user state is every table in schema `segql` except the data users write (`events`,
`profiles`), the change log and the catalog. Tables are found in `pg_class` rather than named
here, so state a new version of segql adds is counted without editing the benchmark; a
partitioned table counts as its root, with every partition's size and rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

SCHEMA = "segql"
DATA = frozenset({"events", "profiles"})
LOG = frozenset({"changes"})
# What describes segments and runs, not users: its size does not grow with the events.
CATALOG = frozenset(
    {
        "alembic_version",
        "clock",
        "consumers",
        "deploys",
        "features",
        "log_prunes",
        "rejects",
        "segment_versions",
        "segments",
    }
)

# Every table with storage whose partition root (or itself) is in the schema, grouped by root.
# pg_total_relation_size counts indexes and TOAST as well.
TABLES = """
SELECT root.relname, sum(pg_total_relation_size(c.oid))::bigint
FROM pg_class c
JOIN pg_class root ON root.oid = coalesce(pg_partition_root(c.oid), c.oid)
JOIN pg_namespace n ON n.oid = root.relnamespace
WHERE c.relkind IN ('r', 'm') AND n.nspname = %s
GROUP BY root.relname
ORDER BY root.relname
"""


@dataclass(frozen=True)
class Table:
    name: str
    bytes: int
    rows: int

    @property
    def is_state(self) -> bool:
        return self.name not in DATA | LOG | CATALOG

    def as_json(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "rows": self.rows, "mb": round(self.bytes / 2**20, 2)}


def tables(conn: psycopg.Connection) -> list[Table]:
    """Every table of schema segql with its size on disk and its exact row count."""
    sizes = conn.execute(TABLES, [SCHEMA]).fetchall()
    return [Table(name, size, _rows(conn, name)) for name, size in sizes]


def _rows(conn: psycopg.Connection, name: str) -> int:
    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(SCHEMA, name))
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0
