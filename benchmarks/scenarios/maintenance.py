"""Per-event maintenance cost as history grows, with 50 segments deployed.

One database gets the synthetic shop's profiles, 50 segments deployed while there are no events,
then history in slices, each the shop's events over the same 30 days (its own seed), COPYed
10,000 at a time through segql's triggers, as history would have arrived; statistics are kept
current as autovacuum would. At each history size the same 10,000-event batch, stamped in the
hour after the history, is COPYed on top in one transaction with segql's clock pinned at the end
of that hour, and deleted again before the next COPY or slice:

- baseline: with segql's triggers on `segql.events` disabled, i.e. nothing deployed;
- segql: with the 50 segments maintained by the triggers.

The figure is the COPY and its commit, in µs per event. The design promises work proportional to
the change, not to history, so the figure should stay flat as history grows: the last row gives
the largest history's figure as a percentage of the smallest's.

Building the largest history costs more than anything measured on it, so the recompute and
backfill scenarios measure in the same database, right after the maintenance figure (see
`largest`). Whichever of the three runs first builds it and measures for all three; the others
return the rows it left in the run's cache.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import islice
from typing import Any

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result
from segql import synth

NAME = "maintenance"
SEGMENTS = 50
BATCH = 10_000
NOW = data.END + timedelta(hours=1)  # the batch is stamped in the hour before this clock
# The largest is the scale's own event count. Smoke only shows that the scenarios work, within
# the few seconds CI gives them: history arrives through the triggers, at ~100 µs an event.
HISTORY = {
    "smoke": (5_000, 10_000, 20_000),
    "small": (100_000, 300_000, 1_000_000),
    "full": (100_000, 1_000_000, 10_000_000),
}
# Timed COPYs per side and history size; the fastest counts (a shared server only adds noise).
REPEATS = {"smoke": 1, "small": 3, "full": 3}
FLAT_PERCENT = 150.0
FLAT = Goal(f"≤ {FLAT_PERCENT:.0f} %", max_segql=FLAT_PERCENT)
LOAD_BATCH = 10_000  # history events per COPY (and transaction) while loading, untimed
ANALYZE_GROWTH = 0.2  # ANALYZE while loading once the tables grew by this share since the last
STATE_TABLES = (
    "segql.events, segql.users, segql.feature_state, segql.members, segql.timers, segql.user_groups"
)


@dataclass
class Copy:
    """One timed COPY of the batch: seconds, and where the time went by generated function."""

    seconds: float
    functions: dict[str, Any] = field(default_factory=dict)


@dataclass
class Size:
    events: int
    baseline: list[Copy]
    segql: list[Copy]
    last_id: int = 0  # the last history event; the batch's events come after it
    explained: dict[str, Any] | None = None  # see explain_nested

    @staticmethod
    def best(copies: list[Copy]) -> Copy | None:
        return min(copies, key=lambda c: c.seconds) if copies else None


@dataclass
class Largest:
    """Everything measured on the largest history, for the three scenarios that share it."""

    size: Size
    recompute: list[Result]
    backfill: list[Result]


def run(ctx: Context) -> list[Result]:
    sizes = HISTORY[ctx.scale.name]
    skipped = segments.availability()
    done = ctx.cached(LARGEST)
    if done is None:
        measured = _study(ctx, sizes, skipped)
    else:  # recompute or backfill ran first and measured the largest history already
        measured = [*_study(ctx, sizes[:-1], skipped, largest=False), done.size]
    results = [_size_result(ctx, m, skipped) for m in measured]
    results.append(_growth_result(measured, skipped))
    return results


LARGEST = "maintenance_largest"


def largest(ctx: Context) -> Largest:
    """The largest history's maintenance figure, and recompute's and backfill's rows beside it."""
    done = ctx.cached(LARGEST)
    if done is None:
        _study(ctx, HISTORY[ctx.scale.name][-1:], segments.availability())
        done = ctx.cached(LARGEST)
    return done  # type: ignore[no-any-return]


