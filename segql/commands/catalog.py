"""Catalog commands: show and rollback a segment, and one user's page."""

from __future__ import annotations

import json

import typer

from segql import catalog, users
from segql.commands import state
from segql.errors import SegqlError


def register(app: typer.Typer) -> None:
    app.command("show")(show)
    app.command("rollback")(rollback)
    app.command("user")(user)


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


def user(
    ctx: typer.Context,
    user_id: str = typer.Argument(..., help="User id."),
    recent: int = typer.Option(10, "--events", min=0, help="How many recent events to show."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON object."),
) -> None:
    """Show one user: the segments they are in (since when, which version), their traits,
    recent events and pending timers."""
    with state(ctx).connect() as conn:
        found = users.page(conn, user_id, recent)
    if not found.known and not found.segments:
        raise SegqlError(f"no events and no profile for user '{user_id}' (user ids are exact)")
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2, default=str))
        return
    typer.echo("\n".join(_user_lines(found)))


def _user_lines(p: users.UserPage) -> list[str]:
    lines = [f"User {p.user_id}", "", f"Segments ({len(p.segments)}):"]
    width = max((len(s) for s, _, _ in p.segments), default=0)
    for segment, since, version in p.segments:
        lines.append(f"  {segment:<{width}}  since {since.isoformat()}  (v{version})")
    lines += ["", "Traits:" if p.traits else "Traits: none (no profile)"]
    for key, value in sorted((p.traits or {}).items()):
        lines.append(f"  {key} = {json.dumps(value, ensure_ascii=False)}")
    lines += ["", f"Events: {p.events:,}" + (", newest first:" if p.recent else "")]
    for ts, name, props in p.recent:
        shown = f"  {json.dumps(props, ensure_ascii=False)}" if props else ""
        lines.append(f"  {ts.isoformat()}  {name}{shown}")
    lines += ["", "Pending timers:" if p.timers else "Pending timers: none"]
    for due, segments in p.timers:
        lines.append(f"  {due.isoformat()}  re-checks {', '.join(segments) or '-'}")
    return lines
