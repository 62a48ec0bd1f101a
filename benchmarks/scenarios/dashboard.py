"""The live dashboard under ingest: COPY throughput with two browsers watching it, and the time
from a commit to the new size on screen.

segql side: `segql dashboard` runs as its own process and two Chromium pages (Debian's
`chromium`, driven by Playwright) show the overview while the run's events are COPYed in.
Baseline: the same COPY into the same deployment with no dashboard and no browser. Latency:
one page watches a segment's size; each round trip commits an INSERT that makes a new user enter
it, and the page stamps the moment the size on screen changes (a MutationObserver), against the
wall clock read when the commit returned (one machine, one clock).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import psycopg

from benchmarks import data, segments
from benchmarks.harness import Context, Goal, Result, percentile
from segql.dashboard.server import free_port

NAME = "dashboard"
SEGMENTS = 10
WATCHED = "bench_latency"
MAX_ROUND_TRIPS = 200
WAIT_MS = 10_000
GOALS = {
    "ingest": Goal("≥ 0.9x with the dashboard closed", min_ratio=0.9),
    50: Goal("≤ 500 ms", max_segql=500.0),
    99: Goal("≤ 1000 ms", max_segql=1000.0),
}
# Records when each size first appears on screen, in the page's wall clock (ms since epoch).
WATCH_JS = """(name) => {
  window.__sizes = {};
  const cell = document.querySelector(`tr[data-segment="${name}"] [data-size]`);
  new MutationObserver(() => { window.__sizes[cell.textContent] ??= Date.now(); })
    .observe(cell, {childList: true, characterData: true, subtree: true});
}"""


def run(ctx: Context) -> list[Result]:
    batches = data.event_batches(ctx)
    skipped = segments.availability() or _browser_missing()
    closed = _copy(ctx, batches, "closed", browsers=0)
    ctx.log(f"COPY, dashboard closed: {closed:,.0f} rows/s")
    ingest = Result(
        NAME,
        f"COPY {batches.events:,} events, {SEGMENTS + 1} segments, dashboard open in 2 browsers",
        "rows/s",
        baseline=closed,
        goal=GOALS["ingest"],
        note=skipped or "",
    )
    latencies: list[float] = []
    if not skipped:
        ingest.segql = _copy(ctx, batches, "open", browsers=2)
        ctx.log(f"COPY, dashboard open in 2 browsers: {ingest.segql:,.0f} rows/s")
        # Each round trip waits for a browser: a fifth of the latency scenario's count will do.
        latencies = _latencies(ctx, min(ctx.scale.round_trips // 5, MAX_ROUND_TRIPS))
    return [ingest, *(_latency_result(q, latencies, skipped) for q in (50, 99))]


def _latency_result(q: int, latencies: list[float], skipped: str | None) -> Result:
    return Result(
        NAME,
        f"commit -> size on screen p{q}, {len(latencies):,} round trips",
        "ms",
        segql=percentile(latencies, q) if latencies else None,
        goal=GOALS[q],
        note=skipped or "",
        details={"max_ms": latencies[-1] if latencies else None},
    )


def _browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "skipped: playwright is not installed (pip install '.[test]')"
    if _chromium() is None:
        return "skipped: no chromium (apt-get install -y chromium)"
    return None


def _chromium() -> str | None:
    return os.environ.get("SEGQL_CHROMIUM") or shutil.which("chromium")


def _deploy(url: str, ctx: Context) -> None:
    data.load_profiles(url, ctx)
    segments.deploy_text(url, segments.definitions(SEGMENTS) + segments.latency_definition())


def _copy(ctx: Context, batches: data.EventBatches, label: str, browsers: int) -> float:
    with ctx.scratch(f"dashboard_{label}") as url, ExitStack() as stack:
        _deploy(url, ctx)
        if browsers:
            base = stack.enter_context(_dashboard(url))
            for page in stack.enter_context(_pages(browsers)):
                _open(page, base)
        with psycopg.connect(url) as conn:
            started = time.perf_counter()
            rows = data.copy_batches(conn, batches)
            elapsed = time.perf_counter() - started
    return rows / elapsed


def _latencies(ctx: Context, n: int) -> list[float]:
    with ctx.scratch("dashboard_latency") as url, ExitStack() as stack:
        _deploy(url, ctx)
        base = stack.enter_context(_dashboard(url))
        (page,) = stack.enter_context(_pages(1))
        _open(page, base)
        page.evaluate(WATCH_JS, WATCHED)
        samples = []
        with psycopg.connect(url, autocommit=True) as writer:
            size = _size(writer)
            for i in range(n):
                writer.execute(
                    "INSERT INTO segql.events (user_id, name, props) "
                    "VALUES (%s, 'add_to_cart', '{}')",
                    (f"dash{i}",),
                )
                committed = time.time() * 1000
                size += 1
                key = str(size)
                page.wait_for_function(
                    "(k) => window.__sizes[k] !== undefined", arg=key, timeout=WAIT_MS
                )
                samples.append(page.evaluate("(k) => window.__sizes[k]", key) - committed)
    ctx.log(f"commit -> screen p50 {percentile(sorted(samples), 50):.1f} ms")
    return sorted(samples)


def _open(page: Any, base: str) -> None:
    """The overview, once its live stream is open."""
    page.goto(base)
    page.wait_for_selector("#live.on", timeout=WAIT_MS)


def _size(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM segql.members WHERE segment = %s", [WATCHED])
    found = row.fetchone()
    return int(found[0]) if found else 0


@contextmanager
def _dashboard(url: str) -> Iterator[str]:
    """`segql dashboard` as its own process, as a user runs it; yields its URL once it serves."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGQL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segql", "--database-url", url, "dashboard", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_serving(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_until_serving(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"segql dashboard exited: {err[-2000:]}")
        try:
            with urllib.request.urlopen(base, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("segql dashboard did not serve within 30 s")


@contextmanager
def _pages(n: int) -> Iterator[list[Any]]:
    """`n` pages, each in a browser context of its own (two people watching)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        try:
            yield [browser.new_context().new_page() for _ in range(n)]
        finally:
            browser.close()