def _study(
    ctx: Context, sizes: tuple[int, ...], skipped: str | None, largest: bool = True
) -> list[Size]:
    """Grow the history slice by slice and measure at each of `sizes`; at the last of them
    (unless `largest` is false) recompute and backfill measure too, into the run's cache.
    """
    # They import this module; importing them here, not at the top, keeps that one-way.
    from benchmarks.scenarios import backfill, recompute

    measured: list[Size] = []
    with ctx.scratch("maintenance") as url:
        data.load_profiles(url, ctx)
        with psycopg.connect(url) as conn:
            # Pinned from the start: every event is evaluated at the batch's time, so no timer
            # falls due while history loads or between the batch and the full queries.
            conn.execute(data.PIN_CLOCK, [NOW])
        if not skipped:
            started = time.perf_counter()
            segments.deploy_segments(url, SEGMENTS)
            ctx.log(f"deployed {SEGMENTS} segments in {time.perf_counter() - started:.1f} s")
        loaded = 0
        for i, events in enumerate(HISTORY[ctx.scale.name]):
            if events > sizes[-1]:
                break
            load_history(ctx, url, i, events - loaded)
            loaded = events
            if events not in sizes:
                continue
            size = _measure(ctx, url, events, skipped)
            measured.append(size)
            if events < sizes[-1] or not largest:
                undo_batch(url, size.last_id)
                continue
            # 50 segments deployed and the batch applied, as the figure above left it.
            full = recompute.measure(ctx, url, size, skipped)
            flat = _growth(measured[0], size) if len(measured) > 1 else None
            unmet = [r for r in full if r.met is False]
            if not skipped and (unmet or (flat is not None and flat > FLAT_PERCENT)):
                size.explained = _explain_batch(ctx, url, size)
                for result in unmet:
                    result.details["where_the_time_goes"] = _where(
                        size.explained, result.details.get("where_the_time_goes", {})
                    )
            deploys = backfill.measure(ctx, url, size, skipped)
            ctx.remember(LARGEST, Largest(size, full, deploys))
    return measured


def _explain_batch(ctx: Context, url: str, size: Size) -> dict[str, Any]:
    """Where the batch's time goes on this history: the batch once more, plans and all."""
    undo_batch(url, size.last_id)
    payload = batch(ctx)

    def copy(conn: psycopg.Connection) -> None:
        conn.execute(data.PIN_CLOCK, [NOW])
        with conn.cursor() as cur, cur.copy(data.COPY_EVENTS) as copy:
            copy.write(payload)

    started = time.perf_counter()
    explained = explain_nested(url, copy)
    ctx.log(f"explained the batch's plans in {time.perf_counter() - started:.1f} s")
    return explained


# -- rows ----------------------------------------------------------------------------------------


def _per_event(copy: Copy | None) -> float | None:
    return None if copy is None else copy.seconds / BATCH * 1e6


def _size_result(ctx: Context, size: Size, skipped: str | None) -> Result:
    base, best = Size.best(size.baseline), Size.best(size.segql)
    segql, baseline = _per_event(best), _per_event(base)
    details: dict[str, Any] = {
        "batch_events": BATCH,
        "users": ctx.scale.users,
        "baseline_samples_us": [round(_per_event(c) or 0, 2) for c in size.baseline],
        "segql_samples_us": [round(_per_event(c) or 0, 2) for c in size.segql],
    }
    if segql is not None and baseline is not None:
        details["maintenance_us_per_event"] = round(segql - baseline, 2)
    if best is not None:
        details["generated_functions_ms"] = best.functions
    return Result(
        NAME,
        f"COPY of a {BATCH:,}-event batch on {size.events:,} events of history, "
        f"{SEGMENTS} segments",
        "µs/event",
        segql=segql,
        baseline=baseline,
        note=skipped or "",
        details=details,
    )


def _growth(small: Size, large: Size) -> float | None:
    """The largest history's per-event figure as a percentage of the smallest's."""
    a, b = Size.best(small.segql), Size.best(large.segql)
    return None if a is None or b is None else 100 * b.seconds / a.seconds


