"""What the dashboard's pages read: plain functions from a connection to values."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import psycopg

from segql import estimate, history
from segql.deploy import DeployError
from segql.diagnostics import DefinitionError
from segql.errors import SegqlError
from segql.feed import Change
from segql.parse import parse_text
from segql.sqlfiles import query

Range = Literal["hour", "day", "week"]
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "hour": (timedelta(hours=1), timedelta(minutes=1)),
    "day": (timedelta(days=1), timedelta(minutes=15)),
    "week": (timedelta(weeks=1), timedelta(hours=2)),
}
MEMBERS_PAGE = 100


def _sql(name: str) -> str:
    return query(name, "dashboard.sql")


@dataclass(frozen=True)
class SegmentRow:
    name: str
    version: int
    comment: str | None
    definition: str
    deployed_at: datetime
    size: int


def segments(conn: psycopg.Connection) -> list[SegmentRow]:
    return [SegmentRow(*r) for r in conn.execute(_sql("segments"))]


@dataclass(frozen=True)
class SegmentPage:
    row: SegmentRow
    full_query: str
    compiled: str | None
    recent: list[Change]


def segment(conn: psycopg.Connection, name: str, recent: int = 30) -> SegmentPage:
    found = conn.execute(_sql("segment"), {"segment": name}).fetchone()
    if found is None:
        raise DeployError(f"segment '{name}' is not deployed")
    n, version, comment, definition, deployed_at, full_query, compiled, size = found
    changes = [
        Change(*r) for r in conn.execute(_sql("recent_changes"), {"segment": name, "limit": recent})
    ]
    row = SegmentRow(n, version, comment, definition, deployed_at, size)
    return SegmentPage(row, full_query, compiled, changes[::-1])


def size_series(conn: psycopg.Connection, name: str, span: str) -> dict[str, Any]:
    """Size at the end of each step, and enters and exits within it, over the last hour, day
    or week (from the change log), as columns for the chart."""
    if span not in RANGES:
        raise SegqlError(f"'{span}' is not a range; use one of {', '.join(RANGES)}")
    length, step = RANGES[span]
    points = int(length / step)
    rows = conn.execute(
        _sql("size_series"),
        {"segment": name, "span": length, "step": step, "points": points},
    ).fetchall()
    return {
        "t": [r[0].timestamp() for r in rows],
        "size": [int(r[1]) for r in rows],
        "enters": [int(r[2]) for r in rows],
        "exits": [int(r[3]) for r in rows],
    }


def _pattern(search: str) -> str:
    escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def members_page(
    conn: psycopg.Connection, name: str, search: str = "", offset: int = 0
) -> dict[str, Any]:
    rows = conn.execute(
        _sql("members_page"),
        {"segment": name, "pattern": _pattern(search), "limit": MEMBERS_PAGE, "offset": offset},
    ).fetchall()
    return {
        "total": int(rows[0][2]) if rows else 0,
        "offset": offset,
        "members": [{"user_id": r[0], "since": r[1].isoformat()} for r in rows],
    }


def members_all(conn: psycopg.Connection, name: str, search: str = "") -> Iterator[tuple]:
    with conn.cursor(name="members_csv") as cur:
        cur.execute(_sql("members_all"), {"segment": name, "pattern": _pattern(search)})
        yield from cur


@dataclass(frozen=True)
class Interval:
    segment: str
    entered: datetime
    left: datetime | None


def user_history(conn: psycopg.Connection, user_id: str) -> list[Change]:
    return [Change(*r) for r in conn.execute(_sql("user_history"), {"user_id": user_id})]


def intervals(changes: list[Change]) -> list[Interval]:
    """Memberships over time: each enter paired with the exit that ended it."""
    open_: dict[str, datetime] = {}
    out: list[Interval] = []
    for c in changes:
        if c.kind == "enter":
            open_[c.segment] = c.at
        elif c.segment in open_:
            out.append(Interval(c.segment, open_.pop(c.segment), c.at))
    out.extend(Interval(s, at, None) for s, at in open_.items())
    return sorted(out, key=lambda i: (i.segment, i.entered))


def explanations(conn: psycopg.Connection, user_id: str) -> list[history.Explanation]:
    return [history.why(conn, s.name, user_id) for s in segments(conn)]


def draft(conn: psycopg.Connection, text: str, timeout: float) -> dict[str, Any]:
    """The estimate of a pasted definition, or where it is wrong."""
    try:
        statements = parse_text(text, "draft")
        results = estimate.estimate(conn, statements, timeout=timeout)
    except DefinitionError as exc:
        return {
            "error": {
                "message": exc.message,
                "problem": exc.problem,
                "fix": exc.fix,
                "line": exc.line,
                "col": exc.col,
            }
        }
    except SegqlError as exc:
        return {"error": {"message": exc.message, "problem": exc.message}}
    if not results:
        return {"error": {"message": "no CREATE SEGMENT statement found", "problem": ""}}
    return {"results": [r.as_json() for r in results]}
