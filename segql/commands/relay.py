"""`segql notify` and `segql relay`: how committed membership changes are announced."""

from __future__ import annotations

import typer

from segql import relay as relay_api
from segql.commands import state


def register(app: typer.Typer) -> None:
    app.command("notify")(notify)
    app.command("relay")(relay)


def notify(
    ctx: typer.Context,
    mode: str = typer.Argument(
        None, help="'direct' (writers send NOTIFY) or 'relay' (the worker does); omit to show."
    ),
) -> None:
    """Show or set how changes are announced to listeners.

    'direct' wakes listeners at the writer's commit; 'relay' spares writers the NOTIFY lock at
    commit (better with many concurrent writers); `segql worker` (or `segql relay`) then rings.
    """
    with state(ctx).connect() as conn:
        if mode is not None:
            relay_api.set_notify_mode(conn, mode.lower())
        typer.echo(f"notify mode: {relay_api.notify_mode(conn)}")


def relay(
    ctx: typer.Context,
    interval: float = typer.Option(
        0.05,
        "--interval",
        envvar="SEGQL_RELAY_INTERVAL",
        min=0.001,
        help="Seconds between looks at the change log (the most a listener waits).",
    ),
    seconds: float = typer.Option(
        None, "--seconds", min=0.1, help="Stop after this many seconds (default: run until ^C)."
    ),
) -> None:
    """Send the NOTIFYs writers skip in 'relay' notify mode, one per segment and batch."""
    st = state(ctx)
    with st.connect() as conn:
        if relay_api.notify_mode(conn) != "relay":
            typer.echo("note: notify mode is 'direct'; writers notify themselves", err=True)
    relay_api.run_relay(st.url, interval, seconds)