def _growth_result(measured: list[Size], skipped: str | None) -> Result:
    small, large = measured[0], measured[-1]
    base_small, base_large = Size.best(small.baseline), Size.best(large.baseline)
    result = Result(
        NAME,
        f"per-event cost on {large.events:,} events of history, as % of on {small.events:,}",
        "%",
        segql=_growth(small, large),
        baseline=100 * base_large.seconds / base_small.seconds
        if base_small and base_large
        else None,
        goal=FLAT,
        note=skipped or "",
    )
    if result.met is False:
        first, last = Size.best(small.segql), Size.best(large.segql)
        result.details["where_the_time_goes"] = _where(
            large.explained,
            {
                f"generated_functions_ms_on_{small.events}": first.functions if first else {},
                f"generated_functions_ms_on_{large.events}": last.functions if last else {},
            },
        )
    return result


def _where(explained: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """A "where the time goes" detail: the plans' summary first, then `more`, then the plans."""
    if explained is None:
        return more
    return {"summary": explained.get("summary"), **more, "plan": explained}


# -- measuring -----------------------------------------------------------------------------------


def _measure(ctx: Context, url: str, events: int, skipped: str | None) -> Size:
    """Time the batch on the history loaded so far: without segql's triggers, then with them.

    Leaves the batch applied (by the last timed COPY with segql's triggers, unless skipped).
    """
    repeats = REPEATS[ctx.scale.name]
    payload = batch(ctx)
    size = Size(events, [], [], last_id=_last_id(url))
    for _ in range(repeats):
        size.baseline.append(_timed_copy(ctx, url, payload, size.last_id, triggers=False))
    ctx.log(f"{events:,} events of history, no segments: {_describe(size.baseline)}")
    if skipped:
        return size
    for i in range(repeats):
        if i:
            undo_batch(url, size.last_id)
        size.segql.append(_timed_copy(ctx, url, payload, size.last_id))
    ctx.log(f"{events:,} events of history, {SEGMENTS} segments: {_describe(size.segql)}")
    return size


def _last_id(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(id) FROM segql.events").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _describe(copies: list[Copy]) -> str:
    return ", ".join(f"{_per_event(c):.1f}" for c in copies) + " µs/event"


def batch(ctx: Context) -> bytes:
    """The batch every history gets: the run's users, stamped in the hour up to NOW."""
    cached = ctx.cached("maintenance_batch")
    if cached is None:
        rows = synth.event_rows(BATCH, ctx.scale.users, ctx.seed, data.END, NOW)
        cached = ctx.remember("maintenance_batch", "".join(map(synth.copy_line, rows)).encode())
    return cached  # type: ignore[no-any-return]


def load_history(ctx: Context, url: str, slice_: int, events: int) -> None:
    """COPY one slice of history, `events` events over the 30 days before the batch.

    Through whatever is deployed, LOAD_BATCH events per transaction, with the state tables
    analyzed whenever they grew by a fifth since last time: without that, a plan made for a
    nearly empty table would do a nested loop over what is by now a large one.
    """
    started = time.perf_counter()
    rows = synth.event_rows(
        events,
        ctx.scale.users,
        ctx.seed + 1000 * slice_,
        data.END - timedelta(days=data.DAYS),
        data.END,
    )
    total = analyzed = _last_id(url)
    with psycopg.connect(url) as conn:
        while chunk := list(islice(rows, LOAD_BATCH)):
            with conn.cursor() as cur, cur.copy(data.COPY_EVENTS) as copy:
                copy.write("".join(map(synth.copy_line, chunk)))
            conn.commit()
            total += len(chunk)
            if total - analyzed >= ANALYZE_GROWTH * total:
                conn.execute(f"ANALYZE {STATE_TABLES}")
                conn.commit()
                analyzed = total
    vacuum(url)
    ctx.log(f"loaded {events:,} events of history in {time.perf_counter() - started:.1f} s")


def vacuum(url: str) -> None:
    """What autovacuum would have done by the time the next batch arrives."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {STATE_TABLES}")


def undo_batch(url: str, last_id: int) -> None:
    """Delete the batch (through segql's own triggers when deployed) and vacuum after it."""
    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM segql.events WHERE id > %s", [last_id])
        conn.commit()
    vacuum(url)


def _timed_copy(
    ctx: Context, url: str, payload: bytes, last_id: int, triggers: bool = True
) -> Copy:
    """COPY the batch in one transaction; the COPY and the commit are timed.

    Without `triggers`, segql's triggers on segql.events are disabled for the COPY, and the
    batch is deleted again before they are enabled.
    """
    with psycopg.connect(url) as conn:
        tracked = track_functions(conn)
        if not triggers:
            conn.execute("ALTER TABLE segql.events DISABLE TRIGGER USER")
            conn.commit()
        try:
            if ctx.scale.checkpoint:
                data.checkpoint(conn)
            conn.execute(data.PIN_CLOCK, [NOW])
            started = time.perf_counter()
            with conn.cursor() as cur, cur.copy(data.COPY_EVENTS) as copy:
                copy.write(payload)
            copied = time.perf_counter() - started
            functions = function_times(conn) if tracked else {}
            started = time.perf_counter()
            conn.commit()
            result = Copy(copied + time.perf_counter() - started, functions)
            if not triggers:
                conn.execute("DELETE FROM segql.events WHERE id > %s", [last_id])
                conn.commit()
        finally:
            if not triggers:
                conn.rollback()
                conn.execute("ALTER TABLE segql.events ENABLE TRIGGER USER")
                conn.commit()
    if not triggers:
        vacuum(url)
    return result


def track_functions(conn: psycopg.Connection) -> bool:
    """Time every function call from now on (needs superuser or the SET privilege)."""
    try:
        conn.execute("SET track_functions = 'all'")
        conn.commit()
        return True
    except psycopg.errors.InsufficientPrivilege:
        conn.rollback()
        return False


_NUMBERED = re.compile(r"^s_(.*?)(_\d+)?_v\d+$")


def function_times(conn: psycopg.Connection) -> dict[str, Any]:
    """This transaction's time in segql's generated functions, in ms, largest first.

    A program's functions (p<deploy>_...: triggers, and groups of segments evaluated together)
    by name, with the segments a group evaluates; segment functions (s_<name>_v<version>)
    summed per kind, the benchmark's numbering dropped, so 50 segments read as 5 lines.
    """
    rows = conn.execute(
        "SELECT f.funcname, f.calls, f.total_time, f.self_time, p.prosrc "
        "FROM pg_stat_xact_user_functions f JOIN pg_proc p ON p.oid = f.funcid "
        "WHERE f.schemaname = 'segql'"
    ).fetchall()
    program: dict[str, dict[str, Any]] = {}
    kinds: dict[str, dict[str, Any]] = {}
    for name, calls, total, self_, source in rows:
        match = _NUMBERED.match(name)
        if match:
            entry = kinds.setdefault(match.group(1), {"functions": 0, "self_ms": 0.0})
            entry["functions"] += 1
            entry["self_ms"] += self_
        elif re.match(r"^p\d+_", name):
            program[name] = {"calls": calls, "total_ms": total, "self_ms": self_}
            found = Counter(_SEGMENT_LITERAL.findall(source or ""))
            if found and not name.endswith(("_ins", "_upd", "_del")):
                program[name]["segments"] = " + ".join(f"{k} x{n}" for k, n in found.items())
    for entry in [*program.values(), *kinds.values()]:
        for key in ("total_ms", "self_ms"):
            if key in entry:
                entry[key] = round(entry[key], 1)
    return {
        "program_functions": dict(sorted(program.items(), key=lambda kv: -kv[1]["self_ms"])),
        "segment_functions_by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1]["self_ms"])),
    }


# -- where the time goes -------------------------------------------------------------------------

AUTO_EXPLAIN = (
    "LOAD 'auto_explain'",
    "SET auto_explain.log_min_duration = 0",
    "SET auto_explain.log_analyze = on",
    "SET auto_explain.log_buffers = on",
    "SET auto_explain.log_nested_statements = on",
    "SET auto_explain.log_format = json",
    "SET auto_explain.log_level = notice",  # to this client, not the server's log
)
# A call of a generated function: a segment's (s_<name>_v<n>) or one of a program's (p<n>_...).
_CALLS_GENERATED = re.compile(r'"?segql"?\."?(s_\w+_v\d+|p\d+_\w+)"?\s*\(')
_SEGMENT_LITERAL = re.compile(r"'(bench_[a-z_]+?)(?:_\d+)?'")
# Left out of a condition, to add up nodes across segments: the users a statement ran for, and
# numbers (a segment's, an alias's, a window's).
_ARRAY = re.compile(r"'\{[^']*\}'")
_NUMBER = re.compile(r"\d+(\.\d+)?")
_PLAN_NOTICE = re.compile(r"duration: ([0-9.]+) ms\s+plan:\s*(.*)", re.DOTALL)


def explain_nested(
    url: str, action: Callable[[psycopg.Connection], object], top: int = 6
) -> dict[str, Any]:
    """Where `action`'s time goes, by statement and by plan node, from one more run of it.

    The run has auto_explain report every statement's plan (ANALYZE, BUFFERS, statements inside
    trigger and segment functions too) to this client, and is rolled back. Instrumenting every
    node slows the run down, so the milliseconds are for comparing with each other only.
    Statements that just call a generated function, and the COPY itself, are left out: their
    time is that of the statements they run.
    """
    plans: list[tuple[float, str]] = []

    def collect(diag: psycopg.errors.Diagnostic) -> None:
        found = _PLAN_NOTICE.match(diag.message_primary or "")
        if found:
            plans.append((float(found.group(1)), found.group(2)))

    with psycopg.connect(url) as conn:
        try:
            for statement in AUTO_EXPLAIN:
                conn.execute(statement.encode())
        except psycopg.Error as exc:  # not a superuser, or no auto_explain on the server
            conn.rollback()
            return {"unavailable": f"auto_explain: {exc}".splitlines()[0]}
        conn.add_notice_handler(collect)
        action(conn)
        conn.rollback()
    statements: dict[str, dict[str, float]] = {}
    nodes: dict[tuple[str, ...], dict[str, Any]] = {}
    for duration, text in plans:
        logged = json.loads(text)
        query = " ".join(str(logged.get("Query Text", "")).split())
        if _CALLS_GENERATED.search(query) or query.upper().startswith("COPY "):
            continue
        label = _statement_label(query)
        entry = statements.setdefault(label, {"ms": 0.0, "runs": 0, "jit_ms": 0.0})
        entry["ms"] += duration
        entry["runs"] += 1
        jit = _jit(logged, label, nodes)
        entry["jit_ms"] += jit
        _walk(logged["Plan"], label, nodes, jit)
    ranked = sorted(statements.items(), key=lambda kv: -kv[1]["ms"])[:top]
    heavy = sorted(nodes.values(), key=lambda n: -n["exclusive_ms"])[:top]
    for node in heavy:
        node["exclusive_ms"] = round(node["exclusive_ms"], 1)
    result: dict[str, Any] = {
        "statements": [
            {"statement": k, **{m: round(v, 1) if m != "runs" else int(v) for m, v in e.items()}}
            for k, e in ranked
        ],
        "plan_nodes": heavy,
    }
    return {"summary": summary(result), **result}


def _statement_label(query: str) -> str:
    kinds = sorted(set(_SEGMENT_LITERAL.findall(query)))
    if kinds and query.startswith("WITH clk AS"):
        return f"membership statement of {' + '.join(kinds)}"
    return query if len(query) <= 100 else query[:97] + "..."


def _jit(logged: dict[str, Any], label: str, out: dict[tuple[str, ...], dict[str, Any]]) -> float:
    """Milliseconds the statement spent compiling itself (JIT), counted as a node of its own.

    The compiling happens when the first row is asked for, so the plan shows it as time of the
    top node's own; `_walk` takes it off there.
    """
    timing = (logged.get("JIT") or {}).get("Timing") or {}
    total = timing.get("Total", 0.0)
    ms = float(total["Time"] if isinstance(total, dict) else total)
    if ms:
        functions = logged["JIT"].get("Functions", 0)
        entry = out.setdefault(
            (label, "JIT"),
            {
                "node": "JIT compilation",
                "condition": None,
                "children": [],
                "statement": label,
                "exclusive_ms": 0.0,
                "runs": 0,
                "rows_out": 0,
                "loops": 0,
                "functions_compiled": 0,
            },
        )
        entry["exclusive_ms"] += ms
        entry["runs"] += 1
        entry["functions_compiled"] += functions
    return ms


def _walk(
    plan: dict[str, Any], label: str, out: dict[tuple[str, ...], dict[str, Any]], jit: float = 0.0
) -> None:
    """Add each node's own time (its time less its children's) to the node's total in `out`.

    Nodes are summed across runs by statement, node and condition with its constants left out
    (say, over the 10 runs of one kind's membership statement). A CTE Scan's time includes
    running the CTE, which is also a child elsewhere in the plan, so CTE Scans are not counted
    (their parents still are, correctly). `jit` is taken off the top node's own time.
    """
    children = plan.get("Plans", [])
    for child in children:
        _walk(child, label, out)
    if plan["Node Type"] == "CTE Scan":
        return
    node = _node_name(plan)
    condition = next(
        (plan[k] for k in ("Index Cond", "Hash Cond", "Join Filter", "Filter") if k in plan), None
    )
    if condition:
        condition = _NUMBER.sub("N", _ARRAY.sub("'{...}'", condition))
    total = plan["Actual Total Time"] * plan["Actual Loops"]
    inner = sum(c["Actual Total Time"] * c["Actual Loops"] for c in children)
    below = [_node_name(c) for c in children]
    entry = out.setdefault(
        (label, node, condition or "", *below),
        {
            "node": node,
            "condition": condition,
            "children": below,
            "statement": label,
            "exclusive_ms": 0.0,
            "runs": 0,
            "rows_out": 0,
            "loops": 0,
        },
    )
    entry["exclusive_ms"] += max(0.0, total - inner - jit)
    entry["runs"] += 1
    entry["rows_out"] += plan["Actual Rows"] * plan["Actual Loops"]
    entry["loops"] += plan["Actual Loops"]


def _node_name(plan: dict[str, Any]) -> str:
    node = plan["Node Type"]
    if node == "ModifyTable" and plan.get("Operation"):
        node = plan["Operation"]
    if plan.get("Join Type") and plan["Join Type"] != "Inner":
        node += f" ({plan['Join Type'].lower()})"
    if plan.get("Index Name"):
        node += f" using {plan['Index Name']}"
    for key in ("Relation Name", "Function Name", "CTE Name"):
        if plan.get(key):
            node += f" on {plan[key]}"
    return str(node)


def summary(explained: dict[str, Any]) -> str:
    """One sentence from explain_nested's result: the top statement and the top plan node."""
    if not explained.get("statements"):
        return str(explained.get("unavailable", "no plans"))
    first = explained["statements"][0]
    total = sum(s["ms"] for s in explained["statements"])
    text = f"{first['statement']}: {first['ms']:,.0f} of {total:,.0f} ms"
    if explained.get("plan_nodes"):
        node = explained["plan_nodes"][0]
        on = f" [{node['condition']}]" if node.get("condition") else ""
        over = f" over {', '.join(node['children'])}" if node.get("children") else ""
        text += f"; heaviest plan node: {node['node']}{on}{over} in {node['statement']}, "
        if node.get("functions_compiled"):
            text += (
                f"{node['exclusive_ms']:,.0f} ms to compile {node['functions_compiled']:,} "
                f"functions in {node['runs']:,} run{'s' if node['runs'] != 1 else ''}"
            )
        else:
            text += (
                f"{node['exclusive_ms']:,.0f} ms of its own, {node['rows_out']:,} rows out "
                f"in {node['loops']:,} loops"
            )
    return text + " (timed under auto_explain)"
