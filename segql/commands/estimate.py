"""Reach before deploy: `segql estimate`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from segql import estimate as estimate_api
from segql.commands import state
from segql.deploy import load_files


def register(app: typer.Typer) -> None:
    app.command("estimate")(estimate)


def estimate(
    ctx: typer.Context,
    files: list[Path] = typer.Argument(
        ..., help="Segment definition files (.sql).", exists=True, dir_okay=False
    ),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
    as_sql: bool = typer.Option(
        False, "--sql", help="Print the SQL that computes the estimates instead of running it."
    ),
    timeout: float = typer.Option(
        estimate_api.DEFAULT_TIMEOUT,
        "--timeout",
        envvar="SEGQL_ESTIMATE_TIMEOUT",
        min=0.001,
        help="Give up after this many seconds.",
    ),
    sample: int = typer.Option(
        estimate_api.DEFAULT_SAMPLE,
        "--sample",
        envvar="SEGQL_ESTIMATE_SAMPLE",
        min=0,
        help="How many member ids to show per segment.",
    ),
) -> None:
    """Exact reach of each segment now, its overlap with deployed ones and sample users.

    Read-only: nothing is created. The size equals what `segql deploy` of the same files at the
    same clock would give.
    """
    statements = load_files(files)
    with state(ctx).connect() as conn:
        if as_sql:
            typer.echo(estimate_api.script(conn, statements, sample))
            return
        results = estimate_api.estimate(conn, statements, timeout=timeout, sample=sample)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in results], indent=2))
        return
    for r in results:
        _print(r)


def _print(r: estimate_api.Estimate) -> None:
    typer.echo(f"{r.segment}: {r.size:,} users")
    shared = {name: n for name, n in r.overlap.items() if n}
    for name, n in sorted(shared.items(), key=lambda kv: (-kv[1], kv[0])):
        share = 100.0 * n / r.size if r.size else 0.0
        typer.echo(f"  overlap {name}: {n:,} ({share:.1f}% of the estimate)")
    if r.sample:
        typer.echo(f"  sample: {', '.join(r.sample)}")
