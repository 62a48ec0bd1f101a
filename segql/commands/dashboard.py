"""`segql dashboard`: the live web dashboard."""

from __future__ import annotations

import typer

from segql.commands import state
from segql.dashboard import server


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)


def dashboard(
    ctx: typer.Context,
    host: str = typer.Option(
        server.DEFAULT_HOST,
        "--host",
        envvar="SEGQL_DASHBOARD_HOST",
        help="Address to listen on; anything but loopback needs --token.",
    ),
    port: int = typer.Option(
        server.DEFAULT_PORT,
        "--port",
        envvar="SEGQL_DASHBOARD_PORT",
        min=1,
        max=65535,
        help="Port to listen on.",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        envvar="SEGQL_DASHBOARD_TOKEN",
        help="Required on every request (?token=, a cookie, or Authorization: Bearer).",
    ),
) -> None:
    """Serve the live dashboard: sizes, trends, members, users and draft reach, in a browser."""
    server.check_exposure(host, token)
    st = state(ctx)
    st.ensure_schema()
    typer.echo(f"segql dashboard on {server.url(host, port, token)} (Ctrl-C to stop)")
    server.serve(st.url, host, port, token)
