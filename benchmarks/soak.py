"""The soak scenario (not run in CI): writers, the worker, listeners and redeploys for a long time.

    python -m benchmarks.soak --database-url URL [--minutes 30] [--redeploy-every 300]

URL must name a scratch database: it is initialised and the example shop segments are deployed.
Eight writers call segql.track as fast as they can, `segql worker` runs, two `segql listen`
processes read the feed, and one segment is redeployed with a changed threshold every
--redeploy-every seconds. Every --sample seconds a JSON line reports throughput since the last
sample, the server's memory (RSS of the postgres processes of this machine), the change log's
size and rows, and what the listeners printed. At the end the writers stop, due timers are
ticked, and `verify` runs: its differences are the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import psycopg

from segql import run, schema, verify
from segql.deploy import deploy
from segql.parse import parse_file, parse_text

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop.sql"
EVENTS = ["product_viewed", "product_viewed", "add_to_cart", "purchase", "page_view"]
WRITERS = 8
CHANGED = "CREATE SEGMENT high_order_value AS event_avg('purchase', 'amount') > {threshold};"
LOG_SIZE = "SELECT pg_total_relation_size('segql.changes'), (SELECT count(*) FROM segql.changes)"


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    schema.upgrade(args.database_url)
    with psycopg.connect(args.database_url) as conn:
        deploy(conn, parse_file(SHOP))
    stop = threading.Event()
    counts = [0] * WRITERS
    writers = [
        threading.Thread(target=_write, args=(args.database_url, n, counts, stop), daemon=True)
        for n in range(WRITERS)
    ]
    env = {**os.environ, "SEGQL_DATABASE_URL": args.database_url}
    segql = [sys.executable, "-m", "segql"]
    worker = subprocess.Popen([*segql, "worker", "--quiet"], env=env)
    listened = [0, 0]
    listeners = [_listen(segql, env, listened, i) for i in range(2)]
    for t in writers:
        t.start()
    try:
        _loop(args, counts, listened)
    finally:
        stop.set()
        for t in writers:
            t.join()
        for proc in [worker, *listeners]:
            proc.terminate()
            proc.wait(timeout=60)
    with psycopg.connect(args.database_url) as conn:
        run.tick(conn)
        report = verify.verify(conn)
    print(
        json.dumps(
            {
                "verify_clean": report.clean,
                "missing": len(report.missing),
                "extra": len(report.extra),
                "timers": len(report.timers),
                "overdue": len(report.overdue),
                "events": sum(counts),
                "listened": listened,
            }
        ),
        flush=True,
    )
    return 0 if report.clean else 1


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--redeploy-every", type=float, default=300, help="seconds")
    parser.add_argument("--sample", type=float, default=10, help="seconds between reports")
    return parser.parse_args(argv)


def _write(url: str, index: int, counts: list[int], stop: threading.Event) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        i = 0
        while not stop.is_set():
            name = EVENTS[(i + index) % len(EVENTS)]
            props = json.dumps({"amount": (i * 37 + index) % 300, "category": "books"})
            conn.execute(
                "SELECT segql.track(%s, %s, %s)", [f"u{(i * 7919 + index) % 5000}", name, props]
            )
            counts[index] += 1
            i += 1


def _listen(
    segql: list[str], env: dict[str, str], listened: list[int], i: int
) -> subprocess.Popen[str]:
    proc = subprocess.Popen([*segql, "listen"], env=env, stdout=subprocess.PIPE, text=True)

    def count() -> None:
        assert proc.stdout is not None
        for _ in proc.stdout:
            listened[i] += 1

    threading.Thread(target=count, daemon=True).start()
    return proc


def _loop(args: argparse.Namespace, counts: list[int], listened: list[int]) -> None:
    started = last = time.monotonic()
    next_deploy = started + args.redeploy_every
    previous, version = 0, 0
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        while time.monotonic() - started < args.minutes * 60:
            time.sleep(args.sample)
            if time.monotonic() >= next_deploy:
                version += 1
                changed = CHANGED.format(threshold=100 + version % 2)
                with psycopg.connect(args.database_url) as dconn:
                    deploy(dconn, parse_text(changed))
                next_deploy += args.redeploy_every
            now, total = time.monotonic(), sum(counts)
            log = conn.execute(LOG_SIZE).fetchone()
            print(
                json.dumps(
                    {
                        "t": round(now - started),
                        "events_per_s": round((total - previous) / (now - last)),
                        "server_rss_mb": round(_server_rss() / 2**20),
                        "log_bytes": log[0] if log else None,
                        "log_rows": log[1] if log else None,
                        "listened": list(listened),
                        "redeploys": version,
                    }
                ),
                flush=True,
            )
            previous, last = total, now


def _server_rss() -> int:
    total = 0
    for proc in psutil.process_iter(["name", "memory_info"]):
        if proc.info["name"] in ("postgres", "postmaster") and proc.info["memory_info"]:
            total += proc.info["memory_info"].rss
    return total


if __name__ == "__main__":
    raise SystemExit(main())
