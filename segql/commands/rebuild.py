"""`segql rebuild`: recompute all incremental state from the events and profiles."""

from __future__ import annotations

import typer

from segql import rebuild as rebuild_api
from segql.commands import state


def register(app: typer.Typer) -> None:
    app.command("rebuild")(rebuild)


def rebuild(ctx: typer.Context) -> None:
    """Recompute feature state, memberships and timers from the events, at the current clock.

    Writers wait while it runs. Differences from the incremental state are logged as changes
    with cause 'rebuild'; when the incremental state was exact, nothing is logged.
    """
    with state(ctx).connect() as conn:
        result = rebuild_api.rebuild(conn)
    changed = result.enters + result.exits
    summary = f"{result.enters} enter(s), {result.exits} exit(s)" if changed else "no changes"
    typer.echo(f"Rebuilt the state of {result.users} user(s): {summary}.")
