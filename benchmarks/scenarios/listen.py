"""From an INSERT to the line another process prints for it, over many sequential round trips.

segql: `python -m segql listen bench_latency`, the real CLI in a process of its own, follows a
segment that each INSERT (an `add_to_cart` of a new user) makes one more user enter; the clock
stops when the benchmark reads that user's JSON line from the listener's stdout. Once with only
that segment deployed, once with the 50 benchmark segments beside it (a new user is evaluated
against all of them). Baseline: the same INSERT into a table of the same shape as `segql.events`
whose row trigger NOTIFYs the user id, printed by a tiny listener process
(`benchmarks.notify_listener`) and read the same way.

Writer: one autocommit connection, each INSERT its own transaction. Before the warm-up, probe
INSERTs repeat until the listener prints one, so its start-up never counts.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO

import psycopg

import benchmarks
import segql
from benchmarks import bare, segments
from benchmarks.harness import Context, Goal, Result, percentile

NAME = "listen"
SEGMENT = "bench_latency"  # segments.latency_definition()
WARMUP = 20
WAIT_SECONDS = 10.0  # for one line; segql listen also polls the log every 5 s without a NOTIFY
READY_SECONDS = 60.0  # for the listener to start and print its first line
PROBE_EVERY = 0.5
GOALS = {
    50: Goal("≤ 2x INSERT + trigger NOTIFY", max_ratio=2.0),
    99: Goal("≤ 3x INSERT + trigger NOTIFY", max_ratio=3.0),
}
INSERT = "INSERT INTO {} (user_id, name, props) VALUES (%s, 'add_to_cart', '{{}}')"
SEGQL_INSERT = INSERT.format("segql.events")
BARE_INSERT = INSERT.format(bare.EVENTS)

Key = Callable[[bytes], str | None]  # the user a printed line is about (None: not a match)


def run(ctx: Context) -> list[Result]:
    with ctx.scratch("listen_base") as url:
        bare.create_events(url, notify=True)
        command = [sys.executable, "-m", "benchmarks.notify_listener", bare.NOTIFY_CHANNEL]
        baseline = _round_trips(ctx, url, command, BARE_INSERT, _payload_user)
    ctx.log(f"INSERT + trigger NOTIFY -> line p50 {percentile(baseline, 50):.2f} ms")
    skipped = segments.availability()
    results = []
    for others in (0, 50):
        measured = None if skipped else _segql_round_trips(ctx, others)
        results += [_result(q, others, baseline, measured, skipped) for q in (50, 99)]
    return results


def _segql_round_trips(ctx: Context, others: int) -> list[float]:
    with ctx.scratch(f"listen_segql{others}") as url:
        segments.deploy_text(url, segments.definitions(others) + segments.latency_definition())
        command = [sys.executable, "-m", "segql", "listen", SEGMENT]
        measured = _round_trips(ctx, url, command, SEGQL_INSERT, _change_user)
    ctx.log(f"segql listen, {others} + 1 segments: p50 {percentile(measured, 50):.2f} ms")
    return measured


def _result(
    q: int, others: int, baseline: list[float], measured: list[float] | None, skipped: str | None
) -> Result:
    deployed = f"{others + 1} segment{'s' if others else ''}"
    return Result(
        NAME,
        f"INSERT -> `segql listen` line in another process p{q}, {len(baseline):,} round trips, "
        f"{deployed}",
        "ms",
        segql=percentile(measured, q) if measured else None,
        baseline=percentile(baseline, q),
        goal=GOALS[q],
        note=skipped or "",
        details={
            "baseline_max_ms": baseline[-1],
            "segql_max_ms": measured[-1] if measured else None,
        },
    )


def _payload_user(line: bytes) -> str | None:
    return line.decode().rstrip("\n")


def _change_user(line: bytes) -> str | None:
    change = json.loads(line)
    if change.get("segment") != SEGMENT or change.get("kind") != "enter":
        return None
    return str(change["user_id"])


# -- measuring -----------------------------------------------------------------------------------


def _round_trips(ctx: Context, url: str, command: list[str], insert: str, key: Key) -> list[float]:
    """Sorted latencies in ms of the scale's round trips, after start-up and a warm-up."""
    n = ctx.scale.round_trips
    stderr = ctx.workdir / f"listener-{time.monotonic_ns()}.err"
    with (
        Listener(command, url, stderr) as listener,
        psycopg.connect(url, autocommit=True) as writer,
    ):
        listener.wait_ready(writer, insert)
        samples = [listener.round_trip(writer, insert, f"u{i}", key) for i in range(WARMUP + n)]
    return sorted(samples[WARMUP:])


class Listener:
    """A listener process, and a thread that stamps each line of its stdout as it is read."""

    def __init__(self, command: list[str], url: str, stderr: Path) -> None:
        self._command = command
        self._stderr_path = stderr
        self._stderr = stderr.open("wb")
        self.proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._stderr, env=_child_env(url)
        )
        assert self.proc.stdout is not None
        self.lines: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def __enter__(self) -> Listener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=10)
        self._stderr.close()

    def _read(self, out: IO[bytes]) -> None:
        for line in iter(out.readline, b""):
            self.lines.put((time.perf_counter(), line))

    def wait_ready(self, writer: psycopg.Connection, insert: str) -> None:
        """INSERT probes until the listener prints a line: from then on it misses nothing."""
        deadline = time.monotonic() + READY_SECONDS
        probe = 0
        while time.monotonic() < deadline:
            self._check_alive()
            writer.execute(insert, (f"probe{probe}",))
            probe += 1
            try:
                self.lines.get(timeout=PROBE_EVERY)
                return
            except queue.Empty:
                continue
        raise RuntimeError(f"{self._name()} printed nothing within {READY_SECONDS:.0f} s")

    def round_trip(self, writer: psycopg.Connection, insert: str, user: str, key: Key) -> float:
        """ms from the INSERT's start until the line about `user` is read."""
        started = time.perf_counter()
        writer.execute(insert, (user,))
        deadline = started + WAIT_SECONDS
        while True:
            try:
                read_at, line = self.lines.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                self._check_alive()
                raise RuntimeError(
                    f"{self._name()} printed no line for {user} within {WAIT_SECONDS:.0f} s"
                ) from None
            if key(line) == user:
                return (read_at - started) * 1000

    def _check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self._stderr_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self._name()} exited with {self.proc.returncode}: {tail}")

    def _name(self) -> str:
        return " ".join(self._command[1:4])


def _child_env(url: str) -> dict[str, str]:
    """The server by environment (not on a command line), and this run's code on the path."""
    roots = {str(Path(m.__file__ or "").resolve().parents[1]) for m in (benchmarks, segql)}
    path = [*sorted(roots), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL"}}
    return {**env, "SEGQL_DATABASE_URL": url, "PYTHONPATH": os.pathsep.join(path)}
