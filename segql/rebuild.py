"""Rebuild: recompute every piece of incremental state from the events and profiles.

Feature state, the user list, memberships and timers are all derived data; `rebuild` throws the
derived state away and evaluates every user again through the live program, at the current
clock. Where the incremental state was right nothing is logged; where it was not (a restore
from an old backup, a bug, a clock moved by hand), the differences are logged as changes with
the given cause, so listeners see the repair like any other change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from segql import generate
from segql.deploy import deployed
from segql.errors import SegqlError
from segql.plan import Plan, plan
from segql.sqlfiles import query

CHUNK = 5000
Progress = Callable[[int, int], None]  # (users done, users total)


class NoProgram(SegqlError):
    """Nothing is deployed, so there is no state to rebuild: run `segql deploy` first."""


@dataclass
class RebuildResult:
    users: int
    enters: int
    exits: int


def current_program(conn: psycopg.Connection) -> int | None:
    """The id of the deploy whose program is live, or None when nothing is deployed."""
    row = conn.execute(query("current_program")).fetchone()
    return None if row is None else int(row[0])


def refresh(conn: psycopg.Connection, users: Sequence[str], cause: str) -> None:
    """Evaluate every segment for `users` through the live program, logging changes as `cause`."""
    deploy_id = current_program(conn)
    if deploy_id is None:
        return
    fn = sql.Identifier("segql", f"p{deploy_id}_refresh")
    statement = sql.SQL("SELECT {}(%s::text[], %s)").format(fn)
    for start in range(0, len(users), CHUNK):
        conn.execute(statement, [list(users[start : start + CHUNK]), cause])


def rebuild(
    conn: psycopg.Connection, cause: str = "rebuild", progress: Progress | None = None
) -> RebuildResult:
    """Recompute all incremental state in one transaction; writers wait until it commits."""
    with conn.transaction():
        if current_program(conn) is None:
            raise NoProgram(NoProgram.__doc__ or "")
        conn.execute(query("lock_for_rebuild"))
        conn.execute(query("lock_timers_for_rebuild"))
        first_seq = conn.execute(query("last_seq")).fetchone()[0]  # type: ignore[index]
        conn.execute(query("forget_unseen_users"))
        conn.execute(query("add_seen_users"))
        _rebuild_feature_state(conn)
        conn.execute(query("clear_orphan_state"), {"cause": cause})
        conn.execute(query("clear_orphan_timers"))
        _sync_groups(conn)
        users = [r[0] for r in conn.execute(query("all_users"))]
        if progress:
            progress(0, len(users))
        for start in range(0, len(users), CHUNK):
            refresh(conn, users[start : start + CHUNK], cause)
            if progress:
                progress(min(start + CHUNK, len(users)), len(users))
        counts: dict[str, int] = dict(
            conn.execute(query("changes_since"), {"seq": first_seq}).fetchall()
        )
    return RebuildResult(len(users), int(counts.get("enter", 0)), int(counts.get("exit", 0)))


def _sync_groups(conn: psycopg.Connection) -> None:
    """Which segments of each group every user is in, from segql.members."""
    the_plan = _plan(conn)
    conn.execute(generate.groups_cleanup_sql(the_plan).encode())
    for group in the_plan.groups:
        conn.execute(generate.group_sync_sql(group).encode())


def _plan(conn: psycopg.Connection) -> Plan:
    current = deployed(conn)
    return plan([d.segment for d in current.values()], {n: d.version for n, d in current.items()})


def _rebuild_feature_state(conn: psycopg.Connection) -> None:
    """Shared state features from all events, with the ids the live program reads them by."""
    the_plan = _plan(conn)
    ids: dict[str, int] = dict(conn.execute("SELECT key, id FROM segql.features").fetchall())
    for key in the_plan.state_keys:
        the_plan.feature_ids[key] = ids[key.text]
    conn.execute(query("clear_feature_state"))
    if the_plan.state_keys:
        conn.execute(generate.feature_backfill_sql(the_plan, the_plan.state_keys).encode())
