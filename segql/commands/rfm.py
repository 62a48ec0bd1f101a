"""`segql refresh` and `segql rfm`: RFM cutpoints, recomputed and shown."""

from __future__ import annotations

import json

import typer

from segql import rfm as rfm_api
from segql.commands import state


def register(app: typer.Typer) -> None:
    app.command("refresh")(refresh)
    app.command("rfm")(rfm)


def refresh(ctx: typer.Context) -> None:
    """Recompute every RFM score's cutpoints now and re-evaluate every user, in one transaction.

    Writers wait while it runs. Scores that move are logged with cause 'refresh'. Nothing else
    recomputes cutpoints (the worker runs this on its schedule; ticks and clock moves never do).
    """
    with state(ctx).connect() as conn:
        result = rfm_api.refresh(conn)
    if result.scores == 0:
        typer.echo("No RFM scores are deployed: nothing to refresh.")
        return
    typer.echo(
        f"Refreshed {result.scores} RFM score(s) and re-evaluated {result.users} user(s) in "
        f"{result.seconds:.2f} s: {result.enters} enter(s), {result.exits} exit(s)."
    )


def rfm(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON array."),
) -> None:
    """Show each RFM score's four cutpoints (20th, 40th, 60th, 80th percentiles of the
    population) and when they were computed. The same rows are in segql.rfm_cutpoints."""
    with state(ctx).connect() as conn:
        rows = rfm_api.cutpoints(conn)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], indent=2))
        return
    if not rows:
        typer.echo("No RFM scores are deployed.")
        return
    for r in rows:
        cuts = ", ".join(r.cutpoints) if r.cutpoints else "none (no population)"
        when = r.computed_at.isoformat() if r.computed_at else "never"
        typer.echo(r.score)
        typer.echo(f"  cutpoints:  {cuts}")
        typer.echo(f"  population: {r.population} user(s), computed at {when}")
