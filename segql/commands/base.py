"""Foundation commands: init, ingest, status and the embedded server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import typer
from psycopg import sql
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)

from segql import db, embedded, schema
from segql import ingest as ingest_api
from segql.commands import state
from segql.sqlfiles import query

server_app = typer.Typer(help="Manage the embedded PostgreSQL server.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("ingest")(ingest)
    app.command("status")(status)
    app.add_typer(server_app, name="server")


def init(ctx: typer.Context) -> None:
    """Create or upgrade segql's schema in the database (safe to run again)."""
    st = state(ctx)
    ran = st.ensure_schema()
    revision = schema.current(st.url)
    verb = "Initialized" if ran else "Already up to date:"
    typer.echo(f"{verb} {db.mask_password(st.url)} (schema revision {revision})")


def ingest(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ..., help="JSON lines or CSV file (.jsonl, .ndjson, .json, .csv, optionally .gz)."
    ),
    profiles: bool = typer.Option(
        False, "--profiles", help="Load profiles (user_id, traits) instead of events."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        envvar="SEGQL_INGEST_FORMAT",
        help="jsonl or csv; by default taken from the file extension.",
    ),
    rejects: Path | None = typer.Option(
        None,
        "--rejects",
        envvar="SEGQL_INGEST_REJECTS",
        help="Where to write rejected rows as JSON lines [default: FILE.rejects.jsonl].",
    ),
    batch_size: int = typer.Option(
        ingest_api.DEFAULT_BATCH_SIZE,
        "--batch-size",
        envvar="SEGQL_INGEST_BATCH_SIZE",
        min=1,
        help="Rows per COPY batch; each batch is its own transaction.",
    ),
    history: bool | None = typer.Option(
        None,
        "--history/--live",
        help="--history: evaluate segments once after the last batch, at the current clock "
        "(loading past data); --live: after every batch. Default: --history when the file "
        "holds more than one batch.",
        show_default=False,
    ),
    mapping: list[str] = typer.Option(
        [],
        "--map",
        help="KEY=FIELD: read the file's KEY as segql's FIELD (user_id, name, ts, props, "
        "traits), or KEY=ignore to drop it. Repeatable.",
        show_default=False,
    ),
) -> None:
    """Load events (or --profiles) from a file with COPY.

    Rows are segql's own ({"user_id", "name", "ts", "props"}; profiles {"user_id", "traits"})
    or Segment / RudderStack track and identify calls, told apart row by row.

    Bad rows never stop the load: they go to the reject file and to segql.rejects.
    Exit code 0: all rows loaded; 2: loaded, but some rows were rejected; 1: the load failed.
    """
    st = state(ctx)
    kind: ingest_api.Kind = "profiles" if profiles else "events"
    with st.connect() as conn, ingest_progress(file) as progress:
        result = ingest_api.ingest(
            conn,
            file,
            kind=kind,
            fmt=fmt,
            batch_size=batch_size,
            rejects_path=rejects,
            progress=progress,
            history=history,
            mapping=ingest_api.parse_mapping(mapping),
        )
    typer.echo(summary(result))
    if result.history or result.evaluated:
        typer.echo(
            f"Evaluated segments once for {result.evaluated:,} user(s) after the load "
            "(history mode; changes logged with cause 'history')."
        )
    if result.rejected:
        shown = result.reject_samples[:5]
        for reject in shown:
            typer.echo(f"  line {reject.line}: {reject.reason}", err=True)
        if result.rejected > len(shown):
            typer.echo(f"  ... and {result.rejected - len(shown):,} more", err=True)
        typer.echo(f"Rejected rows are in {result.rejects_path} and segql.rejects.", err=True)
        raise typer.Exit(2)


@contextmanager
def ingest_progress(file: Path) -> Iterator[ingest_api.Progress | None]:
    """A progress bar on a terminal (bytes of the file, rows/s, ETA); nothing when piped."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    total = file.stat().st_size if file.exists() else None
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>12,} rows  {task.fields[rate]:>9,.0f} rows/s"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(file.name, total=total, rows=0, rate=0.0)
        started = time.perf_counter()

        def update(done: int, loaded: int, rejected: int) -> None:
            rows = loaded + rejected
            rate = rows / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, rows=rows, rate=rate)

        yield update


def summary(result: ingest_api.IngestResult) -> str:
    noun = "profile row" if result.kind == "profiles" else "event"
    plural = "" if result.loaded == 1 else "s"
    return (
        f"Loaded {result.loaded:,} {noun}{plural}, rejected {result.rejected:,} "
        f"in {result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s)."
    )


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
