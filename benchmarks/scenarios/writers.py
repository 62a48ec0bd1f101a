"""Concurrent single-row writers: plain INSERTs per second, without and with segments deployed.

Each writer is a thread with its own autocommit connection, so every INSERT is its own
transaction, the shape of an application tracking events one at a time. Threads start together
and run for a fixed time; the figure is total INSERTs over the elapsed time.

The three databases (plain, segql with notify 'direct', segql with notify 'relay') take turns in
rounds of a fraction of the scale's time each, for every number of writers: a machine whose
speed drifts during the run (other load, a neighbour, a checkpoint) then slows all three alike,
where one long measurement after the other gave ratios that moved by half between runs.

While the writers run, one more connection samples what their backends wait on
(`pg_stat_activity`, every `SAMPLE_SECONDS`, on every side alike), and each row's details give
the commonest states as a share of the samples: in direct mode, say, how many of them queue on
PostgreSQL's NOTIFY lock (`Lock: object`), which a notifying transaction holds through its commit.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result

NAME = "writers"
GOAL = Goal("≥ 0.5x plain INSERT", min_ratio=0.5)
INSERT = "INSERT INTO segql.events (user_id, name, props) VALUES (%s, %s, %s::jsonb)"
ROUNDS = 5  # turns of each database per number of writers
SAMPLE_SECONDS = 0.02
WAITS = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
    "WHERE datname = current_database() AND backend_type = 'client backend' "
    "AND pid <> pg_backend_pid()"
)

# 'direct': each writer's transaction sends NOTIFY; 'relay': writers only log, and a relay
# running beside them sends one NOTIFY per batch (segql.relay), as `segql relay` would.
MODES = ("direct", "relay")


def run(ctx: Context) -> list[Result]:
    scale = ctx.scale
    skipped = segments.availability()
    sides = ["plain", *([] if skipped else MODES)]
    counts = {side: {n: 0 for n in scale.writer_threads} for side in sides}
    elapsed = {side: {n: 0.0 for n in scale.writer_threads} for side in sides}
    waits: dict[str, dict[int, Counter[str]]] = {
        side: {n: Counter() for n in scale.writer_threads} for side in sides
    }
    users = data.user_ids(ctx)
    with ExitStack() as stack:
        urls = {side: stack.enter_context(_database(ctx, side)) for side in sides}
        for n in scale.writer_threads:
            with ExitStack() as opened:
                pools = {side: opened.enter_context(_connections(urls[side], n)) for side in sides}
                monitors = {
                    side: opened.enter_context(psycopg.connect(urls[side], autocommit=True))
                    for side in sides
                }
                for side in sides:  # each connection's first INSERT plans segql's functions
                    _inserts(pools[side], users, 0.0, -1)
                for turn in range(ROUNDS):
                    for side in sides:
                        done, seconds = _inserts(
                            pools[side],
                            users,
                            scale.writer_seconds / ROUNDS,
                            turn,
                            (monitors[side], waits[side][n]),
                        )
                        counts[side][n] += done
                        elapsed[side][n] += seconds
    tps = {
        side: {n: counts[side][n] / elapsed[side][n] for n in scale.writer_threads}
        for side in sides
    }
    for side in sides:
        label = "plain INSERT" if side == "plain" else f"segql, notify {side}"
        ctx.log(f"{label} tps: " + ", ".join(f"{n}: {v:,.0f}" for n, v in tps[side].items()))
    return [
        Result(
            NAME,
            f"{n} writer{'s' if n > 1 else ''}, {scale.writer_segments} segments, notify {mode}",
            "inserts/s",
            segql=tps.get(mode, {}).get(n),
            baseline=tps["plain"][n],
            goal=GOAL,
            note=skipped or "",
            details={
                "seconds": scale.writer_seconds,
                "rounds": ROUNDS,
                "notify": mode,
                "waits_percent": _shares(waits[mode][n]),
                "plain_waits_percent": _shares(waits["plain"][n]),
            },
        )
        for mode in MODES
        for n in scale.writer_threads
    ]


@contextmanager
def _database(ctx: Context, side: str) -> Iterator[str]:
    """A scratch database with the profiles; for a segql side, the segments and its relay."""
    from segql import relay

    with ctx.scratch(f"writers_{side}") as url:
        data.load_profiles(url, ctx)
        if side == "plain":
            yield url
            return
        segments.deploy_segments(url, ctx.scale.writer_segments)
        with psycopg.connect(url) as conn:
            relay.set_notify_mode(conn, side)
        stop = threading.Event()
        # What `segql worker` runs in relay mode; in direct mode it only watches the mode.
        ringer = relay.RelayThread(url, stop, 0.05).start()
        try:
            yield url
        finally:
            stop.set()
            ringer.join()


@contextmanager
def _connections(url: str, n: int) -> Iterator[list[psycopg.Connection]]:
    """One autocommit connection per writer, kept across rounds as an application keeps its."""
    connections = [psycopg.connect(url, autocommit=True) for _ in range(n)]
    try:
        yield connections
    finally:
        for conn in connections:
            conn.close()


def _shares(waits: Counter[str], top: int = 6) -> dict[str, float]:
    total = sum(waits.values())
    return {k: round(100 * v / total, 1) for k, v in waits.most_common(top)} if total else {}


def _inserts(
    connections: list[psycopg.Connection],
    users: list[str],
    seconds: float,
    turn: int,
    sampled: tuple[psycopg.Connection, Counter[str]] | None = None,
) -> tuple[int, float]:
    """INSERTs done by one writer per connection in `seconds` (at least one each), and the
    seconds they took; with `sampled`, what the writers' backends wait on, counted into it."""
    threads = len(connections)
    counts = [0] * threads
    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(k: int) -> None:
        rng = random.Random(turn * 1000 + k)
        conn = connections[k]
        start.wait()
        try:
            while counts[k] == 0 or time.perf_counter() < deadline[0]:
                user = users[rng.randrange(len(users))]
                conn.execute(INSERT, (user, "product_viewed", '{"product_id":"p00001"}'))
                counts[k] += 1
        except BaseException as exc:  # reported by the main thread, which fails the scenario
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start.wait()
    if sampled:
        monitor, waits = sampled
        while time.perf_counter() < deadline[0]:
            for state, kind, event in monitor.execute(WAITS):
                if kind:
                    waits[f"{state}: {kind}: {event}"] += 1
                else:  # active with no wait event is running (on CPU or in the kernel)
                    waits["active: running" if state == "active" else str(state)] += 1
            time.sleep(SAMPLE_SECONDS)
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return sum(counts), elapsed
