"""Reach before deploy: how many users a definition selects right now, creating nothing.

Each segment's full-recompute query (the deploy's oracle) runs in one read-only, repeatable-read
transaction under a statement timeout, so every segment of a call is counted at the same snapshot
and clock, and the count is the size `segql deploy` of the same definitions would give.
Definitions may read deployed segments with `in_segment`; those are inlined as deployed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq

from segql import generate, zones
from segql.check import check
from segql.deploy import deployed
from segql.errors import SegqlError
from segql.models import store as models
from segql.parse import Statement, parse_text
from segql.plan import plan

DEFAULT_TIMEOUT = 30.0
DEFAULT_SAMPLE = 5


class EstimateError(SegqlError):
    """The reach estimate cannot be computed."""


@dataclass(frozen=True)
class Estimate:
    """One definition's exact reach now."""

    segment: str
    size: int
    overlap: dict[str, int] = field(default_factory=dict)  # deployed segment -> common users
    sample: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "size": self.size,
            "overlap": dict(self.overlap),
            "sample": list(self.sample),
        }


def queries(conn: psycopg.Connection, statements: Sequence[Statement]) -> dict[str, str]:
    """The estimate query of each segment in `statements`, by name, in file order.

    The statements are checked together with the deployed segments they do not redefine, as
    `segql deploy` would, so definition errors are the deploy's own.
    """
    current = deployed(conn)
    deployed_zones = zones.deployed(conn)
    live_models = models.load(conn)
    segments = check(
        list(statements), known_segments=current, zones=deployed_zones, models=live_models
    )
    names = [s.name for s in segments]
    tiers = {s.tiers for s in segments} - {None}
    texts = {
        d.definition: d.name
        for d in current.values()
        if d.name not in names and d.segment.tiers not in tiers
    }
    kept = [parse_text(text + ";", f"<deployed {name}>")[0] for text, name in texts.items()]
    everything = check([*statements, *kept], zones=deployed_zones, models=live_models)
    the_plan = plan(everything, {s.name: 0 for s in everything})
    return {name: _query(generate.full_query(the_plan.by_name(name))) for name in names}


def _query(full_query: str) -> str:
    return generate.template("estimate.sql.j2", reach=full_query.replace("%", "%%").strip())


def estimate(
    conn: psycopg.Connection,
    statements: Sequence[Statement],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    sample: int = DEFAULT_SAMPLE,
) -> list[Estimate]:
    """The exact reach of every segment in `statements`, in one snapshot (see the module doc)."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        raise EstimateError("estimate needs a connection with no transaction in progress")
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(
            "SELECT set_config('statement_timeout', %s, true)", [f"{int(timeout * 1000)}ms"]
        )
        try:
            return [_run(conn, name, q, sample) for name, q in queries(conn, statements).items()]
        except pg_errors.QueryCanceled:
            raise EstimateError(
                f"the estimate took longer than {timeout:g} s; give it more time with "
                "--timeout SECONDS"
            ) from None


def _run(conn: psycopg.Connection, name: str, sql_text: str, sample: int) -> Estimate:
    row = conn.execute(sql_text.encode(), {"sample": sample}).fetchone()
    assert row is not None
    size, overlap, picked = row
    return Estimate(name, int(size), {k: int(overlap[k]) for k in sorted(overlap)}, list(picked))


def script(conn: psycopg.Connection, statements: Sequence[Statement], sample: int) -> str:
    """Plain SQL that any client can run for the same answers: one query per segment."""
    cursor = psycopg.ClientCursor(conn)
    out = []
    for name, sql_text in queries(conn, statements).items():
        out.append(f"-- estimate {name}\n{cursor.mogrify(sql_text, {'sample': sample})};\n")
    return "\n".join(out)
