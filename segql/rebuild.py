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

from segql import generate, run
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


def rebuild(
    conn: psycopg.Connection, cause: str = "rebuild", progress: Progress | None = None
) -> RebuildResult:
    """Recompute all incremental state in one transaction; writers wait until it commits."""
    with conn.transaction():
        if run.current_program(conn) is None:
            raise NoProgram(NoProgram.__doc__ or "")
        conn.execute(query("lock_for_rebuild"))
        conn.execute(query("lock_timers_for_rebuild"))
        first_seq = conn.execute(query("last_seq")).fetchone()[0]  # type: ignore[index]
        conn.execute(query("forget_unseen_users"))
        conn.execute(query("add_seen_users"))
        _rebuild_feature_state(conn)
        conn.execute(query("clear_orphan_state"), {"cause": cause})
        conn.execute(query("clear_orphan_timers"))
        sync_groups(conn)
        users = [r[0] for r in conn.execute(query("all_users"))]
        if progress:
            progress(0, len(users))
        for start in range(0, len(users), CHUNK):
            run.refresh_users(conn, users[start : start + CHUNK], cause)
            if progress:
                progress(min(start + CHUNK, len(users)), len(users))
        counts: dict[str, int] = dict(
            conn.execute(query("changes_since"), {"seq": first_seq}).fetchall()
        )
    return RebuildResult(len(users), int(counts.get("enter", 0)), int(counts.get("exit", 0)))


def sync_groups(conn: psycopg.Connection, users: Sequence[str] | None = None) -> None:
    """Derive segql.user_groups again from segql.members, for `users` or everyone.

    The group functions read a user's previous memberships from user_groups, so whatever put
    members right behind the program's back (a repair, a restore) must come through here first.
    """
    the_plan = _plan(conn)
    chosen = None if users is None else list(users)
    conn.execute(
        query("forget_user_groups"), {"users": chosen, "keys": [g.key for g in the_plan.groups]}
    )
    for group in the_plan.groups:
        names = [s.name for s in group.members]
        conn.execute(query("sync_user_group"), {"key": group.key, "names": names, "users": chosen})


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
