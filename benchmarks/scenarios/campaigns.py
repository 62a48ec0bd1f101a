"""Campaign webhooks: commit -> webhook received, and deliveries per second.

Latency. segql: `segql worker` runs as a subprocess; the writer INSERTs (autocommit) an event that
makes a new user enter a segment a campaign watches, and the clock stops when the benchmark's own
HTTP receiver has the signed POST. Baseline: the writer INSERTs and NOTIFYs in one transaction; a
listener thread in the benchmark POSTs (httpx) to the same receiver when the notification comes.

Throughput. With one and then two `segql worker` processes idle and waiting, one transaction makes
N new users enter the segment; the figure is N over the time from that commit to the receiver
holding all N (planning, claiming, signing, sending and recording included). Baseline: N
sequential httpx POSTs of a body of the same size from one thread, no database.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

from benchmarks import segments
from benchmarks.harness import Context, Result, percentile
from segql import deploy
from segql.campaigns.parse import CampaignDialect
from segql.campaigns.receiver import Receiver
from segql.parse import parse_text

NAME = "campaigns"
CHANNEL = "bench_campaign_baseline"
WARMUP = 10
WAIT_SECONDS = 10.0
SENDERS = 4
REPO = Path(__file__).resolve().parents[2]


def definitions(url: str) -> str:
    return (
        "CREATE SEGMENT bench_carted AS did('add_to_cart');\n"
        f"CREATE CAMPAIGN bench_hook ON ENTER bench_carted SEND WEBHOOK '{url}';\n"
    )


def run(ctx: Context) -> list[Result]:
    skipped = segments.availability()
    if skipped:
        return [Result(NAME, "commit -> webhook", "ms", note=skipped)]
    smoke = ctx.scale.name == "smoke"  # CI runs it: a few seconds, enough to catch a break
    n = 30 if smoke else min(ctx.scale.round_trips, 500)
    bulk = 200 if smoke else ctx.scale.round_trips * 10
    with Receiver() as receiver:
        baseline = _baseline_latency(ctx, receiver, n)
        measured = _segql_latency(ctx, receiver, n)
        ctx.log(
            f"commit -> webhook p50 {percentile(measured, 50):.1f} ms (baseline "
            f"{percentile(baseline, 50):.1f} ms)"
        )
        rates = {workers: _throughput(ctx, receiver, bulk, workers) for workers in (1, 2)}
        ceiling = _post_rate(receiver, bulk)
    out = [
        Result(
            NAME,
            f"commit -> webhook received p{q}, {n:,} round trips",
            "ms",
            segql=percentile(measured, q),
            baseline=percentile(baseline, q),
            details={"segql_max_ms": measured[-1], "baseline_max_ms": baseline[-1]},
        )
        for q in (50, 99)
    ]
    out += [
        Result(
            NAME,
            f"deliveries/s, {bulk:,} entries in one commit, {workers} worker(s), "
            f"{SENDERS} senders each",
            "/s",
            segql=rate,
            baseline=ceiling,
            details={"baseline": "sequential httpx POSTs from one thread, no database"},
        )
        for workers, rate in rates.items()
    ]
    return out


# -- latency ---------------------------------------------------------------------------------------


def _baseline_latency(ctx: Context, receiver: Receiver, n: int) -> list[float]:
    with ctx.scratch("campaign_base") as url, psycopg.connect(url, autocommit=True) as writer:
        posted: queue.SimpleQueue[None] = queue.SimpleQueue()
        stop = threading.Event()
        listener = threading.Thread(
            target=_listen_and_post, args=(url, receiver.url, posted, stop), daemon=True
        )
        listener.start()
        time.sleep(0.2)  # LISTEN is in place before the first NOTIFY
        try:
            samples = []
            for i in range(WARMUP + n):
                started = time.perf_counter()
                with writer.transaction():
                    writer.execute(
                        "INSERT INTO segql.events (user_id, name) VALUES (%s, 'add_to_cart')",
                        [f"base{i}"],
                    )
                    writer.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(i)])
                posted.get(timeout=WAIT_SECONDS)
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            stop.set()
            listener.join()
    return sorted(samples[WARMUP:])


def _listen_and_post(
    url: str, target: str, posted: queue.SimpleQueue[None], stop: threading.Event
) -> None:
    with (
        psycopg.connect(url, autocommit=True) as conn,
        httpx.Client(timeout=15, follow_redirects=False) as http,
    ):
        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        while not stop.is_set():
            for note in conn.notifies(timeout=0.1):
                http.post(target, content=b'{"i": %s}' % note.payload.encode())
                posted.put(None)


def _segql_latency(ctx: Context, receiver: Receiver, n: int) -> list[float]:
    with (
        ctx.scratch("campaign_segql") as url,
        _workers(ctx, url, receiver, 1),
        psycopg.connect(url, autocommit=True) as writer,
    ):
        samples = []
        for i in range(WARMUP + n):
            before = len(receiver.requests)
            started = time.perf_counter()
            writer.execute(
                "INSERT INTO segql.events (user_id, name) VALUES (%s, 'add_to_cart')",
                [f"lat{i}"],
            )
            _wait_requests(receiver, before + 1)
            samples.append((time.perf_counter() - started) * 1000)
    return sorted(samples[WARMUP:])


def _wait_requests(receiver: Receiver, count: int, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    with receiver.arrived:
        while len(receiver.requests) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"the receiver got {len(receiver.requests)} of {count} webhooks")
            receiver.arrived.wait(left)


# -- throughput ------------------------------------------------------------------------------------


def _throughput(ctx: Context, receiver: Receiver, bulk: int, workers: int) -> float:
    with ctx.scratch(f"campaign_rate{workers}") as url, _workers(ctx, url, receiver, workers):
        before = len(receiver.requests)
        with psycopg.connect(url, autocommit=True) as writer:
            started = time.perf_counter()
            writer.execute(
                "INSERT INTO segql.events (user_id, name) "
                "SELECT 'bulk' || i, 'add_to_cart' FROM generate_series(1, %s) i",
                [bulk],
            )
            _wait_requests(receiver, before + bulk, timeout=max(60.0, bulk / 20))
            seconds = time.perf_counter() - started
    rate = bulk / seconds
    ctx.log(f"{workers} worker(s): {rate:,.0f} deliveries/s")
    return rate


def _post_rate(receiver: Receiver, bulk: int) -> float:
    body = b'{"type":"segment.entered","timestamp":"2026-01-01T00:00:00Z","data":{}}' + b" " * 150
    with httpx.Client(timeout=15) as http:
        started = time.perf_counter()
        for _ in range(bulk):
            http.post(receiver.url, content=body)
        return bulk / (time.perf_counter() - started)


@contextmanager
def _workers(ctx: Context, url: str, receiver: Receiver, count: int) -> Iterator[None]:
    """Deploy the campaign, then `count` worker processes, idle once the first plans nothing."""
    with psycopg.connect(url) as conn:
        deploy.deploy(conn, parse_text(definitions(receiver.url), "<bench>", CampaignDialect))
        conn.commit()
    env = {
        **os.environ,
        "SEGQL_DATABASE_URL": url,
        "SEGQL_WEBHOOK_ALLOW": "127.0.0.1",
        "PYTHONPATH": str(REPO),
    }
    log = (ctx.workdir / f"workers-{count}.log").open("ab")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "segql", "worker", "--quiet", "--senders", str(SENDERS)],
            env=env,
            stdout=log,
            stderr=log,
        )
        for _ in range(count)
    ]
    try:
        _wait_listening(url, count)
        yield
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        log.close()


def _wait_listening(url: str, count: int) -> None:
    """Until every worker's campaign listener is connected (it plans and LISTENs first)."""
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND application_name = %s",
                ["segql campaign listener"],
            ).fetchone()
            if row is not None and row[0] >= count:
                time.sleep(0.5)  # and its senders have connected and gone idle
                return
            time.sleep(0.1)
    raise RuntimeError("the segql workers did not start within 60 s")
