"""Segment catalog commands: show and rollback."""

from __future__ import annotations

import json

import typer

from segql import catalog
from segql.commands import state


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("rollback")(rollback)


def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment name."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show a segment: its definition, comment, size, dependencies and every version."""
    with state(ctx).connect() as conn:
        shown = catalog.show(conn, name.lower())
    if as_json:
        typer.echo(json.dumps(shown.as_json(), indent=2))
        return
    lines = [f"{shown.name}  v{shown.version}  {shown.size:,} member(s)"]
    if shown.comment:
        lines.append(f"  {shown.comment}")
    lines += ["", f"{shown.definition};", ""]
    if shown.depends_on:
        lines.append(f"Reads: {', '.join(shown.depends_on)}")
    if shown.read_by:
        lines.append(f"Read by: {', '.join(shown.read_by)}")
    lines.append(f"{'VERSION':>7}  {'DEPLOYED AT':<25}  DEFINITION")
    for v in shown.versions:
        current = "  (deployed)" if v.version == shown.version else ""
        body = v.definition.split(" AS ", 1)[-1].replace("\n", " ")
        lines.append(
            f"{v.version:>7}  {v.deployed_at.isoformat(timespec='seconds'):<25}  {body}{current}"
        )
    typer.echo("\n".join(lines))


def rollback(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Segment name."),
    to: int | None = typer.Option(
        None, "--to", min=1, help="The version to go back to [default: the one before]."
    ),
) -> None:
    """Deploy an earlier version's definition again (as a new version; changes are logged)."""
    with state(ctx).connect() as conn:
        target, now = catalog.rollback(conn, name.lower(), to)
    typer.echo(f"Rolled {name.lower()} back to the definition of v{target}, deployed as v{now}.")
