"""Verify: incremental membership and timers against each segment's full-recompute query.

Membership is compared in one set-based pass per segment, in a single REPEATABLE READ snapshot,
so concurrent writers never show up as differences: their triggers change membership in the
same transaction as their events. Timers are checked by re-evaluating the users through the
deployed program inside a savepoint that is rolled back, and comparing what it would keep with
what is stored. Repair calls the deployed program's own re-evaluation function with cause
`repair`, so the fix is logged like any other change and follows the program as it evolves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from segql import rebuild, run
from segql.errors import SegqlError
from segql.sqlfiles import query

Progress = Callable[[str, int, int], None]  # (step, done, total)
CHUNK = 5000
_FILE = "verify.sql"


class VerifyError(SegqlError):
    """segql cannot verify this database."""


@dataclass(frozen=True)
class TimerDiff:
    segment: str
    user_id: str
    stored: datetime | None
    expected: datetime | None


@dataclass
class Report:
    """Every difference found; empty lists mean the incremental state is exact."""

    clock: datetime | None = None
    segments: list[str] = field(default_factory=list)
    checked_users: int | None = None  # None: everyone
    missing: list[tuple[str, str]] = field(default_factory=list)  # should be members, are not
    extra: list[tuple[str, str]] = field(default_factory=list)  # are members, should not be
    timers: list[TimerDiff] = field(default_factory=list)
    overdue: list[tuple[str, str, datetime]] = field(default_factory=list)
    orphans: list[tuple[str, str, datetime]] = field(default_factory=list)
    repaired: int = 0

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.timers or self.overdue or self.orphans)

    def users(self) -> list[str]:
        found = {u for _, u in self.missing} | {u for _, u in self.extra}
        found |= {t.user_id for t in self.timers} | {o[1] for o in self.overdue}
        return sorted(found)


def _q(name: str) -> str:
    return query(name, _FILE)


def verify(
    conn: psycopg.Connection,
    names: list[str] | None = None,
    *,
    sample: int | None = None,
    repair: bool = False,
    progress: Progress | None = None,
) -> Report:
    """Compare, and with `repair` fix and compare again; the report is of the last comparison."""
    names = list(names or [])
    conn.commit()
    if repair:
        # Due timers first, at their own instants with cause 'time', as the worker would.
        run.tick(conn)
    report = _compare(conn, names, sample, progress)
    if not repair or report.clean:
        return report
    users = report.users()
    _repair(conn, users, progress)
    if report.orphans:
        with conn.transaction():
            conn.execute(_q("verify_delete_orphans"))
    again = _compare(conn, names, None, progress, only=None if report.orphans else users)
    again.checked_users = report.checked_users
    again.repaired = len(users)
    return again


def _compare(
    conn: psycopg.Connection,
    names: list[str],
    sample: int | None,
    progress: Progress | None,
    only: list[str] | None = None,
) -> Report:
    report = Report()
    conn.commit()  # the snapshot must be the transaction's first statement
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        segments = _segments(conn, names)
        report.segments = list(segments)
        report.clock = _scalar(conn, _q("verify_clock"), {})
        users = only
        if users is None and sample is not None:
            users = list(_scalar(conn, _q("verify_sample"), {"size": sample}))
        report.checked_users = None if users is None else len(users)
        for done, (name, full) in enumerate(segments.items()):
            if progress:
                progress("membership", done, len(segments))
            _membership(conn, name, full, users, report)
        if progress:
            progress("membership", len(segments), len(segments))
        args = {"names": report.segments, "users": users}
        report.overdue = [tuple(r) for r in conn.execute(_q("verify_overdue"), args)]
        if not names and users is None:
            report.orphans = [tuple(r) for r in conn.execute(_q("verify_orphan_timers"))]
    _timers(conn, report, users, progress)
    return report


def _segments(conn: psycopg.Connection, names: list[str]) -> dict[str, str]:
    found = {r[0]: r[1] for r in conn.execute(_q("verify_segments"), {"names": names})}
    unknown = [n for n in names if n not in found]
    if unknown:
        raise VerifyError(f"segment '{unknown[0]}' is not deployed (see `segql list`)")
    return found


def _membership(
    conn: psycopg.Connection, name: str, full: str, users: list[str] | None, report: Report
) -> None:
    statement = sql.SQL(_q("verify_membership")).format(
        full=sql.SQL(full),  # generated by segql, stored in the catalog
        segment=sql.Literal(name),
        users=sql.Literal(users),
    )
    for user_id, expected in conn.execute(statement):
        (report.missing if expected else report.extra).append((name, user_id))


def _timers(
    conn: psycopg.Connection, report: Report, users: list[str] | None, progress: Progress | None
) -> None:
    """What the program would keep as timers for the users, against what is stored."""
    refresh = run.refresh_function(conn)
    if refresh is None or not report.segments:
        return
    everyone = users if users is not None else [r[0] for r in conn.execute(_q("verify_users"))]
    conn.commit()
    for start in range(0, len(everyone), CHUNK):
        if progress:
            progress("timers", start, len(everyone))
        chunk = everyone[start : start + CHUNK]
        found = _timer_chunk(conn, refresh, chunk, report.segments)
        # A timer already due is reported as overdue: the tick, not a repair, applies it.
        report.timers += [t for t in found if not _overdue(t, report.clock)]
    if progress:
        progress("timers", len(everyone), len(everyone))


def _timer_chunk(
    conn: psycopg.Connection, refresh: sql.Composable, users: list[str], names: list[str]
) -> list[TimerDiff]:
    args = {"users": users, "names": names}
    with conn.transaction():
        conn.execute(_q("verify_lock_users"), args)
        stored = _timer_map(conn, args)
        # The savepoint is rolled back: nothing the re-evaluation does is kept or announced.
        with conn.transaction(force_rollback=True):
            conn.execute(sql.SQL("SELECT {}(%s::text[], 'verify')").format(refresh), [users])
            expected = _timer_map(conn, args)
    keys = sorted(set(stored) | set(expected))
    return [
        TimerDiff(seg, user, stored.get((seg, user)), expected.get((seg, user)))
        for seg, user in keys
        if stored.get((seg, user)) != expected.get((seg, user))
    ]


def _overdue(diff: TimerDiff, clock: datetime | None) -> bool:
    return diff.stored is not None and clock is not None and diff.stored <= clock


def _timer_map(
    conn: psycopg.Connection, args: dict[str, list[str]]
) -> dict[tuple[str, str], datetime]:
    return {(r[0], r[1]): r[2] for r in conn.execute(_q("verify_timers_of"), args)}


def _repair(conn: psycopg.Connection, users: list[str], progress: Progress | None) -> None:
    if not users:
        return
    refresh = run.refresh_function(conn)
    if refresh is None:
        raise VerifyError("no program is deployed: deploy the segments again to rebuild them")
    conn.commit()
    for start in range(0, len(users), CHUNK):
        if progress:
            progress("repair", start, len(users))
        chunk = users[start : start + CHUNK]
        with conn.transaction():
            conn.execute(_q("verify_lock_users"), {"users": chunk})
            rebuild.sync_groups(conn, chunk)
            conn.execute(sql.SQL("SELECT {}(%s::text[], 'repair')").format(refresh), [chunk])
    if progress:
        progress("repair", len(users), len(users))


def _scalar(conn: psycopg.Connection, statement: str, args: dict[str, object]) -> Any:
    row = conn.execute(statement, args).fetchone()
    return None if row is None else row[0]
