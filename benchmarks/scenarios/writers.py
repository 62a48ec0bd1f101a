"""Concurrent single-row writers: plain INSERTs per second, without and with segments deployed.

Each writer is a thread with its own autocommit connection, so every INSERT is its own
transaction, the shape of an application tracking events one at a time. Threads start together
and run for a fixed time; the figure is total INSERTs over the elapsed time.
"""

from __future__ import annotations

import random
import threading
import time

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result

NAME = "writers"
GOAL = Goal("≥ 0.5x plain INSERT", min_ratio=0.5)
INSERT = "INSERT INTO segql.events (user_id, name, props) VALUES (%s, %s, %s::jsonb)"


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    with ctx.scratch("writers_base") as url:
        data.load_profiles(url, ctx)
        baseline = {n: _tps(url, ctx, n) for n in scale.writer_threads}
    ctx.log("plain INSERT tps: " + ", ".join(f"{n}: {v:,.0f}" for n, v in baseline.items()))
    skipped = segments.availability()
    measured: dict[str, dict[int, float]] = {}
    if not skipped:
        for mode in MODES:
            measured[mode] = _segql_tps(ctx, mode)
            ctx.log(
                f"segql tps, notify {mode}: "
                + ", ".join(f"{n}: {v:,.0f}" for n, v in measured[mode].items())
            )
    return [
        Result(
            NAME,
            f"{n} writer{'s' if n > 1 else ''}, {scale.writer_segments} segments, notify {mode}",
            "inserts/s",
            segql=measured.get(mode, {}).get(n),
            baseline=baseline[n],
            goal=GOAL,
            note=skipped or "",
            details={"seconds": scale.writer_seconds, "notify": mode},
        )
        for mode in MODES
        for n in scale.writer_threads
    ]


# 'direct': each writer's transaction sends NOTIFY; 'relay': writers only log, and a relay
# running beside them sends one NOTIFY per batch (segql.relay), as `segql relay` would.
MODES = ("direct", "relay")


def _segql_tps(ctx: Context, mode: str) -> dict[int, float]:
    from segql import relay

    with ctx.scratch(f"writers_segql_{mode}") as url:
        data.load_profiles(url, ctx)
        segments.deploy_segments(url, ctx.scale.writer_segments)
        with psycopg.connect(url) as conn:
            relay.set_notify_mode(conn, mode)
        stop = threading.Event()
        # What `segql worker` runs in relay mode; in direct mode it only watches the mode.
        ringer = relay.RelayThread(url, stop, 0.05).start()
        try:
            return {n: _tps(url, ctx, n) for n in ctx.scale.writer_threads}
        finally:
            stop.set()
            ringer.join()


def _tps(url: str, ctx: Context, threads: int) -> float:
    users = data.user_ids(ctx)
    connections = [psycopg.connect(url, autocommit=True) for _ in range(threads)]
    counts = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(k: int) -> None:
        rng = random.Random(k)
        conn = connections[k]
        start.wait()
        try:
            while time.perf_counter() < deadline[0]:
                user = users[rng.randrange(len(users))]
                conn.execute(INSERT, (user, "product_viewed", '{"product_id":"p00001"}'))
                counts[k] += 1
        except BaseException as exc:  # reported by the main thread, which fails the scenario
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    try:
        for worker in workers:
            worker.start()
        began = time.perf_counter()
        deadline[0] = began + ctx.scale.writer_seconds
        start.wait()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - began
    finally:
        for conn in connections:
            conn.close()
    if errors:
        raise errors[0]
    return sum(counts) / elapsed
