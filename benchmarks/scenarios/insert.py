"""Single-row INSERT latency with 50 segments deployed, on a database holding the run's events.

One autocommit connection runs sequential single-row INSERTs, each its own transaction, timed
from the call to its return (commit included). Three cases share the connection and alternate in
rounds, so a noisy neighbour on the server hits all of them alike:

- baseline: a bare INSERT of `product_viewed` into a table of the same shape as `segql.events`
  holding the same history, without triggers (`benchmarks.bare`);
- segql, read: a `product_viewed` event of an existing user, which the benchmark segments read;
- segql, unread: an event of an existing user whose name no segment reads.

segql's clock stays pinned where the load left it (the latest loaded event), so the windows hold
what the history put there and every event is stamped at that instant by the column default.

After the timing, each segql case is run again to say where its time goes: the mean time per
INSERT in each of segql's generated functions (`pg_stat_xact_user_functions` over `PROFILED`
INSERTs in one rolled-back transaction) and, under auto_explain, the plan of every statement
those functions ran (`maintenance.explain_nested`, over `EXPLAINED` INSERTs). What the functions
do not account for of a figure is the trigger machinery, the round trip and the commit.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import psycopg

from benchmarks import bare, data, loaded, segments
from benchmarks.harness import Context, Goal, Result, percentile
from benchmarks.scenarios import maintenance

NAME = "insert"
WARMUP = 20
ROUNDS = 10
READ_EVENT = "product_viewed"
UNREAD_EVENT = "bench_unread_event"  # no benchmark segment names it
PROPS = '{"product_id":"p00001"}'
PROFILED = 200  # INSERTs whose function times are averaged
EXPLAINED = 20  # INSERTs whose plans are summed
SEGQL_INSERT = "INSERT INTO segql.events (user_id, name, props) VALUES (%s, %s, %s::jsonb)"
BARE_INSERT = f"INSERT INTO {bare.EVENTS} (user_id, name, props) VALUES (%s, %s, %s::jsonb)"


@dataclass(frozen=True)
class Case:
    label: str
    statement: str
    event: str
    goal: Goal | None = None


BASELINE = Case("bare INSERT", BARE_INSERT, READ_EVENT)
CASES = (
    Case(
        f"'{READ_EVENT}' (read by segments)",
        SEGQL_INSERT,
        READ_EVENT,
        Goal("≤ 2x bare INSERT", max_ratio=2.0),
    ),
    Case(
        f"'{UNREAD_EVENT}' (read by no segment)",
        SEGQL_INSERT,
        UNREAD_EVENT,
        Goal("≤ 1.5x bare INSERT", max_ratio=1.5),
    ),
)


def run(ctx: Context) -> list[Result]:
    db = loaded.database(ctx)
    bare.create_events(db.url, with_history=True)
    loaded.vacuum(db.url)
    skipped = segments.availability()
    cases = [BASELINE] if skipped else [BASELINE, *CASES]
    users = data.user_ids(ctx)
    samples = _measure(db.url, cases, users, ctx.scale.round_trips, ctx.seed)
    base = samples[BASELINE.label]
    ctx.log(f"bare INSERT p50 {percentile(base, 50):.3f} ms")
    results = []
    for case in CASES:
        rows = [_result(ctx, db, case, q, samples.get(case.label), base, skipped) for q in (50, 99)]
        if not skipped:  # after all the timing, so the profiling disturbs none of it
            where = _where_the_time_goes(db.url, case, users, ctx.seed)
            for row in rows:
                row.details["where_the_time_goes"] = where
        results += rows
    return results


def _result(
    ctx: Context,
    db: loaded.Loaded,
    case: Case,
    q: int,
    measured: list[float] | None,
    base: list[float],
    skipped: str | None,
) -> Result:
    return Result(
        NAME,
        f"{case.label} p{q}, {len(base):,} INSERTs, {db.segments} segments, "
        f"{db.events:,} events of history",
        "ms",
        segql=percentile(measured, q) if measured else None,
        baseline=percentile(base, q),
        goal=case.goal,
        note=skipped or "",
        details={
            "baseline_max_ms": base[-1],
            "segql_max_ms": measured[-1] if measured else None,
            "users": ctx.scale.users,
        },
    )


def _measure(
    url: str, cases: list[Case], users: list[str], n: int, seed: int
) -> dict[str, list[float]]:
    """Sorted latencies in ms of `n` INSERTs per case, after a warm-up of each."""
    rng = random.Random(seed)
    per_round = max(1, n // ROUNDS)
    samples: dict[str, list[float]] = {case.label: [] for case in cases}
    with psycopg.connect(url, autocommit=True) as conn:
        for case in cases:
            for _ in range(WARMUP):
                _timed(conn, case, rng.choice(users))
        while len(samples[cases[0].label]) < n:
            k = min(per_round, n - len(samples[cases[0].label]))
            for case in cases:
                samples[case.label] += [_timed(conn, case, rng.choice(users)) for _ in range(k)]
    return {label: sorted(values) for label, values in samples.items()}


def _timed(conn: psycopg.Connection, case: Case, user: str) -> float:
    started = time.perf_counter()
    conn.execute(case.statement, (user, case.event, PROPS))
    return (time.perf_counter() - started) * 1000


def _where_the_time_goes(url: str, case: Case, users: list[str], seed: int) -> dict[str, object]:
    """Mean ms per INSERT in each generated function, and the plans of what they ran."""
    rng = random.Random(seed + 1)
    with psycopg.connect(url) as conn:
        functions: dict[str, object] = {}
        if maintenance.track_functions(conn):
            for _ in range(PROFILED):
                conn.execute(case.statement, (rng.choice(users), case.event, PROPS))
            functions = _per_insert(maintenance.function_times(conn), PROFILED)
        conn.rollback()

    def inserts(conn: psycopg.Connection) -> None:
        for _ in range(EXPLAINED):
            conn.execute(case.statement, (rng.choice(users), case.event, PROPS))

    return {
        "functions_ms_per_insert": functions,
        "profiled_inserts": PROFILED,
        "plans": maintenance.explain_nested(url, inserts, top=12),
        "explained_inserts": EXPLAINED,
    }


def _per_insert(times: dict[str, Any], n: int) -> dict[str, Any]:
    """`maintenance.function_times` over `n` INSERTs, its calls and milliseconds per INSERT."""
    return {
        section: {
            name: {
                k: round(v / n, 4) if k == "calls" or k.endswith("_ms") else v
                for k, v in entry.items()
            }
            for name, entry in entries.items()
        }
        for section, entries in times.items()
    }
