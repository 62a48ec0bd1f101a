"""Foundation commands: init, ingest, status and the embedded server."""

from __future__ import annotations

import psycopg
import typer
from psycopg import sql

from segql import db, embedded, schema
from segql.commands import state
from segql.sqlfiles import query

server_app = typer.Typer(help="Manage the embedded PostgreSQL server.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("status")(status)
    app.add_typer(server_app, name="server")


def init(ctx: typer.Context) -> None:
    """Create or upgrade segql's schema in the database (safe to run again)."""
    st = state(ctx)
    ran = st.ensure_schema()
    revision = schema.current(st.url)
    verb = "Initialized" if ran else "Already up to date:"
    typer.echo(f"{verb} {db.mask_password(st.url)} (schema revision {revision})")


def status(ctx: typer.Context) -> None:
    """Show the server, its PostgreSQL version, segql's schema revision and row counts."""
    st = state(ctx)
    with st.connect(autocommit=True, ensure_schema=False) as conn:
        info = conn.execute(query("server_info")).fetchone()
        revisions = schema.current_revisions(conn)
        lines = [
            ("database", db.mask_password(st.url)),
            ("server", "embedded" if db.is_embedded(st.url) else "external"),
            ("postgres", info[0] if info else "?"),
            ("schema", ",".join(revisions) if revisions else "not initialized (run `segql init`)"),
        ]
        for label, table in (
            ("events", "segql.events"),
            ("profiles", "segql.profiles"),
            ("segments", "segql.segments"),
        ):
            count = _row_count(conn, table)
            if count is not None:
                lines.append((label, f"{count:,}"))
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        typer.echo(f"{label.ljust(width)}  {value}")


def _row_count(conn: psycopg.Connection, table: str) -> int | None:
    """Exact for small tables; the planner's estimate once counting would take a while."""

    row = conn.execute(query("table_estimate"), {"table": table}).fetchone()
    if row is None:
        return None
    estimate = int(row[0])
    if estimate > 1_000_000:
        return estimate
    schema_name, name = table.split(".")
    counted = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema_name, name))
    ).fetchone()
    return int(counted[0]) if counted else 0


@server_app.command("start")
def server_start() -> None:
    """Start the embedded server (if needed) and print its database URL."""
    typer.echo(embedded.database_url())


@server_app.command("stop")
def server_stop() -> None:
    """Stop the embedded server; the next segql command starts it again."""
    stopped = embedded.stop()
    typer.echo("Stopped the embedded server." if stopped else "The embedded server is not running.")


@server_app.command("status")
def server_status() -> None:
    """Say whether the embedded server is running and where its data lives."""
    running = embedded.is_running()
    typer.echo(f"{'running' if running else 'stopped'}  {embedded.pgdata_dir()}")
