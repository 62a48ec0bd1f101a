"""A consumer killed at random points while four writers commit ~50,000 changes loses nothing.

Each run of `segql listen --consumer` is killed with SIGKILL (no chance to clean up) and
restarted. Across runs: every change is delivered, duplicates are only changes that were not yet
acknowledged, and the effective stream (what each run acknowledged, then the last run) holds
every change exactly once, in commit order: per user, per writer, whole transactions together.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from segql.deploy import deploy
from segql.parse import parse_text

# Every event flips `odd`; the others flip on some counts: about 2.6 changes per event.
SEGMENTS = """
CREATE SEGMENT odd AS event_count('hit') % 2 = 1;
CREATE SEGMENT third AS event_count('hit') % 3 = 0;
CREATE SEGMENT half AS event_count('hit') % 4 < 2;
CREATE SEGMENT fifth AS event_count('hit') % 5 = 1;
"""
WRITERS = 4
USERS = 400
TARGET_CHANGES = 50_000
CONSUMER = "crashy"


@dataclass
class Writer:
    """Commits batches of events; remembers its transactions' xids in commit order."""

    url: str
    seed: int
    stop: threading.Event
    xids: list[int] = field(default_factory=list)
    error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(self.seed)
        try:
            with psycopg.connect(self.url) as conn:
                while not self.stop.is_set():
                    self.xids.append(self.transaction(conn, rng))
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def transaction(self, conn: psycopg.Connection, rng: random.Random) -> int:
        insert = "INSERT INTO segql.events (user_id, name) SELECT unnest(%s::text[]), 'hit'"
        with conn.transaction():
            if rng.random() < 0.25:
                # Two statements with a pause between: the transaction takes its xid and seqs
                # early and commits late. Users of the first statement sort before those of the
                # second, as every statement locks its users in order, so there is no deadlock.
                conn.execute(insert, [_users(rng, 0, USERS // 2)])
                time.sleep(rng.random() * 0.01)
                conn.execute(insert, [_users(rng, USERS // 2, USERS)])
            else:
                conn.execute(insert, [_users(rng, 0, USERS)])
            row = conn.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert row is not None
        return int(row[0])


def _users(rng: random.Random, low: int, high: int) -> list[str]:
    return [f"u{rng.randrange(low, high):04d}" for _ in range(rng.randint(5, 60))]


class Consumer:
    """`segql listen --consumer` as a subprocess, its output read through a pipe.

    While `slow`, the pipe is read at about 1,500 lines a second, below the writers' pace, so the
    consumer always has a backlog and a kill lands between printing and acknowledging.
    """

    def __init__(self, env: dict[str, str], err: Path, first: bool, slow: bool) -> None:
        since = ["--since", "0"] if first else []  # later runs resume from the stored position
        self.err = err
        with err.open("wb") as stderr:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "segql",
                    "listen",
                    "--consumer",
                    CONSUMER,
                    *since,
                    "--poll-interval",
                    "0.2",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        self.slow = slow
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while chunk := self.proc.stdout.read1(2048):
            self.chunks.append(chunk)
            if self.slow:
                time.sleep(0.01)

    def wait_for_output(self) -> None:
        deadline = time.monotonic() + 15
        while not self.chunks and self.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.proc.poll() is None, self.err.read_text()

    def finish(self) -> list[int]:
        """Seqs of the complete lines printed; a line cut by SIGKILL has no newline yet."""
        self.proc.wait()
        self.reader.join()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        text = b"".join(self.chunks).decode()
        return [json.loads(line)["seq"] for line in text[: text.rfind("\n") + 1].splitlines()]

    def printed(self) -> set[int]:
        text = b"".join(self.chunks).decode()
        return {json.loads(line)["seq"] for line in text[: text.rfind("\n") + 1].splitlines()}


def _acked(url: str) -> int | None:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT last_seq FROM segql.consumers WHERE name = %s", [CONSUMER]
        ).fetchone()
    return row[0] if row else None


def _changes(url: str) -> dict[int, tuple[str, str, int]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT seq, segment, user_id, xid::text FROM segql.changes")
        return {r[0]: (r[1], r[2], int(r[3])) for r in rows}


def test_killed_consumer_loses_nothing(
    database_url: str, cli_env: dict[str, str], tmp_path: Path
) -> None:
    with psycopg.connect(database_url) as conn:
        deploy(conn, parse_text(SEGMENTS))
    rng = random.Random(5)
    stop = threading.Event()
    writers = [Writer(database_url, seed, stop) for seed in range(WRITERS)]
    threads = [threading.Thread(target=w.run) for w in writers]
    for t in threads:
        t.start()

    runs: list[tuple[list[int], int | None]] = []  # (seqs printed, last acked seq after the run)
    started = time.monotonic()
    try:
        while len(runs) < 8 or not stop.is_set():
            consumer = Consumer(cli_env, tmp_path / f"run_{len(runs)}.err", not runs, slow=True)
            if rng.random() < 0.2:
                time.sleep(rng.uniform(0, 1.5))  # while it starts: connecting, locking, creating
            else:
                consumer.wait_for_output()
                time.sleep(rng.uniform(0, 1.0))
            consumer.proc.send_signal(signal.SIGKILL)
            runs.append((consumer.finish(), _acked(database_url)))
            if _count(database_url) >= TARGET_CHANGES:
                stop.set()
            assert time.monotonic() - started < 120, "the writers are too slow"
    finally:
        stop.set()
        for t in threads:
            t.join()
    for w in writers:
        assert w.error is None, w.error

    changes = _changes(database_url)
    assert len(changes) >= TARGET_CHANGES
    consumer = Consumer(cli_env, tmp_path / "run_last.err", first=False, slow=False)
    seen = {seq for printed, _ in runs for seq in printed}
    deadline = time.monotonic() + 60
    while not seen | consumer.printed() >= set(changes) and time.monotonic() < deadline:
        time.sleep(0.2)
    consumer.proc.send_signal(signal.SIGTERM)
    runs.append((consumer.finish(), _acked(database_url)))
    assert consumer.proc.returncode == 0, consumer.err.read_text()

    effective = _check_runs(runs)
    printed = sum(len(p) for p, _ in runs)
    assert printed > len(effective), "no kill left printed changes unacknowledged"
    assert sorted(effective) == sorted(changes), "some change was never delivered"
    assert len(effective) == len(set(effective)), "a change was acknowledged twice"
    _check_commit_order(effective, changes, writers)


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM segql.changes").fetchone()
    return int(row[0]) if row else 0


def _check_runs(runs: list[tuple[list[int], int | None]]) -> list[int]:
    """Duplicates only of unacknowledged changes; returns the effective stream: what each run
    acknowledged, then all the last run printed."""
    acked: set[int] = set()
    effective: list[int] = []
    for i, (printed, last_acked) in enumerate(runs):
        assert len(printed) == len(set(printed)), f"run {i} printed a change twice"
        again = [s for s in printed if s in acked]
        assert again == [], f"run {i} redelivered acknowledged changes {again[:5]}"
        if i == len(runs) - 1:
            done = printed
        elif last_acked is not None and last_acked in printed:
            done = printed[: printed.index(last_acked) + 1]
        else:
            done = []  # nothing acknowledged during this run
        effective.extend(done)
        acked.update(done)
    return effective


def _check_commit_order(
    effective: list[int], changes: dict[int, tuple[str, str, int]], writers: list[Writer]
) -> None:
    # Per segment and user, changes depend on each other: seq order is their order.
    last_seq: dict[tuple[str, str], int] = {}
    for seq in effective:
        segment, user, _ = changes[seq]
        assert last_seq.get((segment, user), 0) < seq, f"user {user} out of order in {segment}"
        last_seq[(segment, user)] = seq
    # A transaction's changes arrive together, and transactions in the order they committed.
    order: list[int] = []
    for seq in effective:
        xid = changes[seq][2]
        if not order or order[-1] != xid:
            order.append(xid)
    assert len(order) == len(set(order)), "a transaction was delivered in pieces"
    position = {xid: i for i, xid in enumerate(order)}
    for w in writers:
        delivered = [position[x] for x in w.xids if x in position]
        assert delivered == sorted(delivered), "a writer's transactions out of commit order"
