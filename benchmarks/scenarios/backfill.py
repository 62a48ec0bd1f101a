"""Deploying a segment over existing history: segql's backfill against the bare full query.

On the largest history of the scale with 50 segments deployed, in the database the maintenance
scenario measures last (see `maintenance.largest`), one new segment at a time is deployed through
`segql.deploy.deploy`, the path of `segql deploy FILE`: it re-checks the deployed definitions,
swaps in the new program, backfills any new shared feature and evaluates the new segment for
every user, 5,000 at a time. segql's figure is that whole deploy and its commit; the baseline is
the new segment's own full query, run right after it (and which must return exactly the members
the deploy found). One segment of each shape: windowed, an unwindowed aggregate over a feature
no deployed segment reads yet, and traits only.
"""

from __future__ import annotations

import re
import time
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.harness import Context, Goal, Result
from benchmarks.scenarios import maintenance
from benchmarks.scenarios.maintenance import Size

NAME = "backfill"
GOAL = Goal("≤ 1.5x the full query", max_ratio=1.5)
SEGMENTS = (
    (
        "windowed",
        "bench_backfill_windowed",
        "event_count('product_viewed', within => '36 hours') >= 3 "
        "AND NOT did('purchase', within => '36 hours')",
    ),
    ("unwindowed aggregate", "bench_backfill_aggregate", "event_count('add_to_cart') >= 3"),
    ("trait", "bench_backfill_trait", "plan = 'premium' AND device = 'ios'"),
)


def run(ctx: Context) -> list[Result]:
    return maintenance.largest(ctx).backfill


def measure(ctx: Context, url: str, size: Size, skipped: str | None) -> list[Result]:
    results = []
    for kind, name, condition in SEGMENTS:
        result = Result(
            NAME,
            f"deploy a {kind} segment over {size.events:,} events of history",
            "s",
            goal=GOAL,
            note=skipped or "",
        )
        if not skipped:
            deployed = _deploy(url, f"CREATE SEGMENT {name} AS {condition};\n")
            result.segql = deployed.pop("seconds")
            result.baseline = _full_query(url, name)
            calls = deployed["steps_seconds"].get(BACKFILL_CALLS, 0.0)
            ctx.log(
                f"{name}: deploy {result.segql:.2f} s (backfill calls {calls:.2f} s), "
                f"full query {result.baseline:.2f} s"
            )
            result.details = {"definition": condition, **deployed}
            if result.met is False:
                result.details["where_the_time_goes"] = _where(url, name, result.segql, deployed)
        results.append(result)
    return results


# What deploy runs, by the start of each statement's text; anything else is catalog work.
BACKFILL_CALLS = "backfill calls: the segment function over every user"
DEPLOY_STEPS = (
    (re.compile(r'^SELECT "segql"\."s_'), BACKFILL_CALLS),
    # A segment that joins a group is evaluated by the group's function, for its changes only.
    (re.compile(r'^SELECT count\(\*\) FROM "segql"\."p\d+_g\d+"\('), BACKFILL_CALLS),
    (re.compile(r"^INSERT INTO segql\.feature_state"), "backfill of new shared features"),
    (re.compile(r"^-- Segment "), "CREATE of segment functions"),
    (re.compile(r"^-- segql program"), "CREATE of the program (triggers, tick)"),
    (re.compile(r"^CREATE OR REPLACE VIEW"), "CREATE OR REPLACE of views"),
    (re.compile(r"^SELECT coalesce\("), "is a user with no data a member?"),
    (re.compile(r"^DO \$segql\$"), "DROP of superseded functions"),
    (re.compile(r"^(DELETE FROM|INSERT INTO) segql\.users"), "sync of the user list"),
)
CATALOG = "catalog reads and writes, lock"
PYTHON = "Python: parse, check, plan, render"


