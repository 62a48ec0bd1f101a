"""`python -m benchmarks`: run every scenario, write BENCHMARKS.md and benchmarks.json."""

from __future__ import annotations

import argparse
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import environment, report, scenarios
from benchmarks.harness import SCALES, Context, Result
from segql import db


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure segql against baselines taken in the same run on the same server.",
    )
    parser.add_argument(
        "--scale", choices=sorted(SCALES), default="smoke", help="How much data (default: smoke)."
    )
    parser.add_argument(
        "--out", type=Path, default=Path("."), help="Folder for BENCHMARKS.md and benchmarks.json."
    )
    parser.add_argument(
        "--database-url",
        help="Server to measure (default: $SEGQL_DATABASE_URL, $DATABASE_URL, else embedded).",
    )
    parser.add_argument(
        "--only",
        help=f"Comma-separated scenarios to run (default: all of {', '.join(scenarios.names())}).",
    )
    parser.add_argument("--seed", type=int, default=1, help="Seed of the synthetic data.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run, report, and exit 1 if any scenario failed (being slow is not failing)."""
    args = parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    url = db.resolve_url(args.database_url)
    scale = SCALES[args.scale]
    started_at, started = datetime.now(UTC).isoformat(timespec="seconds"), time.perf_counter()
    print(f"segql benchmarks, scale {scale.name}, server {db.mask_password(url)}", flush=True)
    machine = environment.machine()
    with tempfile.TemporaryDirectory(prefix="segql-bench-") as workdir:
        ctx = Context(url, scale, Path(workdir), seed=args.seed)
        try:
            results = [r for s in scenarios.load(only) for r in _run(ctx, s)]
        finally:
            ctx.close()
    run = {
        "started_at": started_at,
        "seconds": time.perf_counter() - started,
        "scale": scale,
        "machine": machine,
        "postgres": environment.postgres(url),
    }
    md, js = report.write(args.out, results, run)
    print(f"\n{report.table(results)}\n\nWrote {md} and {js} in {run['seconds']:.0f} s")
    failed = [r for r in results if r.error]
    return 1 if failed else 0


def _run(ctx: Context, scenario: scenarios.Scenario) -> list[Result]:
    print(f"{scenario.name}:", flush=True)
    started = time.perf_counter()
    try:
        results = scenario.run(ctx)
    except Exception as exc:
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return [Result(scenario.name, "failed", "", error=message)]
    ctx.log(f"{scenario.name} done in {time.perf_counter() - started:.1f} s")
    return results