def _where(url: str, name: str, seconds: float, deployed: dict[str, Any]) -> dict[str, Any]:
    """Why the deploy took longer than the goal allows: its backfill calls' plans when those
    calls are most of it, else the deploy's steps, largest first."""
    calls = deployed["steps_seconds"].get(BACKFILL_CALLS, 0.0)
    if calls > seconds / 2:
        explained = _explain_call(url, deployed["backfill_call"])
        return {
            "summary": f"backfill calls {calls:.2f} of {seconds:.2f} s; in one call over "
            f"{explained.pop('users'):,} users, " + explained["summary"],
            "one_backfill_call": explained,
        }
    steps = {**deployed["steps_seconds"], PYTHON: deployed["python_seconds"]}
    ranked = sorted(steps.items(), key=lambda kv: -kv[1])[:3]
    return {
        "summary": f"{seconds:.2f} s, the largest parts: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in ranked)
    }


def _deploy(url: str, text: str) -> dict[str, Any]:
    """Deploy `text` as `segql deploy` does; seconds in all, and where they went."""
    from segql.deploy import deploy
    from segql.parse import parse_text

    with psycopg.connect(url) as conn:
        tracked = maintenance.track_functions(conn)
        steps, first = _time_statements(conn)
        # An open transaction makes deploy's own a savepoint, so this transaction's function
        # times can be read before the commit.
        conn.execute("SELECT 1")
        steps.clear()
        first.clear()
        started = time.perf_counter()
        deploy(conn, parse_text(text, "<benchmark backfill>"))
        deployed = time.perf_counter() - started
        in_sql = sum(steps.values())
        functions = maintenance.function_times(conn) if tracked else {}
        started = time.perf_counter()
        conn.commit()
        seconds = deployed + time.perf_counter() - started
    return {
        "seconds": seconds,
        "steps_seconds": {
            k: round(v, 3) for k, v in sorted(steps.items(), key=lambda kv: -kv[1]) if v >= 0.001
        },
        "python_seconds": round(deployed - in_sql, 3),
        "generated_functions_ms": functions,
        # The call as deploy ran it (the segment's function, or its group's), for _explain_call.
        "backfill_call": first.get(BACKFILL_CALLS),
    }


def _time_statements(conn: psycopg.Connection) -> tuple[dict[str, float], dict[str, str]]:
    """Seconds per kind of statement `conn.execute` runs from now on (see DEPLOY_STEPS), and
    the first statement of each kind.

    Deploy runs every statement through `conn.execute`; wrapping the method on this one
    connection times each without touching segql.
    """
    seconds: dict[str, float] = {}
    first: dict[str, str] = {}
    execute = conn.execute

    def timed(query: Any, params: Any = None, **kwargs: Any) -> Any:
        if isinstance(query, sql.Composable):
            text = query.as_string(conn)
        else:
            text = query.decode() if isinstance(query, bytes) else str(query)
        text = text.lstrip()
        label = next((label for pattern, label in DEPLOY_STEPS if pattern.match(text)), CATALOG)
        first.setdefault(label, text)
        started = time.perf_counter()
        try:
            return execute(query, params, **kwargs)
        finally:
            seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - started

    conn.execute = timed  # type: ignore[method-assign]
    return seconds, first


def _explain_call(url: str, call: str) -> dict[str, Any]:
    """Plan nodes of deploy's backfill `call` over the first chunk of users, rolled back."""
    from segql.deploy import BACKFILL_CHUNK

    with psycopg.connect(url) as conn:
        users = [
            r[0]
            for r in conn.execute(
                "SELECT user_id FROM segql.users ORDER BY user_id LIMIT %s", [BACKFILL_CHUNK]
            )
        ]
    explained = maintenance.explain_nested(url, lambda conn: conn.execute(call.encode(), [users]))
    return {"users": len(users), **explained}


def _full_query(url: str, name: str) -> float:
    """Seconds to run the segment's full query; raises unless it returns exactly its members."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT full_query FROM segql.segments WHERE name = %s", [name])
        query = row.fetchone()[0]  # type: ignore[index]
        started = time.perf_counter()
        full = {r[0] for r in conn.execute(query.encode())}
        seconds = time.perf_counter() - started
        members = {
            r[0]
            for r in conn.execute("SELECT user_id FROM segql.members WHERE segment = %s", [name])
        }
    if full != members:
        raise RuntimeError(
            f"{name}: the deploy's backfill found {len(members)} members, "
            f"the full query {len(full)} ({len(members ^ full)} differ)"
        )
    return seconds
